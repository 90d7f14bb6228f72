"""Event webhooks (``listenerHookURL``, ``statusWebHookURL``) to Events."""

from __future__ import annotations

import json
import time

import pytest

from castgate import ACTIONS, NOTIFICATIONS, MalformedRequest
from castgate_antmedia.hooks import ACTIONS as AMS_ACTIONS

from .support import (
    FORM_TYPE,
    JSON_TYPE,
    Fixture,
    as_expected,
    fixture,
    fixtures,
    parse,
    parse_fixture,
)

EVENTS = [each for each in fixtures() if each.route == ""]


def _json(**fields: object) -> bytes:
    return json.dumps(fields, ensure_ascii=False).encode()


STARTED = {
    "id": "s1",
    "action": "liveStreamStarted",
    "app": "LiveApp",
    "timestamp": "1795424400123",
}


@pytest.mark.parametrize("item", EVENTS, ids=lambda item: item.name)
def test_every_event_fixture_parses_into_its_documented_event(item: Fixture) -> None:
    event = parse_fixture(item)
    assert as_expected(event, item.event) == item.event
    assert event.is_notification
    assert event.action in ACTIONS
    json.dumps(event.to_dict())  # raw stays JSON for the decision log


def test_every_action_in_the_reference_has_json_and_form_fixtures() -> None:
    names = {item.name for item in EVENTS}
    assert {f"json/{action}" for action in AMS_ACTIONS if action != "highResourceUsage"} <= names
    assert {"server/highResourceUsage", "server/highResourceUsage_shutdown"} <= names
    form = {name.removeprefix("form/") for name in names if name.startswith("form/")}
    assert {"liveStreamStarted", "liveStreamEnded", "playStarted", "playStopped"} <= form
    assert len(form) >= 10


@pytest.mark.parametrize(
    ("ams", "action", "role"),
    [
        ("liveStreamStarted", "publish_started", "publisher"),
        ("liveStreamEnded", "publish_done", "publisher"),
        ("playStarted", "play_started", "viewer"),
        ("playStopped", "play_done", "viewer"),
        ("vodReady", "notify", ""),
        ("liveStreamStatus", "notify", "publisher"),
    ],
)
def test_mapping(ams: str, action: str, role: str) -> None:
    assert AMS_ACTIONS[ams] == (action, role)


def test_every_ams_action_is_a_notification() -> None:
    assert {action for action, _ in AMS_ACTIONS.values()} <= NOTIFICATIONS


def test_arrival_time_when_ams_sends_no_timestamp() -> None:
    before = time.time()
    event = parse_fixture(fixture("form/legacy_liveStreamStarted"))
    assert before <= event.time <= time.time()
    assert "delivery" not in event.raw


# --- encoding: the body decides, not the header -------------------------------------------------


@pytest.mark.parametrize(
    "content_type", [FORM_TYPE, "text/plain", "application/octet-stream", None]
)
def test_json_is_read_as_json_whatever_the_header(content_type: str | None) -> None:
    item = fixture("json/liveStreamStarted")
    event = parse(b"\r\n  " + item.body, content_type=content_type)
    assert event.raw["encoding"] == "json"
    assert event.raw["metadata"] == {"owner": "ops", "tier": "gold"}
    assert event.stream == "stream1"


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", None])
def test_form_is_read_as_form_whatever_the_header(content_type: str | None) -> None:
    item = fixture("form/liveStreamStarted")
    event = parse(item.body, content_type=content_type)
    assert event.raw["encoding"] == "form"
    assert event.raw["streamName"] == "Café Studio"  # %E9: ISO-8859-1, as HttpClient encodes


def test_a_declared_charset_applies_to_the_percent_escapes_of_a_form() -> None:
    body = b"id=s1&action=liveStreamStarted&streamName=Caf%C3%A9"
    assert parse(body, content_type=f"{FORM_TYPE}; charset=UTF-8").raw["streamName"] == "Café"
    latin = parse(body, content_type=f"{FORM_TYPE}; charset=ISO-8859-1")
    assert latin.raw["streamName"] == "CafÃ©"
    with pytest.raises(MalformedRequest, match="not valid utf-8"):
        parse(fixture("form/liveStreamStarted").body, content_type=JSON_TYPE)


def test_a_text_plain_body_in_utf8_but_declared_iso_8859_1_is_read_as_declared() -> None:
    body = _json(**STARTED, streamName="Café")
    declared = parse(body, content_type="text/plain; charset=ISO-8859-1")
    assert declared.raw["streamName"] == "CafÃ©"  # the header is what AMS says it sent
    assert parse(body, content_type="text/plain").raw["streamName"] == "Café"


# --- time and de-duplication --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stamp", "seconds"),
    [
        ("1795424400123", 1795424400.123),
        (1795424400123, 1795424400.123),
        (1795424400123.0, 1795424400.123),
        ("0", 0.0),
        ("253402300799999", 253402300799.999),
    ],
)
def test_timestamp_is_epoch_milliseconds(stamp: str | int | float, seconds: float) -> None:
    event = parse(_json(**{**STARTED, "timestamp": stamp}))
    assert event.time == pytest.approx(seconds)
    assert event.raw["spoofed"] == []
    assert event.raw["delivery"] == f"s1:liveStreamStarted:{int(float(stamp))}"


