"""Decoding JSON that will become an event: objects only, no repeated keys, bounded nesting.

Used for the body of the new callback and again for a ``PubParam`` sent as JSON text. Anything a
JSON encoder never writes (a repeated key, ``NaN``, an unpaired surrogate) is refused rather than
guessed at: Python would silently keep the last of two ``App`` keys, and a policy might have
checked the other one. The reading is :func:`castgate.read_json`; this module words KLS's refusals.
"""

from __future__ import annotations

from typing import Any

from castgate import (
    LoneSurrogateError,
    MalformedRequest,
    NestingError,
    PayloadError,
    json_kind,
    read_json,
)

#: KLS's JSON is two levels deep (the body, PubParam); far deeper input is not KLS. Every value
#: counts as a level, strings and numbers too.
MAX_DEPTH = 16


def load_object(text: str, what: str) -> dict[str, Any]:
    """``text`` as a JSON object; :class:`MalformedRequest` naming ``what`` otherwise."""
    value = load_value(text, what)
    if not isinstance(value, dict):
        kind = json_kind(value)
        shown = "JSON null" if value is None else f"a JSON {kind}"
        raise MalformedRequest(f"{what} is {shown}, not a JSON object")
    return value


def load_value(text: str, what: str) -> Any:
    """Any JSON value, checked like :func:`load_object` checks objects."""
    try:
        return read_json(text, max_depth=MAX_DEPTH, count_scalars=True)
    except NestingError as error:
        raise MalformedRequest(f"{what} is {error}") from None
    except LoneSurrogateError:
        raise MalformedRequest(f"{what} holds text that is not valid Unicode") from None
    except PayloadError as error:
        # A syntax error, NaN or a repeated key; the message names what was wrong and where.
        raise MalformedRequest(f"{what} is not valid JSON: {error}") from None
