"""The PPV sync and (un)publish alerts: signature first, then one event per player or alert."""

from __future__ import annotations

import json
from typing import Any

import pytest

from castgate import MalformedRequest
from castgate_nimble.sync import ForgedSync

from .support import FIXTURES, TOKEN, comparable, fixture, fixture_json, parse_sync, sign

SYNC_FIXTURES = sorted(
    path.name
    for path in (FIXTURES / "ppv").glob("*.json")
    if ".expected." not in path.name and not path.name.startswith("official")
)

SYNC_ID, PUZZLE = "5d6c7b8a-0000-4000-8000-00000000abcd", "9f8e7d6c-1111-4222-8333-444455556666"


def _signed(**fields: Any) -> dict[str, Any]:
    return {"ID": SYNC_ID, "Puzzle": PUZZLE, "Signature": sign(SYNC_ID, PUZZLE), **fields}


def _tree(*players: Any, stream: Any = "cam1") -> dict[str, Any]:
    return {
        "VHost": [
            {
                "name": "_defaultVHost_",
                "Application": [
                    {
                        "name": "live",
                        "Instance": [
                            {"name": "_definst_", "Stream": [{"name": stream, "Player": players}]}
                        ],
                    }
                ],
            }
        ]
    }


def _sync(body: dict[str, Any], **options: Any) -> Any:
    return parse_sync(json.dumps(body).encode(), **options)


def _refused(body: dict[str, Any] | bytes, **options: Any) -> MalformedRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(MalformedRequest) as caught:
        parse_sync(raw, **options)
    assert caught.value.action == "update"
    return caught.value


def test_there_are_sync_fixtures() -> None:
    assert len(SYNC_FIXTURES) >= 8


@pytest.mark.parametrize("name", SYNC_FIXTURES)
def test_sync_fixture_parses_into_the_expected_events(name: str) -> None:
    batch = parse_sync(fixture(f"ppv/{name}"))
    expected = fixture_json(f"ppv/{name.replace('.json', '.expected.json')}")
    assert [comparable(event) for event in batch.events] == expected


def test_the_official_sample_signed_with_our_token_gives_one_update_per_player() -> None:
    batch = parse_sync(fixture("ppv/sample_signed.json"))
    assert [(e.action, e.params["id"], e.client_ip) for e in batch.events] == [
        ("update", "1", "192.168.10.10"),
        ("update", "2", "192.168.10.11"),
        ("update", "4", "127.0.0.1"),
        ("update", "5", "127.0.0.1"),
    ]
    first = batch.events[0]
    assert (first.app, first.stream, first.role, first.session_id) == (
        "vod",
        "sample.mp4",
        "viewer",
        "1",
    )
    assert first.params == {
        "id": "1",
        "delta": 286786,
        "vhost": "_defaultVHost_",
        "instance": "_definst_",
    }
    assert first.raw["player"] == {"id": "1", "ip": "192.168.10.10", "delta": 286786}
    assert batch.context == {"sync_id": "35465921-42f0-4a98-91b1-74305f329b4f", "players": 4}


def test_the_official_sample_as_published_is_refused_under_another_token() -> None:
    error = _refused(fixture("ppv/official_sample.json"))
    assert isinstance(error, ForgedSync)
    assert "does not match" in error.reason


def test_the_signature_is_computed_as_documented() -> None:
    # base64(md5_raw(ID + Puzzle + Token)), computed in support.py without the plugin's code
    assert parse_sync(json.dumps(_signed(PayPerViewInfo=_tree())).encode()).events == ()


@pytest.mark.parametrize(
    "change",
    [
        {"Signature": sign(SYNC_ID, PUZZLE, token="another-token")},
        {"Signature": sign(SYNC_ID, PUZZLE).lower()},
        {"Signature": sign(SYNC_ID, PUZZLE) + " "},
        {"Puzzle": PUZZLE + "0"},
        {"ID": "other"},
        {"Signature": "\u00e9" * 24},
    ],
)
def test_a_wrong_signature_is_forged(change: dict[str, Any]) -> None:
    error = _refused({**_signed(PayPerViewInfo=_tree({"id": "1"})), **change})
    assert isinstance(error, ForgedSync)
    assert "CASTGATE_NIMBLE_TOKEN" in error.reason


@pytest.mark.parametrize(
    "change",
    [
        {"Signature": None},
        {"Signature": ""},
        {"ID": 5},
        {"Puzzle": ["x"]},
        {"Signature": {"v": 1}},
    ],
)
def test_an_unsigned_sync_is_forged(change: dict[str, Any]) -> None:
    error = _refused({**_signed(), **change})
    assert isinstance(error, ForgedSync)
    assert "unsigned" in error.reason


def test_without_a_token_every_sync_is_refused_and_says_why() -> None:
    for token in (None, ""):
        error = _refused(fixture("ppv/sample_signed.json"), token=token)
        assert isinstance(error, ForgedSync)
        assert "set CASTGATE_NIMBLE_TOKEN" in error.reason


