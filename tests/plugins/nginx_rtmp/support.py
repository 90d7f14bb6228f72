"""Building Starlette requests from an ASGI scope, so parse tests need no web server."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from requests_asgi import asgi_request
from starlette.requests import Request

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
    """A request as nginx-rtmp sends it: HTTP/1.0, ``Connection: Close``."""
    return asgi_request(
        body,
        target=target,
        method=method,
        headers=[(b"host", b"127.0.0.1"), (b"connection", b"Close")],
        content_type=content_type,
        content_length=content_length,
        http_version="1.0",
        client=client,
        server=("127.0.0.1", 8080),
        chunks=chunks,
    )


def parse(body: bytes = b"", route: str = "", **options: object) -> Event:
    """``NginxRtmp().parse`` on a request built by :func:`make_request`."""
    request = make_request(body, **options)  # type: ignore[arg-type]
    return asyncio.run(NginxRtmp().parse(request, route))


def parse_fixture(relative: str, route: str = "", **options: object) -> Event:
    return parse(fixture(relative), route, **options)
