"""Reading an nginx-rtmp notify parameter string (``k=v&k=v``) into ordered pairs.

Order and duplicates are kept on purpose: which occurrence of a key is genuine depends on where it
stands (see :mod:`castgate_nginx_rtmp.layout`), so this module never builds a dict. The reading
itself is castgate's (:func:`castgate.parse_form`, :func:`castgate.read_body`).
"""

from __future__ import annotations

from starlette.requests import Request

import castgate

#: A decoded ``key=value`` pair. A pair without ``=`` has the value ``""``.
Pair = tuple[str, str]

#: nginx-rtmp's own bodies are well under 2 KiB (the stream name plus args is capped at 255 bytes),
#: so anything this large is not nginx talking and is refused before it costs memory.
MAX_BODY_BYTES = 64 * 1024

#: What an invalid UTF-8 sequence decodes to; callers that must not guess (stream name, app) look
#: for it and refuse the request.
REPLACEMENT = "\ufffd"


async def read_body(request: Request) -> bytes:
    """The request body, whatever its Content-Type, refusing more than :data:`MAX_BODY_BYTES`."""
    return await castgate.read_body(request, limit=MAX_BODY_BYTES)


def split_pairs(data: bytes) -> list[Pair]:
    """Split on ``&``, then on the FIRST ``=``, then percent-decode with ``+`` as space.

    Client args reach us raw (never re-escaped by nginx-rtmp), so malformed escapes and bytes
    that are not UTF-8 are normal input here: they decode leniently and never raise.
    """
    return castgate.parse_form(data)
