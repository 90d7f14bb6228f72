"""Publish (``webhookAuthenticateURL``) and play (``webhookPlayAuthUrl``) authentication."""

from __future__ import annotations

import json

import pytest

from castgate import MalformedRequest
from castgate_antmedia.auth import client_address

from .support import AUTH_TYPE, Fixture, as_expected, fixture, fixtures, parse, parse_fixture

AUTH = [each for each in fixtures() if each.route in ("publish", "play")]

PUBLISH = {"appName": "LiveApp", "name": "s1", "streamId": "s1", "mode": "live"}
PLAY = {"streamId": "s1", "mode": "play", "appName": "LiveApp", "origin": "https://example.com"}


def _json(**fields: object) -> bytes:
    return json.dumps(fields, ensure_ascii=False).encode()


@pytest.mark.parametrize("item", AUTH, ids=lambda item: item.name)
def test_every_authentication_fixture_parses_into_its_documented_event(item: Fixture) -> None:
    event = parse_fixture(item)
    assert as_expected(event, item.event) == item.event
    assert not event.is_notification
    json.dumps(event.to_dict())


def test_fixtures_cover_both_hooks() -> None:
    assert {item.route for item in AUTH} == {"publish", "play"}
    assert len(AUTH) >= 10


def test_explicit_client_fields_win_over_query_params() -> None:
    event = parse_fixture(fixture("publish/explicit_fields"))
    assert event.params["token"] == "t0k3n"
    assert event.params["subscriberId"] == "cam-7"
    assert event.raw["query"]["token"] == "stale"  # still visible
    assert event.params["tier"] == "gold"  # entries without an explicit field stay


def test_an_empty_explicit_field_does_not_hide_the_query_value() -> None:
    event = parse(_json(**PUBLISH, token="", queryParams="{token=q}"), "publish")
    assert event.params["token"] == "q"


@pytest.mark.parametrize(
    ("query", "params"),
    [
        ("{token=a, b=c}", {"token": "a", "b": "c"}),
        ({"token": "a", "n": 1}, {"token": "a", "n": 1}),
        (None, {}),
        ("", {}),
        ("{}", {}),
        ("{token=, k= }", {}),
    ],
)
def test_query_params(query: object, params: dict[str, object]) -> None:
    event = parse(_json(**PUBLISH, queryParams=query), "publish")
    assert dict(event.params) == params


def test_query_params_of_another_type_are_refused() -> None:
    with pytest.raises(MalformedRequest, match="queryParams must be a string") as caught:
        parse(_json(**PUBLISH, queryParams=["token=a"]), "publish")
    assert caught.value.action == "publish"


def test_a_repeated_query_key_is_reported() -> None:
    event = parse_fixture(fixture("publish/query_repeated_key"))
    assert event.raw["spoofed"] == ["queryParams"]
    assert event.params["token"] == "t0k3n, token=forged"


def test_meta_data_is_the_operators_and_stays_out_of_params() -> None:
    event = parse_fixture(fixture("publish/rtmp"))
    assert event.raw["metaData"] == {"owner": "ops"}
    assert "metaData" not in event.params
    assert parse(_json(**PUBLISH, metaData="just text"), "publish").raw["metaData"] == "just text"
    assert parse(_json(**PLAY, metaData={"k": "v"}), "play").raw["metaData"] == {"k": "v"}


def test_stream_from_name_before_2_4_3() -> None:
    event = parse(_json(appName="LiveApp", name="s1"), "publish")
    assert (event.stream, event.session_id, event.role) == ("s1", "s1", "publisher")


def test_publish_and_play_sessions() -> None:
    assert parse(_json(**PUBLISH, subscriberId="cam-7"), "publish").session_id == "s1"
    viewer = parse(_json(**PLAY, subscriberId="alice"), "play")
    assert (viewer.session_id, viewer.role, viewer.action) == ("s1/alice", "viewer", "play")
    assert parse(_json(**PLAY), "play").session_id == "s1"


def test_node_from_the_hook_url_else_the_peer() -> None:
    body = _json(**PUBLISH)
    assert parse(body, "publish", target="/hooks/antmedia/publish?node=ams-1").node == "ams-1"
    assert parse(body, "publish").node == "10.1.2.3"


def test_an_iso_8859_1_body_reads_as_ams_wrote_it() -> None:
    event = parse_fixture(fixture("publish/iso_8859_1_body"))
    assert event.stream == "kanal-ü"
    assert event.raw["metaData"] == {"title": "Café live"}


