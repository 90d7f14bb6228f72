"""Broadcaster bodies to events: every URL shape of the reference, the node name, and what
the node sends that is not a URL castgate can stand behind."""

from __future__ import annotations

import json

import pytest

from castgate import ACTIONS, MalformedRequest

from .support import event_dict, fixture, fixture_json, parse, parse_url, request_names

SHAPES = request_names("broadcaster")


def test_every_shape_of_the_reference_has_a_fixture() -> None:
    assert {name.split("_")[0] for name in SHAPES} == {"rtmp", "push", "recordings"}
    assert len(SHAPES) == 11


@pytest.mark.parametrize("name", SHAPES)
def test_each_request_parses_into_its_documented_event(name: str) -> None:
    event = parse(fixture(f"requests/broadcaster/{name}.json"))
    assert event_dict(event) == fixture_json(f"events/broadcaster/{name}.json")
    assert event.action in ACTIONS
    assert not event.is_notification


@pytest.mark.parametrize("name", SHAPES)
def test_the_body_is_kept_whole_in_raw(name: str) -> None:
    body = fixture_json(f"requests/broadcaster/{name}.json")
    assert parse(fixture(f"requests/broadcaster/{name}.json")).raw["body"] == body


def test_go_escapes_in_the_body_are_read() -> None:
    # json.Marshal writes "&" as \u0026: the query must still split on it.
    assert b"\\u0026" in fixture("requests/broadcaster/rtmp_publish.json")
    event = parse(fixture("requests/broadcaster/rtmp_publish.json"))
    assert event.params["ladder"] == "low"


def test_query_values_decode_once_first_value_wins_blank_and_nil_are_absent() -> None:
    event = parse(fixture("requests/broadcaster/rtmp_publish.json"))
    assert event.params == {"ladder": "low", "token": "a+b c"}
    assert event.raw["query"]["token"] == ["a+b c", "second"]
    assert (event.raw["query"]["empty"], event.raw["query"]["nil"]) == ("", "nil")


def test_the_node_name_comes_from_the_hook_url_before_the_stream_url() -> None:
    body = fixture("requests/broadcaster/rtmp_publish_plain.json")
    assert parse(body).node == "gw1.example.com"
    assert parse(body, target="/hooks/livepeer?node=gw7").node == "gw7"
    assert parse(body, target="/hooks/livepeer?x=1&node=gw%207").node == "gw 7"
    assert parse(body, target="/hooks/livepeer?node=nil").node == "gw1.example.com"
    assert parse(body, target="/hooks/livepeer?node=+").node == "gw1.example.com"


def test_a_node_name_in_the_publishers_query_is_only_a_param() -> None:
    event = parse_url("rtmp://gw1:1935/live/k?node=forged")
    assert (event.node, event.params["node"]) == ("gw1", "forged")


@pytest.mark.parametrize(
    ("url", "app", "stream", "manifest_id", "stream_key"),
    [
        ("rtmp://h/live/a/b", "live", "a/b", "a", "b"),
        # raw shows the node's own reading, which keeps empty elements
        ("rtmp://h//live//k", "live", "k", "", "k"),
        ("rtmp://h/live", "live", "", "live", ""),
        ("rtmp://h", "", "", "", ""),
        ("rtmp://h/live/cam%201", "live", "cam 1", "cam 1", ""),
        ("rtmp://h/live/n%C3%BC", "live", "n\u00fc", "n\u00fc", ""),
        ("rtmp://h/live/a.b", "live", "a.b", "a", ""),
        ("rtmps://h/live/k", "live", "k", "k", ""),
        # An RTMP publisher's tcUrl may say http: anything but /live and /recordings is RTMP.
        ("http://h/app/k", "app", "k", "app", "k"),
    ],
)
def test_rtmp_paths(url: str, app: str, stream: str, manifest_id: str, stream_key: str) -> None:
    event = parse_url(url)
    assert (event.action, event.raw["form"]) == ("publish", "rtmp")
    assert (event.app, event.stream) == (app, stream)
    assert (event.raw["manifest_id"], event.raw["stream_key"]) == (manifest_id, stream_key)
    assert event.session_id == ""


def test_push_is_only_an_http_url_under_live() -> None:
    assert parse_url("http://h/live/k/3.ts").raw["form"] == "push"
    assert parse_url("rtmp://h/live/k/3.ts").raw["form"] == "rtmp"
    assert parse_url("HTTP://h/live/k/3.ts").raw["form"] == "push"  # urlsplit lowercases it
    assert parse_url("https://h/live/k/3.ts").raw["form"] == "rtmp"
    assert parse_url("http://h/livestream/k/3.ts").raw["form"] == "rtmp"


def test_push_with_a_query_keeps_it_although_the_node_never_sends_one() -> None:
    event = parse_url("http://h/live/k/3.ts?key=v")
    assert (event.stream, event.params) == ("k", {"key": "v"})


def test_a_recordings_read_is_play_with_the_third_path_element_as_stream() -> None:
    event = parse_url("http://h/recordings/live/x.m3u8")
    assert (event.action, event.app, event.stream, event.role) == (
        "play",
        "recordings",
        "live",  # HandleRecordings does not run parseStreamID: "live" is the manifest ID
        "viewer",
    )
    assert event.raw["file"] == "x.m3u8"


@pytest.mark.parametrize(
    "body",
    [
        b"{}",
        b'{"url":""}',
        b'{"url":"   "}',
        b'{"url":null}',
        b'{"url":5}',
        b'{"url":["rtmp://h/live/k"]}',
        b'{"url":{"href":"rtmp://h/live/k"}}',
        b'{"URL":"rtmp://h/live/k"}',
    ],
)
def test_a_body_without_a_url_string_is_refused(body: bytes) -> None:
    with pytest.raises(MalformedRequest, match="no url"):
        parse(body)


def test_an_orchestrator_body_on_the_broadcaster_route_names_the_other_route() -> None:
    with pytest.raises(MalformedRequest, match="/hooks/livepeer/orchestrator"):
        parse(fixture("requests/orchestrator/discover.json"))


def test_unknown_keys_beside_the_url_are_kept_not_refused() -> None:
    event = parse(json.dumps({"url": "rtmp://h/live/k", "extra": {"a": [1]}}).encode())
    assert (event.stream, event.raw["body"]["extra"]) == ("k", {"a": [1]})


@pytest.mark.parametrize(
    ("url", "action"),
    [("rtmp://h/live/k%FF", "publish"), ("http://h/recordings/%C3/x.m3u8", "play")],
)
def test_a_path_that_is_not_utf8_is_refused_with_its_action(url: str, action: str) -> None:
    with pytest.raises(MalformedRequest, match="UTF-8") as caught:
        parse_url(url)
    assert caught.value.action == action


def test_a_query_that_is_not_utf8_is_read_leniently() -> None:
    assert parse_url("rtmp://h/live/k?t=%FFx").params == {"t": "\ufffdx"}


def test_an_unparsable_url_is_refused() -> None:
    with pytest.raises(MalformedRequest, match="not a URL"):
        parse_url("rtmp://[::1/live/k")


def test_content_type_does_not_matter() -> None:
    body = fixture("requests/broadcaster/rtmp_publish_plain.json")
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        assert parse(body, content_type=content_type).stream == "sk8e2d6b0a9c7f"


def test_unknown_route_is_refused() -> None:
    with pytest.raises(MalformedRequest, match="route"):
        parse(fixture("requests/broadcaster/rtmp_publish_plain.json"), route="nope")
