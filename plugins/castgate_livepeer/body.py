"""Reading a go-livepeer webhook body: one small JSON object, or a refusal saying why.

The node builds its bodies with Go's ``json.Marshal`` of a one-key map (``{"url": ...}`` or
``{"id": ...}``): valid UTF-8, no repeated keys, no lone surrogates, no NaN. Anything else did
not come from a node as written, so it is refused rather than guessed at; the route's answer
to a refusal is a deny, never an allow.
"""

from __future__ import annotations

from typing import Any, NoReturn

from starlette.requests import Request

from castgate import (
    InvalidJSONError,
    LoneSurrogateError,
    MalformedRequest,
    NestingError,
    NotAnObjectError,
    NotUTF8Error,
    RepeatedKeyError,
    read_body,
    read_json_object,
)

#: A node's body is one URL or one address: well under 4 KiB. Anything this large is not a
#: node talking and is refused before it costs memory.
MAX_BODY_BYTES = 64 * 1024

#: How a refusal names what the body was instead of an object.
_KINDS = {
    "array": "a JSON array",
    "string": "a JSON string",
    "number": "a JSON number",
    "boolean": "a JSON bool",
    "null": "JSON null",
}


async def read_object(request: Request, *, action: str = "") -> dict[str, Any]:
    """The body as a JSON object, whatever the Content-Type says; :class:`MalformedRequest`
    (carrying ``action``) if it is anything else."""
    try:
        data = await read_body(request, limit=MAX_BODY_BYTES, action=action)
    except MalformedRequest:
        _refuse(f"body larger than {MAX_BODY_BYTES} bytes", action)
    try:
        # No depth limit of its own: Python's parser refuses what it cannot read.
        return read_json_object(data, max_depth=None)
    except NotUTF8Error:
        _refuse("body is not UTF-8", action)
    except NestingError:
        _refuse("body is JSON nested too deeply", action)
    except RepeatedKeyError as repeated:
        # Go keeps the last of two equal keys, other readers the first: never pick one.
        _refuse(f"body repeats the JSON key {repeated.key[:40]!r}", action)
    except InvalidJSONError:
        _refuse("body is not JSON" if data.strip() else "body is empty", action)
    except NotAnObjectError as error:
        _refuse(f"body is {_KINDS.get(error.kind, error.kind)}, not a JSON object", action)
    except LoneSurrogateError:
        # A "\ud800" escape decodes to a lone surrogate, which no node sends and which could
        # not be logged or echoed later.
        _refuse("body has a lone surrogate escape", action)


def _refuse(reason: str, action: str) -> NoReturn:
    raise MalformedRequest(reason, action=action)
