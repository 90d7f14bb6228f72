"""Reading a KLS callback body and telling the two versions apart by what the body is.

KLS sends the old form callback without a Content-Type and gives the new one no documented
header either, so the header is ignored: a body that opens with ``{`` is the new version's
JSON, anything else is read as a form. Either version can be switched on in the KLS console, so
one route takes both.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

import castgate
from castgate import Event, MalformedRequest
from castgate_kls.form import split_pairs
from castgate_kls.json_text import load_object, load_value
from castgate_kls.new_callback import new_event
from castgate_kls.old_callback import old_event

#: KLS bodies are a few hundred bytes; this much is not KLS talking, and is refused before it
#: costs memory.
MAX_BODY_BYTES = 64 * 1024

_JSON_OPENERS = (b"{", b"[", b'"')
_BOM = b"\xef\xbb\xbf"


async def read_body(request: Request) -> bytes:
    """The request body, whatever its Content-Type, refusing more than :data:`MAX_BODY_BYTES`."""
    return await castgate.read_body(request, limit=MAX_BODY_BYTES)


def callback_event(body: bytes) -> Event:
    """The event for a callback body of either version."""
    data = body.removeprefix(_BOM).strip()
    if not data:
        raise MalformedRequest("empty body: a KLS callback is a JSON object or a form")
    if data.startswith(_JSON_OPENERS):
        return new_event(_json_body(data))
    pairs = split_pairs(data)
    if any(key == "call" for key, _ in pairs):
        return old_event(pairs)
    if any(key.casefold() == "notifytype" for key, _ in pairs):
        # [unverified] The console's "callback body encoding: string" is undocumented; the new
        # version's fields sent as a form is one shape it may take.
        return new_event(_form_object(pairs))
    raise MalformedRequest("neither a JSON callback (no NotifyType) nor a form callback (no call)")


def _json_body(data: bytes) -> dict[str, Any]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedRequest("body is not valid UTF-8") from None
    if text.startswith('"'):
        # [unverified] A "string"-encoded callback may be the JSON object sent as a JSON string.
        inner = load_value(text, "body")
        if isinstance(inner, str) and inner.strip().startswith("{"):
            return load_object(inner, "body's JSON string")
    return load_object(text, "body")


def _form_object(pairs: list[tuple[str, str]]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for key, value in pairs:
        if key in fields:
            raise MalformedRequest(f"field {key[:40]!r} is sent twice")
        fields[key] = value
    return fields
