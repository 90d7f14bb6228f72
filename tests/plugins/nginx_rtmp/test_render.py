"""Decisions to nginx-rtmp answers, rename validation, and the plugin's registration."""

from __future__ import annotations

from typing import Any

import pluggy
import pytest
from requests_asgi import wire

import castgate.hookspecs
from castgate import ACTIONS, Decision, Effect, Event, MalformedRequest, ResponseField
from castgate_nginx_rtmp import NginxRtmp

VENDOR = NginxRtmp()


def _event(action: str) -> Event:
    return Event(vendor="nginx_rtmp", action=action, app="live", stream="secret1")


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    return [value for key, value in headers if key.lower() == name]


def test_allow_is_an_empty_200_that_closes() -> None:
    status, headers, body = wire(VENDOR.render(Decision(Effect.ALLOW, "ok"), _event("publish")))
    assert (status, body) == (200, b"")
    assert _header(headers, b"connection") == [b"close"]
    assert _header(headers, b"location") == []


def test_ack_is_200() -> None:
    status, headers, _ = wire(VENDOR.render(Decision(Effect.ACK, ""), _event("publish_done")))
    assert status == 200
    assert _header(headers, b"connection") == [b"close"]


@pytest.mark.parametrize("action", ["publish", "play", "update", "connect"])
def test_deny_is_403_with_the_reason(action: str) -> None:
    status, headers, body = wire(
        VENDOR.render(Decision(Effect.DENY, "key not allowed"), _event(action))
    )
    assert (status, body) == (403, b"key not allowed")
    assert _header(headers, b"connection") == [b"close"]
    assert _header(headers, b"content-type")[0].startswith(b"text/plain")


def test_deny_reason_is_one_short_line() -> None:
    decision = Decision(Effect.DENY, "line1\r\nline2\x00" + "x" * 500)
    _, _, body = wire(VENDOR.render(decision, _event("publish")))
    assert body.startswith(b"line1  line2 x")
    assert len(body) == 200
    assert b"\n" not in body
    _, _, empty = wire(VENDOR.render(Decision(Effect.DENY, ""), _event("publish")))
    assert empty == b"denied"


@pytest.mark.parametrize("action", ["publish", "play"])
@pytest.mark.parametrize("name", ["public1", "pub/lic", "kanal-ü", "rtmp://10.0.0.2:1936/live/x"])
def test_rename_is_a_bare_302_location_set_verbatim(action: str, name: str) -> None:
    decision = Decision(Effect.ALLOW, "ok", response={"rename": name})
    status, headers, body = wire(VENDOR.render(decision, _event(action)))
    assert (status, body) == (302, b"")
    assert _header(headers, b"location") == [name.encode()]
    assert _header(headers, b"connection") == [b"close"]


@pytest.mark.parametrize("action", ["connect", "update", "publish_done", "done"])
def test_rename_is_ignored_where_nginx_would_misread_it(action: str) -> None:
    # on connect a Location would become the application name
    decision = Decision(Effect.ALLOW, "ok", response={"rename": "public1"})
    status, headers, _ = wire(VENDOR.render(decision, _event(action)))
    assert status == 200
    assert _header(headers, b"location") == []


def test_an_invalid_rename_that_reaches_render_is_denied() -> None:
    decision = Decision(Effect.ALLOW, "ok", response={"rename": "a\r\nX-Evil: 1"})
    status, headers, body = wire(VENDOR.render(decision, _event("publish")))
    assert status == 403
    assert body.startswith(b"invalid rename")
    assert _header(headers, b"location") == []


def test_deny_wins_over_rename_data() -> None:
    decision = Decision(Effect.DENY, "no", response={"rename": "public1"})
    assert wire(VENDOR.render(decision, _event("publish")))[0] == 403


@pytest.mark.parametrize("action", ["publish", "play", "update", "connect", ""])
def test_malformed_decision_calls_are_denied(action: str) -> None:
    response = VENDOR.render_malformed(MalformedRequest("no call field", action=action), "")
    status, headers, body = wire(response)
    assert (status, body) == (403, b"no call field")
    assert _header(headers, b"connection") == [b"close"]


@pytest.mark.parametrize(
    "action", ["publish_done", "play_done", "done", "record_done", "disconnect", "notify"]
)
def test_malformed_notifications_are_400(action: str) -> None:
    response = VENDOR.render_malformed(MalformedRequest("bad body", action=action), "fork")
    assert wire(response)[:3:2] == (400, b"bad body")


GOOD = [
    "public1",
    "a",
    "n" * 254,
    "é" * 127,  # 254 bytes
    "live/sub",
    "rtmp://10.0.0.2/app/name",
    "RTMP://10.0.0.2:1936/app/name/more",
    "rtmp://[::1]:1935/app/name",
    "rtmp://[2001:db8::7]/app/n",
]
BAD = [
    ("", "empty"),
    ("n" * 255, "255 bytes"),
    ("é" * 128, "256 bytes"),
    ("a?b=1", "'?'"),
    ("a b", "whitespace"),
    ("a\tb", "whitespace"),
    ("a\nb", "whitespace"),
    ("a\x00b", "control"),
    ("a\x7fb", "control"),
    ("rtmp://example.com/app/name", "IP address"),
    ("rtmp://10.0.0.2/app", "rtmp://IP"),
    ("rtmp://10.0.0.2/", "rtmp://IP"),
    ("rtmp://10.0.0.2", "rtmp://IP"),
    ("rtmp://10.0.0.2:0/a/b", "port"),
    ("rtmp://10.0.0.2:99999/a/b", "port"),
    ("rtmp://10.0.0.2:x/a/b", "port"),
    ("rtmp://[::1/a/b", "IPv6"),
    ("rtmp://[::1]x/a/b", "IPv6"),
    ("rtmp://::1/a/b", "IP address"),
    ("rtmp://010.0.0.2/a/b", "IP address"),
]


@pytest.mark.parametrize("value", GOOD)
def test_validate_response_accepts(value: str) -> None:
    assert VENDOR.validate_response({"rename": value}) == []


@pytest.mark.parametrize(("value", "problem"), BAD)
def test_validate_response_refuses(value: str, problem: str) -> None:
    problems = VENDOR.validate_response({"rename": value})
    assert problems
    assert problem in " ".join(problems)


@pytest.mark.parametrize("value", [5, None, ["a"], "\ud800"])
def test_validate_response_refuses_non_text(value: Any) -> None:
    assert VENDOR.validate_response({"rename": value})


def test_validate_response_without_rename() -> None:
    assert VENDOR.validate_response({}) == []


def test_declarations() -> None:
    assert NginxRtmp.name == "nginx_rtmp"
    assert tuple(NginxRtmp.routes) == ("", "fork")
    assert NginxRtmp.actions <= ACTIONS
    assert {"publish", "play", "update", "done", "connect", "notify"} <= NginxRtmp.actions
    assert set(NginxRtmp.response_fields) == {"rename"}
    field = NginxRtmp.response_fields["rename"]
    assert isinstance(field, ResponseField)
    assert field.type == "string"


def test_registers_through_the_castgate_entry_point_group() -> None:
    manager = pluggy.PluginManager("castgate")
    manager.add_hookspecs(castgate.hookspecs)
    assert manager.load_setuptools_entrypoints("castgate", name="nginx_rtmp") == 1
    vendors = [vendor for batch in manager.hook.castgate_register_vendors() for vendor in batch]
    assert [type(vendor) for vendor in vendors] == [NginxRtmp]
