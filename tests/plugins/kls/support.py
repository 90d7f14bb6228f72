"""Requests as KLS sends them, built from an ASGI scope so parse tests need no web server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from requests_asgi import asgi_request
from starlette.requests import Request

from castgate import Event
from castgate_kls import Kls

FIXTURES = Path(__file__).parents[2] / "fixtures" / "kls"

#: Every request fixture, by path relative to :data:`FIXTURES`.
REQUESTS = sorted(
    str(path.relative_to(FIXTURES))
    for path in FIXTURES.glob("*/*")
    if path.suffix in (".json", ".body")
)
#: What each request fixture parses into (``Event.to_dict()``).
EVENTS: dict[str, dict[str, Any]] = json.loads((FIXTURES / "events.json").read_text())
#: The answers castgate gives KLS.
ANSWERS: dict[str, dict[str, Any]] = json.loads((FIXTURES / "answers.json").read_text())


def fixture(relative: str) -> bytes:
    return (FIXTURES / relative).read_bytes()


def make_request(
    body: bytes,
    *,
    content_type: str | None = None,
    content_length: str | None = None,
    method: str = "POST",
) -> Request:
    """A request as KLS's old callback sends it: HTTP/1.0, Connection: close, no Content-Type."""
    return asgi_request(
        body,
        target="/hooks/kls",
        method=method,
        headers=[(b"connection", b"close")],
        content_type=content_type,
        content_length=content_length,
        http_version="1.0",
        client=("198.51.100.23", 40000),
    )


def parse(body: bytes, route: str = "", **options: Any) -> Event:
    """``Kls().parse`` on a request built by :func:`make_request`."""
    return asyncio.run(Kls().parse(make_request(body, **options), route))


def json_body(**fields: Any) -> bytes:
    """A new-callback body: a PubStart for ``live/cam1`` with ``fields`` changed (``None``
    removes a field)."""
    body: dict[str, Any] = {
        "Version": "1.0",
        "App": "live",
        "Pubdomain": "push.example.com",
        "Stream": "cam1",
        "PubStartUnixTime": 1670575130460,
        "NotifyType": "PubStart",
        "PubParam": {"key": "k-5f2c91d7"},
        "ClientIp": "203.0.113.50",
        "ClientPort": 17102,
        "Node": "198.51.100.23",
    }
    for key, value in fields.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return json.dumps(body).encode()


OLD_START = (
    b"app=live&name=cam1&swfurl=nil&flashver=nil&tcurl=rtmp://push.example.com/live"
    b"&call=user_publish&vdoid=7781"
)
OLD_DONE = OLD_START.replace(b"call=user_publish", b"call=user_publish_done") + b"&close_mode=1"