def test_the_signature_is_checked_before_the_tree_is_read() -> None:
    body = {**_signed(PayPerViewInfo="garbage"), "Signature": "bad"}
    assert isinstance(_refused(body), ForgedSync)


def test_a_wrapped_envelope_must_be_alone() -> None:
    body = {"ApiSyncRequest": _signed(), "ID": SYNC_ID}
    error = _refused(body)
    assert not isinstance(error, ForgedSync)
    assert "only key" in error.reason
    assert "only key" in _refused({"ApiSyncRequest": [_signed()]}).reason


@pytest.mark.parametrize(
    ("info", "reason"),
    [
        ("text", "PayPerViewInfo must be an array of objects"),
        ({"VHost": "x"}, "VHost must be an array of objects"),
        ({"VHost": [1]}, "VHost must be an array of objects"),
        ({"VHost": [{"Application": [[]]}]}, "Application must be an array of objects"),
        (_tree("player"), "Player must be an array of objects"),
        (_tree({"id": 1.5}), "'id' must be a string"),
        (_tree({"id": True}), "'id' must be a string"),
        (_tree({"id": "1", "ip": ["x"]}), "'ip' must be a string"),
        (_tree({"id": "1", "delta": "soon"}), "delta must be a number"),
        (_tree({"id": "1", "delta": [1]}), "delta must be a number"),
        (_tree({"id": "1"}, stream={"n": 1}), "'name' must be a string"),
    ],
)
def test_a_malformed_tree_is_refused_whole(info: Any, reason: str) -> None:
    error = _refused(_signed(PayPerViewInfo=info))
    assert not isinstance(error, ForgedSync)
    assert reason in error.reason


@pytest.mark.parametrize("info", [None, "", [], {}, {"VHost": []}, {"VHost": None}])
def test_empty_levels_give_no_events(info: Any) -> None:
    assert _sync(_signed(PayPerViewInfo=info)).events == ()


def test_player_fields() -> None:
    players = (
        {"id": 7, "ip": "192.0.2.7", "delta": "1500"},
        {"id": "", "ip": "", "sessionid": "s-1"},
        {"id": "8", "sessionid": 99, "delta": None, "extra": {"deep": [1]}},
        {"id": "nil", "delta": -5},
    )
    events = _sync(_signed(PayPerViewInfo=_tree(*players))).events
    assert [dict(e.params) for e in events] == [
        {"id": "7", "delta": "1500", "vhost": "_defaultVHost_", "instance": "_definst_"},
        {"vhost": "_defaultVHost_", "instance": "_definst_"},
        {"id": "8", "vhost": "_defaultVHost_", "instance": "_definst_"},
        {"delta": -5, "vhost": "_defaultVHost_", "instance": "_definst_"},
    ]
    assert [e.session_id for e in events] == ["7", "s-1", "99", ""]
    assert [e.client_ip for e in events] == ["192.0.2.7", "", "", ""]
    assert events[2].raw["player"]["extra"] == {"deep": [1]}


def test_every_event_carries_the_envelope_but_not_the_signature() -> None:
    [event] = _sync(_signed(PayPerViewInfo=_tree({"id": "1"}))).events
    assert event.raw["sync"] == {"ID": SYNC_ID, "Puzzle": PUZZLE}
    assert event.raw["path"] == {
        "vhost": "_defaultVHost_",
        "application": "live",
        "instance": "_definst_",
        "stream": "cam1",
    }


def test_alerts_and_players_in_one_envelope_keep_their_order() -> None:
    alert = {"VHostName": "v", "AppName": "live", "AppInstanceName": "i", "StreamName": "cam1"}
    body = _signed(Publish=[alert], Unpublish=alert, PayPerViewInfo=_tree({"id": "1"}, {"id": "2"}))
    batch = _sync(body)
    assert [e.action for e in batch.events] == [
        "publish_started",
        "publish_done",
        "update",
        "update",
    ]
    assert batch.context["players"] == 2
    published = batch.events[0]
    assert (published.role, published.app, published.stream) == ("publisher", "live", "cam1")
    assert published.params == {"vhost": "v", "instance": "i"}
    assert published.raw["event"] == "Publish"
    assert batch.events[1].raw["event"] == "Unpublish"


def test_an_alert_with_wrong_types_is_refused() -> None:
    assert "must be a string" in _refused(_signed(Publish={"AppName": ["live"]})).reason
    assert "Publish must be an array" in _refused(_signed(Publish="live")).reason


def test_the_token_is_the_one_from_construction() -> None:
    body = json.dumps(_signed(PayPerViewInfo=_tree({"id": "1"}))).encode()
    assert len(parse_sync(body, token=TOKEN).events) == 1
    assert isinstance(_refused(body, token=TOKEN + "x"), ForgedSync)
