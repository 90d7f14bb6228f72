"""Reading a Nimble request body: one JSON object that can be read one way only.

Nimble and WMSPanel send small JSON documents. Anything that is not exactly one readable JSON
object is refused here, before any field is looked at: invalid UTF-8, a repeated key (two
readers would disagree on its value), nesting deeper than any Nimble document, and strings
that cannot be written back as UTF-8 (lone surrogates from ``\\ud800`` escapes).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from castgate import MalformedRequest

#: Far deeper than a PPV sync (about a dozen levels); deeper input is not Nimble talking.
MAX_DEPTH = 32


class _RepeatedKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


async def read_object(request: Request, *, limit: int, action: str) -> dict[str, Any]:
    """The body as a JSON object, whatever the Content-Type says, or :class:`MalformedRequest`
    carrying ``action`` (which decides between the vendor's deny and a 4xx)."""
    body = await request.body()
    if len(body) > limit:
        raise MalformedRequest(f"request body larger than {limit} bytes", action=action)
    if not body.strip():
        raise MalformedRequest("empty request body", action=action)
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise MalformedRequest("request body is not UTF-8", action=action) from None
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except _RepeatedKeyError as error:
        raise MalformedRequest(f"repeated JSON key {error.key[:40]!r}", action=action) from None
    except RecursionError:
        raise MalformedRequest("JSON nested too deeply", action=action) from None
    except ValueError:
        raise MalformedRequest("request body is not JSON", action=action) from None
    if not isinstance(data, dict):
        raise MalformedRequest(
            f"request body is a JSON {_kind(data)}, not an object", action=action
        )
    _check_shape(data, action)
    return data


def present(value: object) -> bool:
    """Whether a value counts as sent: not null, ``""``, a lone space or the text ``nil``."""
    if value is None:
        return False
    if isinstance(value, str):
        return value.strip() != "" and value != "nil"
    return True


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise _RepeatedKeyError(key)
        data[key] = value
    return data


def _no_constant(name: str) -> None:
    # NaN and Infinity are not JSON; Python would read them as floats no comparison handles.
    raise ValueError(f"{name} is not JSON")


def _check_shape(data: object, action: str) -> None:
    """Refuse over-deep nesting and unencodable strings, without recursion."""
    pending: list[tuple[object, int]] = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            _check_text(value, action)
        elif isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise MalformedRequest(f"JSON nested deeper than {MAX_DEPTH} levels", action=action)
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str):
                    _check_text(key, action)
                pending.append((item, depth + 1))


def _check_text(text: str, action: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedRequest("JSON text holds an unpaired surrogate", action=action) from None


def _kind(value: object) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return "number"
