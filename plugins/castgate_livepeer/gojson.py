"""The Go JSON types go-livepeer decodes its webhook answers into, checked on policy values.

go-livepeer unmarshals an answer into typed Go structs: one value of the wrong JSON type (a
float for an ``int``, a number for a ``string``) fails the whole answer and so refuses the
stream. Response data reaches a plugin as the policy engine built it: at load time constant
lists are tuples and addresses are network objects; at request time lists are lists and whole
floats have become ints. These helpers accept both forms and say what a value would be sent as.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

#: Go's ``int`` and ``int64`` on the 64-bit platforms go-livepeer ships for.
INT64_MAX = 2**63 - 1
#: Bound for sizes, rates and counts: far above any real value, and safe for C ints in ffmpeg.
INT32_MAX = 2**31 - 1


def whole(value: object) -> int | None:
    """``value`` as an int if it is a whole number; ``None`` otherwise.

    A whole float counts: the engine renders ``2.0`` as ``2``, so the node receives an integer.
    ``True`` does not, although Python calls it an int: the node would receive ``true``.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def text(value: object) -> str | None:
    """``value`` as the string the node would receive; ``None`` if it is not one.

    The checker lets an address stand for a string, and the engine sends it as text the same
    way: a single address without its prefix length, a block with it.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        if value.prefixlen == value.max_prefixlen:
            return str(value.network_address)
        return str(value)
    return None


def items(value: object) -> list[Any] | None:
    """``value`` as a list if it is a JSON array (a list, or a constant tuple at load time)."""
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        return None
    return list(value)


def is_object(value: object) -> bool:
    return isinstance(value, Mapping)


def describe(value: object) -> str:
    """How a problem message names a value's kind, e.g. ``a number (2.5)``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a bool ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if items(value) is not None:
        return "a list"
    return f"a {type(value).__name__}"
