"""Reading single KLS values leniently: blanks, text, millisecond timestamps, ports.

KLS's two doc versions (2020 and 2024) disagree on the types of the same fields, and its samples
disagree with both (a port that is ``" "``, a timestamp as a 13-digit string), so every reader
accepts each documented spelling. What is none of them raises :class:`MalformedRequest` with the
field's name: a value KLS never sends says the caller is not KLS.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal

import castgate
from castgate import MalformedRequest

#: 9999-12-31T23:59:59.999Z: later times cannot be logged (``datetime`` ends in the year 9999).
MAX_MS = 253_402_300_799_999

_DECIMAL = re.compile(r"[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?")
_DIGITS = re.compile(r"[0-9]+")


def is_blank(value: object) -> bool:
    """KLS's ways of saying "nothing": missing (``None``/null), ``""``, a lone space, ``nil``
    (padded with spaces or not)."""
    return castgate.is_blank(value, trim=True)


def text(value: object, field: str) -> str:
    """A text field as sent, ``""`` when blank. A number is read as its JSON spelling (a
    ``Sequence`` of ``12`` is ``"12"``); objects, lists and booleans are refused."""
    if is_blank(value):
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return json.dumps(value)
    raise MalformedRequest(f"{field} must be text, not {_kind(value)}")


def millis(value: object, field: str) -> int | None:
    """Epoch milliseconds from an int, a float or a numeric string; ``None`` when blank.

    The 2020 doc sends ``PubStartUnixTime`` as a 13-digit string, the 2024 doc as an int; floats
    (``1670575130460.0``) are truncated to whole milliseconds.
    """
    if is_blank(value):
        return None
    if isinstance(value, bool):
        raise MalformedRequest(f"{field} must be epoch milliseconds, not a boolean")
    if isinstance(value, int):
        ms = value
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise MalformedRequest(f"{field} must be epoch milliseconds, not {value!r}")
        ms = int(value)
    elif isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
        # Decimal, not float: a 19-digit string must not round to a neighbouring number.
        number = Decimal(value.strip())
        if number > MAX_MS:
            raise MalformedRequest(f"{field} {value[:32]!r} is after the year 9999")
        ms = int(number)
    else:
        raise MalformedRequest(f"{field} must be epoch milliseconds, not {_kind(value)}")
    if not 0 <= ms <= MAX_MS:
        raise MalformedRequest(f"{field} {ms} is outside 1970..9999")
    return ms


def port(value: object, field: str) -> int | None:
    """A TCP port from an int, a whole float or a digit string; ``None`` when blank or ``0``."""
    if is_blank(value):
        return None
    number: int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and _DIGITS.fullmatch(value.strip()) and len(value) < 16:
        number = int(value.strip())
    if number is None or not 0 <= number <= 65535:
        shown = repr(value)[:32] if isinstance(value, int | float | str) else _kind(value)
        raise MalformedRequest(f"{field} must be a port number, not {shown}")
    return number or None


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the text {value[:32]!r}"
    return type(value).__name__