@pytest.mark.parametrize(
    "stamp",
    [
        "yesterday",
        "-1",
        "1.5e12",
        "253402300800000",
        "9" * 5000,
        "\uff11\uff12\uff13",  # fullwidth digits: isdigit() is true for them
        1.5,
        -5,
        True,
        [1],
        {},
    ],
)
def test_a_timestamp_ams_cannot_have_written_is_spoofed_and_arrival_time_is_used(
    stamp: object,
) -> None:
    before = time.time()
    event = parse(_json(**{**STARTED, "timestamp": stamp}))
    assert before <= event.time <= time.time()
    assert event.raw["spoofed"] == ["timestamp"]
    assert "delivery" not in event.raw


def test_a_retry_is_the_same_delivery() -> None:
    body = fixture("json/liveStreamEnded").body
    first, retry = parse(body), parse(body)
    key = (first.vendor, first.session_id, first.action, first.time, first.raw["delivery"])
    assert key == (retry.vendor, retry.session_id, retry.action, retry.time, retry.raw["delivery"])
    assert first.raw["delivery"] == "stream1:liveStreamEnded:1795424461357"


def test_out_of_order_events_keep_their_own_times() -> None:
    ended = parse(fixture("json/liveStreamEnded").body)
    started = parse(fixture("json/liveStreamStarted").body)
    assert started.time < ended.time
    assert started.session_id == ended.session_id == "stream1"


# --- fields, params, metadata --------------------------------------------------------------------


def test_unknown_action_is_a_notify_with_the_event_name() -> None:
    event = parse(_json(**{**STARTED, "action": "streamRecordingStarted"}))
    assert (event.action, event.role) == ("notify", "")
    assert event.raw["event"] == "streamRecordingStarted"


def test_params_are_the_merged_client_parameters_without_empty_values() -> None:
    body = _json(**STARTED, token="t", blank="", space=" ", nil="nil", none=None, n=5, o={"a": 1})
    event = parse(body)
    assert dict(event.params) == {"token": "t", "n": 5, "o": {"a": 1}}
    assert event.raw["nil"] == "nil"
    assert event.raw["none"] is None


def test_ams_own_keys_stay_out_of_params_except_subscriber_id() -> None:
    event = parse_fixture(fixture("json/vodReady"))
    assert dict(event.params) == {}
    assert (event.raw["vodId"], event.raw["duration"]) == ("k2n4p6r8t0v2x4z6b8d0f2h4", "61234")
    viewer = parse_fixture(fixture("json/playStarted"))
    assert viewer.params["subscriberId"] == "alice"


def test_duration_is_a_client_parameter_outside_vod_ready() -> None:
    assert parse(_json(**STARTED, duration="5")).params == {"duration": "5"}


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"a": 1}, {"a": 1}),
        ('{"a": 1}', {"a": 1}),
        ("plain text", "plain text"),
        ("{broken", "{broken"),
        ('["x"]', '["x"]'),
    ],
)
def test_metadata_object_or_text(metadata: object, expected: object) -> None:
    assert parse(_json(**STARTED, metadata=metadata)).raw["metadata"] == expected


def test_viewers_are_told_apart_by_subscriber_id() -> None:
    body = {"id": "s1", "action": "playStarted", "app": "LiveApp", "timestamp": "1"}
    assert parse(_json(**body, subscriberId="alice")).session_id == "s1/alice"
    assert parse(_json(**body)).session_id == "s1"
    publisher = parse(_json(**STARTED, subscriberId="cam-7"))
    assert publisher.session_id == "s1"


def test_node_from_the_hook_url_then_the_server_hook_host_then_the_peer() -> None:
    started = fixture("json/liveStreamStarted").body
    assert parse(started, target="/hooks/antmedia?node=ams-1").node == "ams-1"
    assert parse(started, target="/hooks/antmedia?node=").node == "10.1.2.3"
    assert parse(started, client=None).node == ""
    server = fixture("server/highResourceUsage").body
    assert parse(server).node == "10.0.0.5"
    assert parse(server, target="/hooks/antmedia?x=1&node=ams-2").node == "ams-2"
    # a client parameter named node or host never names the node
    assert parse(_json(**STARTED, node="evil", host="evil")).node == "10.1.2.3"


# --- forged fields -------------------------------------------------------------------------------


def test_a_forged_live_stream_status_is_caught_in_both_encodings() -> None:
    event = parse_fixture(fixture("spoofed/liveStreamStatus_from_query"))
    assert event.raw["spoofed"] == ["action"]
    form = parse(b"id=s1&action=liveStreamStatus&app=LiveApp&timestamp=1&token=t")
    assert form.raw["spoofed"] == ["action"]
    assert form.params == {"app": "LiveApp", "token": "t"}


