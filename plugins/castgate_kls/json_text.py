"""Decoding JSON that will become an event: objects only, no repeated keys, bounded nesting.

Used for the body of the new callback and again for a ``PubParam`` sent as JSON text. Anything a
JSON encoder never writes (a repeated key, ``NaN``, an unpaired surrogate) is refused rather than
guessed at: Python would silently keep the last of two ``App`` keys, and a policy might have
checked the other one.
"""

from __future__ import annotations

import json
import re
from typing import Any

from castgate import MalformedRequest

#: KLS's JSON is two levels deep (the body, PubParam); far deeper input is not KLS.
MAX_DEPTH = 16

_SURROGATE = re.compile("[\ud800-\udfff]")


def load_object(text: str, what: str) -> dict[str, Any]:
    """``text`` as a JSON object; :class:`MalformedRequest` naming ``what`` otherwise."""
    value = load_value(text, what)
    if not isinstance(value, dict):
        raise MalformedRequest(f"{what} is {_json_kind(value)}, not a JSON object")
    return value


def load_value(text: str, what: str) -> Any:
    """Any JSON value, checked like :func:`load_object` checks objects."""
    try:
        value = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except RecursionError:
        raise MalformedRequest(f"{what} is nested too deeply") from None
    except ValueError as error:
        # JSONDecodeError and our hooks' errors; the message names what was wrong and where.
        raise MalformedRequest(f"{what} is not valid JSON: {_short(error)}") from None
    _check(value, what, 1)
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"key {key[:40]!r} appears twice")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _check(value: Any, what: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise MalformedRequest(f"{what} is nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        if _SURROGATE.search(value):
            raise MalformedRequest(f"{what} holds text that is not valid Unicode")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check(key, what, depth)
            _check(item, what, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check(item, what, depth + 1)


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "a JSON array"
    if isinstance(value, str):
        return "a JSON string"
    if value is None:
        return "JSON null"
    if isinstance(value, bool):
        return "a JSON boolean"
    return "a JSON number"


def _short(error: ValueError) -> str:
    return str(error).splitlines()[0][:120]
