"""New callbacks (JSON, NotifyType PubStart/PubEnd) to events: every typing variant."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from castgate import ACTIONS, MalformedRequest
from castgate_kls.new_callback import new_event

from .support import EVENTS, REQUESTS, fixture, json_body, parse

NEW = [name for name in REQUESTS if name.startswith(("new/", "string/"))]


@pytest.mark.parametrize("name", NEW)
def test_fixture_parses_into_the_documented_event(name: str) -> None:
    before = time.time()
    event = parse(fixture(name)).to_dict()
    expected = dict(EVENTS[name])
    if expected["time"] == "arrival":
        assert before <= event["time"] <= time.time()
        expected["time"] = event["time"]
    assert event == expected
    assert event["action"] in ACTIONS
    assert event["raw"]["callback"] == "new"


def test_the_2020_and_2024_docs_pair_a_start_with_its_end() -> None:
    start, end = parse(fixture("new/pubstart_2020.json")), parse(fixture("new/pubend_2020.json"))
    assert start.session_id == end.session_id == "test.uplive.ks-cdn.com/live/test"
    assert (start.action, end.action) == ("publish_started", "publish_done")
    assert end.time - start.time == 60.0
    start, end = parse(fixture("new/pubstart_2024.json")), parse(fixture("new/pubend_2024.json"))
    assert start.session_id == end.session_id == "b2f0d1c4-2a4e-4b7c-9d31-70a5d4c3e8f1"
    assert end.time - start.time == pytest.approx(3600.0)


@pytest.mark.parametrize(
    ("stamp", "ms"),
    [
        ("1456800010000", 1456800010000),
        (1670575130460, 1670575130460),
        (1670575130460.5, 1670575130460),
        ("1670575130460.75", 1670575130460),
    ],
)
def test_start_time_in_every_type(stamp: Any, ms: int) -> None:
    event = parse(json_body(PubStartUnixTime=stamp))
    assert event.raw["PubStartUnixTime"] == ms
    assert isinstance(event.raw["PubStartUnixTime"], int)
    assert event.time == ms / 1000


@pytest.mark.parametrize("stamp", ["1670578730460", 1670578730460, 1670578730460.0])
def test_end_time_in_every_type(stamp: Any) -> None:
    event = parse(json_body(NotifyType="PubEnd", PubStartUnixTime=None, PubEndUnixTime=stamp))
    assert event.action == "publish_done"
    assert event.raw["PubEndUnixTime"] == 1670578730460
    assert event.time == 1670578730.46


def test_a_pubend_dated_only_by_a_start_time_is_dated_on_arrival() -> None:
    # The 2020 doc's PubEnd table names its time PubStartUnixTime; that is the push's start.
    before = time.time()
    event = parse(json_body(NotifyType="PubEnd"))
    assert before <= event.time <= time.time()
    assert event.raw["PubStartUnixTime"] == 1670575130460


def test_both_times_are_normalised_and_the_events_own_one_dates_it() -> None:
    body = json_body(NotifyType="PubEnd", PubStartUnixTime="1000", PubEndUnixTime="2000")
    event = parse(body)
    assert (event.raw["PubStartUnixTime"], event.raw["PubEndUnixTime"]) == (1000, 2000)
    assert event.time == 2.0


@pytest.mark.parametrize(
    ("value", "port"), [(17102, 17102), ("17102", 17102), (" ", None), ("", None), (None, None)]
)
def test_client_port(value: Any, port: int | None) -> None:
    assert parse(json_body(ClientPort=value)).client_port == port  # None: no ClientPort


@pytest.mark.parametrize("value", [" ", "", "nil", None])
def test_blank_client_ip_node_and_sequence_are_absent(value: Any) -> None:
    fields = {"ClientIp": value, "Node": value, "Sequence": value}
    body = json.loads(json_body())
    body.update(fields)
    event = parse(json.dumps(body).encode())
    assert (event.client_ip, event.node) == ("", "")
    assert event.session_id == "push.example.com/live/cam1"


def test_the_sequence_is_the_session_id_whatever_else_is_sent() -> None:
    assert parse(json_body(Sequence="s-1")).session_id == "s-1"
    assert parse(json_body(Sequence=12)).session_id == "12"


def test_a_push_without_a_stream_name_has_no_session_to_pair() -> None:
    event = parse(json_body(Stream=" "))
    assert (event.stream, event.session_id) == ("", "")


def test_unknown_notify_types_are_notify_with_the_name_in_raw() -> None:
    event = parse(json_body(NotifyType="RecordDone"))
    assert (event.action, event.role) == ("notify", "")
    assert event.raw["event"] == "RecordDone"


@pytest.mark.parametrize("notify_type", ["pubstart", "PUBSTART", " PubStart "])
def test_notify_type_case_and_spaces_do_not_matter(notify_type: str) -> None:
    event = parse(json_body(NotifyType=notify_type))
    assert event.action == "publish_started"
    assert event.raw["event"] == notify_type


def test_field_names_are_matched_without_regard_to_case() -> None:
    body = json.loads(json_body())
    body["PubDomain"] = body.pop("Pubdomain")
    body["pubstartunixtime"] = body.pop("PubStartUnixTime")
    event = parse(json.dumps(body).encode())
    assert event.raw["domain"] == "push.example.com"
    assert event.raw["pubstartunixtime"] == 1670575130460
    assert event.time == 1670575130.46


def test_unknown_fields_are_kept_in_raw() -> None:
    event = parse(json_body(Bitrate=2500, Extra={"a": [1]}))
    assert event.raw["Bitrate"] == 2500
    assert event.raw["Extra"] == {"a": [1]}


def test_body_keys_named_like_castgates_own_are_overwritten_and_reported() -> None:
    event = parse(json_body(domain="evil.example", callback="old", spoofed=[]))
    assert (event.raw["domain"], event.raw["callback"]) == ("push.example.com", "new")
    assert event.raw["spoofed"] == ["callback", "domain", "spoofed"]


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"NotifyType": None}, "no NotifyType"),
        ({"NotifyType": " "}, "no NotifyType"),
        ({"NotifyType": 1.5}, None),  # a number is text here; an unknown type
        ({"NotifyType": ["PubStart"]}, "NotifyType must be text, not a list"),
        ({"App": {"name": "live"}}, "App must be text, not an object"),
        ({"Stream": True}, "Stream must be text, not a boolean"),
        ({"Pubdomain": []}, "Pubdomain must be text"),
        ({"Node": {}}, "Node must be text"),
        ({"ClientIp": [1]}, "ClientIp must be text"),
        ({"Sequence": {}}, "Sequence must be text"),
        ({"Version": []}, "Version must be text"),
        ({"UniqueName": {}}, "UniqueName must be text"),
        ({"PubEndMessage": [" "]}, "PubEndMessage must be text"),
        ({"PubStartUnixTime": "soon"}, "PubStartUnixTime must be epoch milliseconds"),
        ({"PubEndUnixTime": -5}, "PubEndUnixTime -5 is outside 1970..9999"),
        ({"ClientPort": "port"}, "ClientPort must be a port number"),
        ({"ClientPort": 70000}, "ClientPort must be a port number"),
        ({"PubParam": 5}, "PubParam must be an object"),
        ({"PubParam": "[1, 2]"}, "PubParam must be an object"),
        ({"PubParam": '{"k": 1'}, "PubParam is not valid JSON"),
    ],
)
def test_wrong_types_are_refused_naming_the_field(
    fields: dict[str, Any], problem: str | None
) -> None:
    body = json.loads(json_body())
    for key, value in fields.items():
        if value is None:
            body.pop(key)
        else:
            body[key] = value
    if problem is None:
        assert new_event(body).action == "notify"
        return
    with pytest.raises(MalformedRequest) as caught:
        new_event(body)
    assert problem in caught.value.reason


def test_a_refusal_names_the_action_it_was_for() -> None:
    body = json.loads(json_body(ClientPort="x"))
    with pytest.raises(MalformedRequest) as caught:
        new_event(body)
    assert caught.value.action == "publish_started"


def test_two_fields_differing_only_in_case_are_refused() -> None:
    body = json.loads(json_body())
    body["app"] = "other"
    with pytest.raises(MalformedRequest, match="'App' and 'app' differ only in case"):
        new_event(body)
