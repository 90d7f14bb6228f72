"""The kls vendor's answers and declarations, and its registration through the entry point."""

from __future__ import annotations

import asyncio

import pluggy
import pytest
from starlette.responses import Response
from starlette.types import Message

import castgate.hookspecs
from castgate import ACTIONS, NOTIFICATIONS, Decision, Effect, Event, MalformedRequest
from castgate_kls import Kls

from .support import ANSWERS

VENDOR = Kls()


def _wire(response: Response) -> tuple[int, list[list[str]], bytes]:
    """Status, headers and body exactly as Starlette hands them to the server."""
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(response({"type": "http", "method": "POST"}, receive, send))
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    headers = [[key.decode(), value.decode()] for key, value in start["headers"]]
    return start["status"], headers, body


def _event(action: str) -> Event:
    return Event(vendor="kls", action=action, app="live", stream="cam1")


@pytest.mark.parametrize(
    "decision",
    [
        Decision(Effect.ACK, "notification acknowledged"),
        Decision(Effect.ACK, "unknown push key", rule="unknown_key", flagged=True),
        Decision(Effect.ACK, "rule r failed: boom", rule="r", failed=True, flagged=True),
        # Never produced for KLS's notifications; KLS could not act on a refusal anyway.
        Decision(Effect.DENY, "no"),
        Decision(Effect.ALLOW, "ok", response={"lifetime": 60}),
    ],
)
@pytest.mark.parametrize("action", sorted(Kls.actions))
def test_every_decision_is_an_empty_200(decision: Decision, action: str) -> None:
    status, headers, body = _wire(VENDOR.render(decision, _event(action)))
    ack = ANSWERS["ack"]
    assert (status, body) == (ack["status"], b"")
    # The app adds Connection: close to every answer; the vendor's own headers are the rest.
    assert headers == [header for header in ack["headers"] if header[0] != "connection"]


@pytest.mark.parametrize("action", ["publish_started", "publish_done", "notify", ""])
def test_malformed_is_a_400_with_the_reason(action: str) -> None:
    error = MalformedRequest("body is a JSON array, not a JSON object", action=action)
    status, headers, body = _wire(VENDOR.render_malformed(error, ""))
    assert (status, body) == (400, b"body is a JSON array, not a JSON object")
    assert headers == [
        ["content-length", str(len(body))],
        ["content-type", "text/plain; charset=utf-8"],
    ]


def test_a_malformed_reason_is_one_short_printable_line() -> None:
    error = MalformedRequest("line1\r\nline2\x00" + "x" * 500)
    _, _, body = _wire(VENDOR.render_malformed(error, ""))
    assert body.startswith(b"line1  line2 x")
    assert len(body) == 200
    _, _, empty = _wire(VENDOR.render_malformed(MalformedRequest(""), ""))
    assert empty == b"malformed request"


def test_declarations() -> None:
    assert Kls.name == "kls"
    assert tuple(Kls.routes) == ("",)
    assert Kls.actions == {"publish_started", "publish_done", "notify"}
    assert Kls.actions <= NOTIFICATIONS <= ACTIONS
    assert dict(Kls.response_fields) == {}
    assert VENDOR.validate_response({}) == []


def test_registers_through_the_castgate_entry_point_group() -> None:
    manager = pluggy.PluginManager("castgate")
    manager.add_hookspecs(castgate.hookspecs)
    assert manager.load_setuptools_entrypoints("castgate", name="kls") == 1
    vendors = [vendor for batch in manager.hook.castgate_register_vendors() for vendor in batch]
    assert [type(vendor) for vendor in vendors] == [Kls]
