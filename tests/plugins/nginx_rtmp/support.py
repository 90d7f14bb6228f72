"""Building Starlette requests from an ASGI scope, so parse tests need no web server."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from starlette.requests import Request
from starlette.types import Message

from castgate import Event
from castgate_nginx_rtmp import NginxRtmp

FIXTURES = Path(__file__).parents[2] / "fixtures" / "nginx_rtmp"
FORM = "application/x-www-form-urlencoded"


def fixture(relative: str) -> bytes:
    return (FIXTURES / relative).read_bytes()


def make_request(
    body: bytes = b"",
    *,
    method: str = "POST",
    target: str = "/hooks/nginx_rtmp",
    content_type: str | None = FORM,
    client: tuple[str, int] | None = ("10.1.2.3", 40000),
    chunks: Sequence[bytes] | None = None,
    content_length: str | None = None,
) -> Request:
    """A request as uvicorn hands it over: the target's query is everything after the FIRST "?"."""
    path, _, query = target.partition("?")
    headers = [(b"host", b"127.0.0.1"), (b"connection", b"Close")]
    if content_type is not None:
        headers.append((b"content-type", content_type.encode()))
    length = content_length if content_length is not None else str(len(body))
    headers.append((b"content-length", length.encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.0",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode("latin-1"),
        "headers": headers,
        "client": client,
        "server": ("127.0.0.1", 8080),
    }
    parts = list(chunks) if chunks is not None else [body]
    messages: list[Message] = [
        {"type": "http.request", "body": part, "more_body": index < len(parts) - 1}
        for index, part in enumerate(parts)
    ]

    async def receive() -> Message:
        if messages:
            return messages.pop(0)
        return {"type": "http.disconnect"}

    return Request(scope, receive)


def parse(body: bytes = b"", route: str = "", **options: object) -> Event:
    """``NginxRtmp().parse`` on a request built by :func:`make_request`."""
    request = make_request(body, **options)  # type: ignore[arg-type]
    return asyncio.run(NginxRtmp().parse(request, route))


def parse_fixture(relative: str, route: str = "", **options: object) -> Event:
    return parse(fixture(relative), route, **options)
