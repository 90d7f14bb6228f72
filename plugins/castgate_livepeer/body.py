"""Reading a go-livepeer webhook body: one small JSON object, or a refusal saying why.

The node builds its bodies with Go's ``json.Marshal`` of a one-key map (``{"url": ...}`` or
``{"id": ...}``): valid UTF-8, no repeated keys, no lone surrogates, no NaN. Anything else did
not come from a node as written, so it is refused rather than guessed at; the route's answer
to a refusal is a deny, never an allow.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

from starlette.requests import Request

from castgate import MalformedRequest

#: A node's body is one URL or one address: well under 4 KiB. Anything this large is not a
#: node talking and is refused before it costs memory.
MAX_BODY_BYTES = 64 * 1024


class _RepeatedKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


async def read_object(request: Request, *, action: str = "") -> dict[str, Any]:
    """The body as a JSON object, whatever the Content-Type says; :class:`MalformedRequest`
    (carrying ``action``) if it is anything else."""
    data = await _read(request, action)
    try:
        value = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_unique_keys,
            parse_constant=_no_constant,
        )
    except UnicodeDecodeError:
        _refuse("body is not UTF-8", action)
    except RecursionError:
        _refuse("body is JSON nested too deeply", action)
    except _RepeatedKeyError as repeated:
        # Go keeps the last of two equal keys, other readers the first: never pick one.
        _refuse(f"body repeats the JSON key {repeated.key[:40]!r}", action)
    except ValueError:
        _refuse("body is not JSON" if data.strip() else "body is empty", action)
    if not isinstance(value, dict):
        _refuse(f"body is {_kind(value)}, not a JSON object", action)
    try:
        # A "\ud800" escape decodes to a lone surrogate, which no node sends and which could
        # not be logged or echoed later.
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        _refuse("body has a lone surrogate escape", action)
    return value


async def _read(request: Request, action: str) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        _refuse(f"body larger than {MAX_BODY_BYTES} bytes", action)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            _refuse(f"body larger than {MAX_BODY_BYTES} bytes", action)
        chunks.append(chunk)
    return b"".join(chunks)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _RepeatedKeyError(key)
        result[key] = value
    return result


def _no_constant(name: str) -> NoReturn:
    # Python reads NaN and Infinity; Go's decoder and the JSON spec do not.
    raise ValueError(f"{name} is not JSON")


def _kind(value: object) -> str:
    if isinstance(value, list):
        return "a JSON array"
    if isinstance(value, str):
        return "a JSON string"
    if value is None:
        return "JSON null"
    if isinstance(value, bool):
        return "a JSON bool"
    return "a JSON number"


def _refuse(reason: str, action: str) -> NoReturn:
    raise MalformedRequest(reason, action=action)
