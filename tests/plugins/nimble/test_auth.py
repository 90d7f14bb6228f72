"""The auth handler request: every fixture shape, the accepted spellings, and what is refused."""

from __future__ import annotations

import json
from typing import Any

import pytest

from castgate import MalformedRequest
from castgate_nimble.auth import ALIASES

from .support import FIXTURES, comparable, fixture, fixture_json, parse_auth

AUTH_FIXTURES = sorted(
    path.name for path in (FIXTURES / "auth").glob("*.json") if ".expected." not in path.name
)


def _auth(body: dict[str, Any], **options: Any) -> Any:
    return parse_auth(json.dumps(body).encode(), **options)


def _refused(body: bytes | dict[str, Any]) -> MalformedRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(MalformedRequest) as caught:
        parse_auth(raw)
    assert caught.value.action == "play"
    return caught.value


def test_there_are_auth_fixtures() -> None:
    assert len(AUTH_FIXTURES) >= 6


@pytest.mark.parametrize("name", AUTH_FIXTURES)
def test_auth_fixture_parses_into_the_expected_event(name: str) -> None:
    event = parse_auth(fixture(f"auth/{name}"))
    assert comparable(event) == fixture_json(f"auth/{name.replace('.json', '.expected.json')}")


def test_the_whole_body_is_kept_in_raw() -> None:
    body = {"ip": "192.0.2.1", "url": "/live/cam1", "Something": {"new": [1, 2]}, "x": None}
    event = _auth(body)
    assert event.raw["body"] == body
    assert event.raw["event"] == "auth"


@pytest.mark.parametrize(
    "key",
    ["ip", "IP", "clientIp", "client_ip", "ClientIP", "remote_ip", "remoteAddr", "client-ip"],
)
def test_client_ip_spellings(key: str) -> None:
    assert _auth({key: "192.0.2.1", "url": "/live/cam1"}).client_ip == "192.0.2.1"


@pytest.mark.parametrize(
    ("app_key", "stream_key"),
    [("app", "stream"), ("application", "streamName"), ("AppName", "stream_name")],
)
def test_app_and_stream_spellings(app_key: str, stream_key: str) -> None:
    event = _auth({"ip": "192.0.2.1", app_key: "live", stream_key: "cam1"})
    assert (event.app, event.stream) == ("live", "cam1")


@pytest.mark.parametrize("key", ["url", "uri", "URL", "requestUrl", "request_uri", "path"])
def test_url_spellings(key: str) -> None:
    event = _auth({"ip": "192.0.2.1", key: "/live/cam1/playlist.m3u8?k=v"})
    assert (event.app, event.stream, dict(event.params)) == ("live", "cam1", {"k": "v"})


def test_every_alias_is_in_normal_form() -> None:
    for aliases in ALIASES.values():
        for alias in aliases:
            assert alias == alias.lower().replace("_", "").replace("-", "")


@pytest.mark.parametrize(
    ("url", "app", "stream"),
    [
        ("http://edge:8081/live/cam1/playlist.m3u8", "live", "cam1"),
        ("https://edge/live/cam1/chunks.m3u8?nimblesessionid=5", "live", "cam1"),
        ("/vod/sample.mp4/manifest.mpd", "vod", "sample.mp4"),
        ("/live/cam1", "live", "cam1"),
        ("/live/cam1/", "live", "cam1"),
        ("ws://edge:8081/live/cam1", "live", "cam1"),
        ("/live/caf%C3%A9/playlist.m3u8", "live", "café"),
        ("/live", "live", ""),
        ("live/cam1/playlist.m3u8", "live", "cam1"),
    ],
)
def test_app_and_stream_from_the_url(url: str, app: str, stream: str) -> None:
    event = _auth({"ip": "192.0.2.1", "url": url})
    assert (event.app, event.stream) == (app, stream)


def test_explicit_app_and_stream_win_over_the_url() -> None:
    event = _auth({"app": "live", "stream": "cam2", "url": "/other/x/playlist.m3u8"})
    assert (event.app, event.stream) == ("live", "cam2")
    assert event.raw["fields"]["path"] == "/other/x/playlist.m3u8"


@pytest.mark.parametrize(
    "url",
    [
        "/public/../private/cam1/playlist.m3u8",
        "/live/./cam1/playlist.m3u8",
        "/live//cam1/playlist.m3u8",
        "//live/cam1",  # a bare // is a network path: netloc "live", path /cam1 -> single app
        "/live/cam%2F1/playlist.m3u8",
        "/live/cam%5C1/playlist.m3u8",
        "/live/%2E%2E/playlist.m3u8",
        "http://edge/live/../private/cam1",
    ],
)
def test_a_path_that_normalizes_to_another_stream_is_refused(url: str) -> None:
    if url == "//live/cam1":
        # Read as host "live" and path "/cam1": it names app "cam1" only, never a stream.
        assert _auth({"url": url}).stream == ""
        return
    assert "ambiguous path" in _refused({"ip": "192.0.2.1", "url": url}).reason


def test_query_params_first_value_wins_and_raw_keeps_all() -> None:
    event = _auth({"url": "/live/cam1/playlist.m3u8?t=1&t=2&e=&n=nil&s=+&p=a%2Bb+c"})
    assert dict(event.params) == {"t": "1", "p": "a+b c"}
    assert event.raw["fields"]["query"]["t"] == ["1", "2"]
    assert event.raw["fields"]["query"]["e"] == [""]


def test_invalid_utf8_in_a_query_value_is_replaced() -> None:
    event = _auth({"url": "/live/cam1/playlist.m3u8?k=%FF"})
    assert event.params["k"] == "\ufffd"