@pytest.mark.parametrize("value", ["1280", True])
def test_live_stream_status_numbers_that_are_not_numbers_are_forged(value: object) -> None:
    status = json.loads(fixture("json/liveStreamStatus").body)
    status["width"] = value
    assert parse(json.dumps(status).encode()).raw["spoofed"] == ["action"]


def test_a_genuine_live_stream_status_is_not_spoofed_in_either_encoding() -> None:
    assert parse_fixture(fixture("json/liveStreamStatus")).raw["spoofed"] == []
    assert parse_fixture(fixture("form/liveStreamStatus")).raw["spoofed"] == []


def test_a_server_hook_with_stream_keys_is_forged_and_its_host_not_believed() -> None:
    event = parse(_json(**{**STARTED, "action": "highResourceUsage", "host": "evil"}))
    assert event.raw["spoofed"] == ["action"]
    assert event.action == "notify"
    assert event.node == "10.1.2.3"


def test_a_server_hook_resource_report_as_an_object_is_kept() -> None:
    body = _json(action="highResourceUsage", host="10.0.0.5", resourceInfo={"cpuUsage": 93})
    event = parse(body)
    assert event.raw["resourceInfo"] == {"cpuUsage": 93}
    assert event.raw["spoofed"] == []


def test_a_client_delivery_key_never_stands_in_for_castgates() -> None:
    event = parse(_json(**{**STARTED, "timestamp": "soon", "delivery": "s1:x:1"}))
    assert "delivery" not in event.raw
    assert event.raw["spoofed"] == ["delivery", "timestamp"]
    assert event.params["delivery"] == "s1:x:1"


def test_room_and_main_track_disagree_only_when_forged() -> None:
    assert parse_fixture(fixture("spoofed/roomId_from_query")).raw["spoofed"] == [
        "mainTrackId",
        "roomId",
    ]
    assert parse_fixture(fixture("json/firstActiveTrackAddedInMainTrack")).raw["spoofed"] == []


def test_client_parameters_named_like_castgate_raw_keys_are_overwritten_and_reported() -> None:
    event = parse_fixture(fixture("spoofed/raw_keys_from_query"))
    assert event.raw["event"] == "liveStreamStarted"
    assert event.raw["encoding"] == "json"
    assert event.raw["spoofed"] == ["encoding", "event", "spoofed"]
    assert event.params["event"] == "liveStreamEnded"


def test_an_overwritten_action_cannot_be_told_from_a_genuine_one() -> None:
    # The limitation docs/vendors/antmedia.md spells out: AMS's map keeps only the client's value.
    forged = parse_fixture(fixture("spoofed/action_from_query_undetectable"))
    genuine = parse(_json(id="stream1", action="liveStreamEnded", app="LiveApp", timestamp="1"))
    assert forged.action == genuine.action == "publish_done"
    assert forged.raw["spoofed"] == genuine.raw["spoofed"] == []


# --- refused --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"", "empty"),
        (b"  \r\n", "empty"),
        (_json(id="s1", app="LiveApp"), "no action"),
        (_json(id="s1", action="", app="LiveApp"), "no action"),
        (_json(id="s1", action="nil"), "no action"),
        (_json(id="s1", action=None), "no action"),
        (b"id=s1&app=LiveApp", "no action"),
        (b"[1,2,3]", "no action"),  # not JSON by its first character: a form without action
        (_json(id=5, action="liveStreamStarted"), "id must be a string"),
        (_json(id="s1", action=["liveStreamStarted"]), "action must be a string"),
        (_json(id="s1", action="liveStreamStarted", app={"x": 1}), "app must be a string"),
        (_json(id="s1", action="liveStreamStarted", streamName=1.5), "streamName"),
        (_json(action="highResourceUsage", host=7), "host must be a string"),
        (_json(action="highResourceUsage", appNames=["LiveApp"]), "appNames must be a string"),
        (b'{"id":"s1","action":"liveStreamStarted"', "not valid JSON"),
        (b'{"id":"a","action":"liveStreamStarted","id":"b"}', "'id' repeats"),
        (b"id=a&action=liveStreamStarted&id=b", "'id' repeats"),
        (b"action=liveStreamStarted&action=liveStreamEnded", "'action' repeats"),
        (b"id=caf\xc3\xa9&action=liveStreamStarted", "raw non-ASCII"),
    ],
)
def test_refused(body: bytes, problem: str) -> None:
    with pytest.raises(MalformedRequest, match=problem) as caught:
        parse(body, content_type=None)
    assert caught.value.action == "notify"


def test_an_authentication_body_sent_here_names_the_right_route() -> None:
    with pytest.raises(MalformedRequest, match="/hooks/antmedia/publish"):
        parse(fixture("publish/rtmp").body)


def test_a_declared_utf8_body_that_is_not_utf8_is_refused() -> None:
    body = _json(**STARTED, streamName="Café").replace("é".encode(), b"\xe9")
    with pytest.raises(MalformedRequest, match="not valid utf-8"):
        parse(body, content_type=JSON_TYPE)
