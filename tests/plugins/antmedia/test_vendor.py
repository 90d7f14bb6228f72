"""Decisions to AMS answers, the vendor's declarations, and its registration."""

from __future__ import annotations

from pathlib import Path

import pluggy
import pytest
from requests_asgi import wire

import castgate.hookspecs
from castgate import ACTIONS, Decision, Effect, Event, MalformedRequest
from castgate.lang import PolicyError, compile_sources
from castgate_antmedia import AntMedia

VENDOR = AntMedia()


def _compile(source: str) -> object:
    return compile_sources(
        [("p.policy", source, Path())], vendors={"antmedia": VENDOR}, functions={}
    )


def _event(action: str) -> Event:
    return Event(vendor="antmedia", action=action, app="LiveApp", stream="stream1")


@pytest.mark.parametrize("action", ["publish", "play"])
def test_allow_is_exactly_an_empty_200(action: str) -> None:
    decision = Decision(Effect.ALLOW, "allowed by rule r", rule="r")
    assert wire(VENDOR.render(decision, _event(action))) == (
        200,
        [(b"content-length", b"0")],
        b"",
    )


@pytest.mark.parametrize("action", ["publish", "play"])
def test_deny_is_403_with_the_reason(action: str) -> None:
    status, headers, body = wire(VENDOR.render(Decision(Effect.DENY, "bad token"), _event(action)))
    assert (status, body) == (403, b"bad token")
    assert headers == [(b"content-length", b"9"), (b"content-type", b"text/plain; charset=utf-8")]


def test_deny_reason_is_one_short_line() -> None:
    decision = Decision(Effect.DENY, "line1\r\nline2\x00" + "x" * 500)
    _, _, body = wire(VENDOR.render(decision, _event("publish")))
    assert body.startswith(b"line1  line2 x")
    assert len(body) == 200
    _, _, empty = wire(VENDOR.render(Decision(Effect.DENY, ""), _event("publish")))
    assert empty == b"denied"


@pytest.mark.parametrize("action", sorted(AntMedia.actions - {"publish", "play"}))
@pytest.mark.parametrize("effect", [Effect.ACK, Effect.DENY, Effect.ALLOW])
def test_every_notification_is_acknowledged_with_exactly_200(action: str, effect: Effect) -> None:
    # Even a decision that is not an ack (it cannot happen) never makes AMS retry a delivery.
    decision = Decision(effect, "x", flagged=effect is Effect.DENY)
    assert wire(VENDOR.render(decision, _event(action))) == (
        200,
        [(b"content-length", b"0")],
        b"",
    )


def test_response_data_is_never_rendered() -> None:
    decision = Decision(Effect.ALLOW, "ok", response={"lifetime": 3600})
    assert wire(VENDOR.render(decision, _event("publish")))[::2] == (200, b"")


@pytest.mark.parametrize("route", ["publish", "play"])
def test_an_unreadable_authentication_request_is_denied(route: str) -> None:
    response = VENDOR.render_malformed(MalformedRequest("no streamId", action=route), route)
    assert wire(response)[::2] == (403, b"no streamId")


def test_an_unreadable_event_webhook_is_400() -> None:
    response = VENDOR.render_malformed(MalformedRequest("no action", action="notify"), "")
    status, headers, body = wire(response)
    assert (status, body) == (400, b"no action")
    assert (b"content-type", b"text/plain; charset=utf-8") in headers


def test_declarations() -> None:
    assert AntMedia.name == "antmedia"
    assert tuple(AntMedia.routes) == ("", "publish", "play")
    assert AntMedia.actions == {
        "publish",
        "play",
        "publish_started",
        "publish_done",
        "play_started",
        "play_done",
        "notify",
    }
    assert AntMedia.actions <= ACTIONS
    assert dict(AntMedia.response_fields) == {}
    assert VENDOR.validate_response({}) == []


def test_the_checker_refuses_response_data_for_antmedia() -> None:
    source = 'rule r { on publish from antmedia  allow with { rename: "x" } }'
    with pytest.raises(PolicyError) as caught:
        _compile(source)
    assert [each.code for each in caught.value.diagnostics] == ["E501"]
    assert "cannot be rendered by antmedia" in caught.value.report()


def test_the_checker_accepts_the_core_lifetime_and_antmedia_actions() -> None:
    source = (
        "rule r { on publish from antmedia  allow with { lifetime: 1h } }\n"
        "rule s { on publish_started, play_started, play_done from antmedia  allow }\n"
    )
    assert _compile(source)


def test_the_checker_refuses_actions_antmedia_never_sends() -> None:
    with pytest.raises(PolicyError) as caught:
        _compile("rule r { on update from antmedia  allow }")
    assert [each.code for each in caught.value.diagnostics] == ["E204"]


def test_registers_through_the_castgate_entry_point_group() -> None:
    manager = pluggy.PluginManager("castgate")
    manager.add_hookspecs(castgate.hookspecs)
    assert manager.load_setuptools_entrypoints("castgate", name="antmedia") == 1
    vendors = [vendor for batch in manager.hook.castgate_register_vendors() for vendor in batch]
    assert [type(vendor) for vendor in vendors] == [AntMedia]