def test_a_body_declared_utf8_that_is_not_is_refused() -> None:
    body = _json(**{**PUBLISH, "streamId": "kanal-ü", "name": "kanal-ü"}).replace(
        "ü".encode(), b"\xfc"
    )
    with pytest.raises(MalformedRequest, match="not valid utf-8") as caught:
        parse(body, "publish", content_type="application/json; charset=utf-8")
    assert caught.value.action == "publish"
    assert parse(body, "publish", content_type=AUTH_TYPE).stream == "kanal-ü"


@pytest.mark.parametrize(
    ("value", "ip", "port"),
    [
        ("203.0.113.7", "203.0.113.7", None),
        ("2001:db8::7", "2001:db8::7", None),
        ("/203.0.113.7:51000", "203.0.113.7", 51000),
        ("viewer.example/203.0.113.7:51000", "203.0.113.7", 51000),
        ("/[2001:db8::7]:51000", "2001:db8::7", 51000),
        ("/2001:db8::7", "2001:db8::7", None),
        ("203.0.113.7:0", "203.0.113.7:0", None),
        ("203.0.113.7:99999", "203.0.113.7:99999", None),
        ("not an address", "not an address", None),
        ("", "", None),
    ],
)
def test_client_address(value: str, ip: str, port: int | None) -> None:
    assert client_address(value) == (ip, port)


def test_ip_address_becomes_the_client() -> None:
    event = parse(_json(**PLAY, ipAddress="/198.51.100.4:40400"), "play")
    assert (event.client_ip, event.client_port) == ("198.51.100.4", 40400)
    assert parse(_json(**PLAY), "play").client_ip == ""


def test_origin_stays_in_raw() -> None:
    event = parse(_json(**PLAY), "play")
    assert event.raw["origin"] == "https://example.com"
    assert "origin" not in event.params


def test_keys_named_like_castgate_raw_keys_are_reported() -> None:
    event = parse(_json(**PUBLISH, query="x", spoofed=["nothing"]), "publish")
    assert event.raw["spoofed"] == ["query", "spoofed"]
    assert event.raw["query"] == {}


@pytest.mark.parametrize(
    ("route", "body", "problem"),
    [
        ("publish", {"appName": "LiveApp", "mode": "live"}, "without a streamId"),
        ("publish", {**PUBLISH, "streamId": "s1", "name": "s2"}, "name and streamId differ"),
        ("publish", {**PUBLISH, "mode": "play"}, "webhookPlayAuthUrl"),
        ("play", {**PLAY, "mode": "live"}, "webhookAuthenticateURL"),
        ("play", {"mode": "play", "appName": "LiveApp"}, "without a streamId"),
        ("publish", {**PUBLISH, "streamId": 7, "name": None}, "streamId must be a string"),
        ("publish", {**PUBLISH, "token": {"t": 1}}, "token must be a string"),
        ("play", {**PLAY, "ipAddress": ["1.2.3.4"]}, "ipAddress must be a string"),
        ("play", {**PLAY, "origin": 5}, "origin must be a string"),
        ("publish", {**PUBLISH, "appName": True}, "appName must be a string"),
    ],
)
def test_refused(route: str, body: dict[str, object], problem: str) -> None:
    with pytest.raises(MalformedRequest, match=problem) as caught:
        parse(_json(**body), route)
    assert caught.value.action == route


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"", "not valid JSON"),
        (b"appName=LiveApp&streamId=s1", "not valid JSON"),
        (b'{"streamId":"s1"', "not valid JSON"),
        (b'["s1"]', "array"),
        (b'"s1"', "string"),
        (b'{"streamId":"s1","streamId":"s2"}', "repeats"),
        (b"[" * 50_000 + b"]" * 50_000, "nested too deeply"),
        (b'{"a":' * 20_000 + b"1" + b"}" * 20_000, "nested too deeply"),
    ],
    ids=["empty", "form", "truncated", "array", "string", "repeated", "deep-array", "deep-object"],
)
@pytest.mark.parametrize("route", ["publish", "play"])
def test_unreadable_bodies_are_refused(route: str, body: bytes, problem: str) -> None:
    with pytest.raises(MalformedRequest, match=problem) as caught:
        parse(body, route)
    assert caught.value.action == route


def test_unknown_route_is_refused() -> None:
    with pytest.raises(MalformedRequest, match="route"):
        parse(_json(**PUBLISH), "nope")