def test_invalid_utf8_in_the_stream_name_is_refused() -> None:
    assert "UTF-8" in _refused({"url": "/live/cam%FF/playlist.m3u8"}).reason


@pytest.mark.parametrize(
    ("value", "ip", "port"),
    [
        ("192.0.2.1", "192.0.2.1", None),
        ("192.0.2.1:5000", "192.0.2.1", 5000),
        ("[2001:db8::1]:443", "2001:db8::1", 443),
        ("2001:db8::1", "2001:db8::1", None),
        ("::ffff:192.0.2.1", "::ffff:192.0.2.1", None),
        ("fe80::1%eth0", "fe80::1%eth0", None),
        ("not-an-ip", "not-an-ip", None),
        ("192.0.2.1:99999", "192.0.2.1", None),
    ],
)
def test_client_address_forms(value: str, ip: str, port: int | None) -> None:
    event = _auth({"ip": value, "url": "/live/cam1"})
    assert (event.client_ip, event.client_port) == (ip, port)


def test_a_client_port_field_wins_over_the_address_port() -> None:
    event = _auth({"ip": "192.0.2.1:5000", "client_port": 6000, "url": "/live/cam1"})
    assert event.client_port == 6000


def test_a_bare_port_key_is_not_read_as_the_client_port() -> None:
    # "port" may well be Nimble's own listening port.
    assert _auth({"ip": "192.0.2.1", "port": 8081, "url": "/live/cam1"}).client_port is None


@pytest.mark.parametrize(
    ("body", "session_id"),
    [
        ({"sessionId": "s1", "id": "r1"}, "s1"),
        ({"id": 17}, "17"),
        ({"session_id": "nil", "id": "r1"}, "r1"),
        ({}, ""),
    ],
)
def test_session_id(body: dict[str, Any], session_id: str) -> None:
    assert _auth({"url": "/live/cam1", **body}).session_id == session_id


def test_headers_object_and_list_forms_get_lower_case_names() -> None:
    headers = {"User-Agent": "A", "X-Num": 5, "X-Bad": ["x"], "X-Flag": True}
    assert _auth({"url": "/a/b", "headers": headers}).raw["fields"]["headers"] == {
        "user-agent": "A",
        "x-num": "5",
    }
    pairs = [["Referer", "https://r"], {"name": "Cookie", "value": "c=1"}, "junk", [1, 2]]
    assert _auth({"url": "/a/b", "Headers": pairs}).raw["fields"]["headers"] == {
        "referer": "https://r",
        "cookie": "c=1",
    }
    assert _auth({"url": "/a/b", "headers": "text"}).raw["fields"]["headers"] == {}


def test_protocol_and_host() -> None:
    event = _auth({"url": "https://edge.example.com:8443/live/cam1/playlist.m3u8", "proto": "HLS"})
    assert event.raw["fields"]["protocol"] == "HLS"
    assert event.raw["fields"]["host"] == "edge.example.com:8443"


def test_action_role_and_vendor() -> None:
    event = _auth({"url": "/live/cam1"})
    assert (event.vendor, event.action, event.role) == ("nimble", "play", "viewer")


def test_node_from_the_hook_url_else_the_caller() -> None:
    body = json.dumps({"url": "/live/cam1"}).encode()
    assert parse_auth(body, target="/hooks/nimble?node=edge-7").node == "edge-7"
    assert parse_auth(body, target="/hooks/nimble?node=").node == "10.9.8.7"
    assert parse_auth(body).node == "10.9.8.7"
    assert parse_auth(body, client=None).node == ""


@pytest.mark.parametrize(
    "body",
    [
        {"ip": "192.0.2.1", "clientIp": "192.0.2.2", "url": "/live/cam1"},
        {"app": "live", "application": "other", "stream": "cam1"},
        {"stream": "cam1", "streamName": "cam2", "app": "live"},
        {"ip": "192.0.2.1", "IP": "192.0.2.9", "url": "/live/cam1"},
    ],
)
def test_aliases_that_disagree_on_who_or_what_are_refused(body: dict[str, Any]) -> None:
    assert "conflicting" in _refused(body).reason


def test_aliases_that_agree_are_fine() -> None:
    event = _auth({"ip": "192.0.2.1", "client_ip": "192.0.2.1:4000", "url": "/live/cam1"})
    assert event.client_ip == "192.0.2.1"


@pytest.mark.parametrize(
    "body",
    [
        {"ip": ["192.0.2.1"], "url": "/live/cam1"},
        {"ip": {"v": 4}, "url": "/live/cam1"},
        {"ip": True, "url": "/live/cam1"},
        {"url": 5},
        {"url": ["/live/cam1"]},
        {"app": {"name": "live"}, "stream": "x"},
        {"url": "/live/cam1", "id": 1.5},
    ],
)
def test_wrong_types_are_refused(body: dict[str, Any]) -> None:
    assert "must be text" in _refused(body).reason


@pytest.mark.parametrize(
    "body",
    [{}, {"ip": "192.0.2.1"}, {"url": ""}, {"url": "/"}, {"url": "nil", "stream": " "}],
)
def test_a_request_naming_no_stream_is_refused(body: dict[str, Any]) -> None:
    assert "no stream, app or URL" in _refused(body).reason


def test_a_ppv_sync_sent_to_the_auth_route_says_where_it_belongs() -> None:
    assert "/hooks/nimble/ppv" in _refused(fixture("ppv/sample_signed.json")).reason


def test_an_unparseable_url_is_refused() -> None:
    assert "cannot be parsed" in _refused({"url": "http://[::1/live/cam1"}).reason
