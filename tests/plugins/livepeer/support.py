"""Fixtures, requests built from an ASGI scope, and answers as bytes: so tests of the plugin's
parts need no web server (tests of the whole path use the app, in test_app.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from requests_asgi import asgi_request
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message

from castgate import Event
from castgate_livepeer import Livepeer

FIXTURES = Path(__file__).parents[2] / "fixtures" / "livepeer"
#: Where the orchestrator calls from in the event fixtures.
ORCHESTRATOR_PEER = ("10.0.0.5", 51000)


def fixture(relative: str) -> bytes:
    return (FIXTURES / relative).read_bytes()


def fixture_json(relative: str) -> Any:
    return json.loads(fixture(relative))


def request_names(hook: str) -> list[str]:
    """The request fixtures of one hook (``broadcaster`` or ``orchestrator``), by name."""
    return sorted(path.stem for path in (FIXTURES / "requests" / hook).glob("*.json"))


def make_request(
    body: bytes = b"",
    *,
    method: str = "POST",
    target: str = "/hooks/livepeer",
    content_type: str | None = "application/json",
    client: tuple[str, int] | None = ORCHESTRATOR_PEER,
    chunks: Sequence[bytes] | None = None,
    content_length: str | None = None,
) -> Request:
    """A request as go-livepeer's ``http.Post`` sends it: one body with a length."""
    return asgi_request(
        body,
        target=target,
        method=method,
        headers=[(b"host", b"127.0.0.1:8070"), (b"user-agent", b"Go-http-client/1.1")],
        content_type=content_type,
        content_length=content_length,
        client=client,
        chunks=chunks,
    )


def parse(body: bytes, route: str = "", **options: Any) -> Event:
    """``Livepeer().parse`` on a request built by :func:`make_request`."""
    return asyncio.run(Livepeer().parse(make_request(body, **options), route))


def parse_url(url: str, route: str = "", **options: Any) -> Event:
    return parse(json.dumps({"url": url}).encode(), route, **options)


def event_dict(event: Event) -> dict[str, Any]:
    """The event as the fixtures hold it: ``to_dict()`` without the arrival time, through JSON
    (which also proves ``raw`` serialisable)."""
    data = event.to_dict()
    del data["time"]
    loaded: dict[str, Any] = json.loads(json.dumps(data))
    return loaded


def wire(response: Response) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body exactly as Starlette hands them to the server."""
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(response({"type": "http", "method": "POST"}, receive, send))
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in start["headers"]}
    return start["status"], headers, body
