"""Plain ASGI for vendor tests, without running a server: requests built from a scope, as uvicorn
hands them to a vendor's ``parse`` (each vendor's ``support.make_request`` sets the headers and
peer its streaming server sends), and responses read back as the bytes a server would send."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message


def asgi_request(
    body: bytes = b"",
    *,
    target: str,
    method: str = "POST",
    headers: Sequence[tuple[bytes, bytes]] = (),
    content_type: str | None = None,
    content_length: str | None = None,
    http_version: str = "1.1",
    client: tuple[str, int] | None = None,
    server: tuple[str, int] = ("127.0.0.1", 8070),
    chunks: Sequence[bytes] | None = None,
) -> Request:
    """A request for ``target`` (path, and the query after the FIRST ``?``).

    ``content_length`` defaults to the body's length; ``chunks`` delivers the body in several
    ``http.request`` messages, as a slow client's would arrive."""
    path, _, query = target.partition("?")
    all_headers = list(headers)
    if content_type is not None:
        all_headers.append((b"content-type", content_type.encode("latin-1")))
    length = content_length if content_length is not None else str(len(body))
    all_headers.append((b"content-length", length.encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": http_version,
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode("latin-1"),
        "headers": all_headers,
        "client": client,
        "server": server,
    }
    parts = list(chunks) if chunks is not None else [body]
    messages: list[Message] = [
        {"type": "http.request", "body": part, "more_body": index < len(parts) - 1}
        for index, part in enumerate(parts)
    ]

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    return Request(scope, receive)


def wire(response: Response) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, headers and body of ``response`` exactly as Starlette hands them to the server."""
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(response({"type": "http", "method": "POST"}, receive, send))
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], list(start["headers"]), body
