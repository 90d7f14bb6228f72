"""The vendor: decisions to answers (byte for byte, from the answer fixtures), refusals,
validate_response, and what it declares."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pluggy
import pytest

import castgate.hookspecs
from castgate import ACTIONS, NOTIFICATIONS, Decision, Effect, Event, MalformedRequest
from castgate_livepeer import Livepeer

from .support import FIXTURES, fixture_json, wire

VENDOR = Livepeer()
ANSWERS = sorted(path.stem for path in (FIXTURES / "answers").glob("*.json"))


def decision_of(answer: dict[str, Any]) -> Decision:
    effect = Effect(answer["effect"])
    return Decision(effect, answer.get("reason", ""), response=answer.get("response", {}))


def event_for(action: str) -> Event:
    return Event(vendor="livepeer", action=action, app="live", stream="k")


@pytest.mark.parametrize("name", ANSWERS)
def test_each_decision_renders_its_fixture_answer_exactly(name: str) -> None:
    answer = fixture_json(f"answers/{name}.json")
    status, headers, body = wire(VENDOR.render(decision_of(answer), event_for(answer["action"])))
    assert status == answer["status"]
    assert headers.get("content-type") == answer["content_type"]
    assert body == answer["body"].encode()
    assert headers["content-length"] == str(len(body))
    assert "location" not in headers


def test_the_answers_cover_every_hook_and_effect() -> None:
    seen = {
        (
            fixture_json(f"answers/{name}.json")["action"],
            fixture_json(f"answers/{name}.json")["effect"],
        )
        for name in ANSWERS
    }
    assert seen == {
        ("publish", "allow"),
        ("publish", "deny"),
        ("play", "allow"),
        ("play", "deny"),
        ("discover", "allow"),
        ("discover", "deny"),
    }


def test_an_allow_never_sends_an_empty_object_to_a_broadcaster() -> None:
    for response in (
        {},
        {"lifetime": 3600},
        {"priceInfo": {"pricePerUnit": 1, "pixelsPerUnit": 1}},
    ):
        _, _, body = wire(
            VENDOR.render(Decision(Effect.ALLOW, "", response=response), event_for("publish"))
        )
        assert body == b""


def test_an_orchestrator_always_gets_json() -> None:
    decision = Decision(Effect.ALLOW, "", response={"manifestID": "m1", "lifetime": 60})
    assert wire(VENDOR.render(decision, event_for("discover")))[1:] == (
        {"content-length": "2", "content-type": "application/json"},
        b"{}",
    )


def test_data_the_node_cannot_take_is_refused_at_render_too() -> None:
    decision = Decision(Effect.ALLOW, "", response={"profiles": [{"width": 1}]})
    status, _, body = wire(VENDOR.render(decision, event_for("publish")))
    assert status == 403
    assert body.startswith(b"invalid response data: manifestID is required")
    price = Decision(
        Effect.ALLOW, "", response={"priceInfo": {"pricePerUnit": 1, "pixelsPerUnit": 0}}
    )
    status, _, body = wire(VENDOR.render(price, event_for("discover")))
    assert (status, body[:22]) == (403, b"invalid response data:")


def test_a_deny_reason_is_one_short_line() -> None:
    decision = Decision(Effect.DENY, "line1\r\nline2\x00" + "x" * 500)
    _, _, body = wire(VENDOR.render(decision, event_for("publish")))
    assert body.startswith(b"line1  line2 x")
    assert len(body) == 200
    _, _, empty = wire(VENDOR.render(Decision(Effect.DENY, ""), event_for("play")))
    assert empty == b"denied"


def test_only_an_allow_is_a_200() -> None:
    # Livepeer has no notifications; an acknowledgement reaching render is refused, not allowed.
    status, _, _ = wire(VENDOR.render(Decision(Effect.ACK, "ack"), event_for("publish")))
    assert status == 403


@pytest.mark.parametrize("route", ["", "orchestrator"])
@pytest.mark.parametrize("action", ["", "publish", "play", "discover"])
def test_a_malformed_request_is_a_refusal_on_both_hooks(route: str, action: str) -> None:
    response = VENDOR.render_malformed(MalformedRequest("body is not JSON", action=action), route)
    assert wire(response) == (
        403,
        {"content-length": "16", "content-type": "text/plain; charset=utf-8"},
        b"body is not JSON",
    )


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (
            {"manifestID": "m1", "priceInfo": {"pricePerUnit": 1, "pixelsPerUnit": 1}},
            "priceInfo answers an orchestrator and manifestID a broadcaster",
        ),
        ({"presets": ["P240p30fps16x9"]}, "manifestID is required with presets"),
        ({"priceInfo": {"pricePerUnit": 1}}, "priceInfo needs pixelsPerUnit"),
        ({"manifestID": "live/x"}, "would reach the node as 'live'"),
    ],
)
def test_validate_response_refuses(data: dict[str, Any], problem: str) -> None:
    assert problem in " | ".join(VENDOR.validate_response(data))


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"manifestID": "m1"},
        # the core's key, valid for every vendor: never rendered, never refused
        {"lifetime": 3600},
        {"manifestID": "m1", "lifetime": 60},
        {"priceInfo": {"pricePerUnit": 0, "pixelsPerUnit": 1}},
        # constant data as the checker hands it over: tuples for lists
        {
            "manifestID": "m1",
            "presets": ("P240p30fps16x9",),
            "profiles": ({"width": 2, "height": 2, "bitrate": 100000},),
        },
    ],
)
def test_validate_response_accepts(data: dict[str, Any]) -> None:
    assert VENDOR.validate_response(data) == []


def test_every_answer_fixture_is_valid_data() -> None:
    for name in ANSWERS:
        assert (
            VENDOR.validate_response(fixture_json(f"answers/{name}.json").get("response", {})) == []
        )


def test_declarations() -> None:
    assert Livepeer.name == "livepeer"
    assert tuple(Livepeer.routes) == ("", "orchestrator")
    assert Livepeer.actions == {"publish", "play", "discover"}
    assert Livepeer.actions <= ACTIONS
    assert not Livepeer.actions & NOTIFICATIONS
    types = {key: field.type for key, field in Livepeer.response_fields.items()}
    assert types == {
        "manifestID": "string",
        "streamKey": "string",
        "presets": "list",
        "profiles": "list",
        "streamID": "string",
        "sessionID": "string",
        "objectStore": "string",
        "recordObjectStore": "string",
        "recordObjectStoreUrl": "string",
        "previousSessions": "list",
        "verificationFreq": "number",
        "priceInfo": "object",
    }
    assert all(field.doc for field in Livepeer.response_fields.values())


def test_registers_through_the_castgate_entry_point_group() -> None:
    manager = pluggy.PluginManager("castgate")
    manager.add_hookspecs(castgate.hookspecs)
    assert manager.load_setuptools_entrypoints("castgate", name="livepeer") == 1
    vendors = [vendor for batch in manager.hook.castgate_register_vendors() for vendor in batch]
    assert [type(vendor) for vendor in vendors] == [Livepeer]


def test_the_plugin_imports_only_the_public_door() -> None:
    package = Path(castgate.__file__).parents[2] / "plugins" / "castgate_livepeer"
    for module in package.glob("*.py"):
        for line in module.read_text().splitlines():
            if line.startswith(("import castgate", "from castgate")):
                assert line.startswith(("from castgate import", "from castgate_livepeer")), line
