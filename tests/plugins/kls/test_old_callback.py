"""Old callbacks (form, call=user_publish/user_publish_done) to events."""

from __future__ import annotations

import time

import pytest

from castgate import MalformedRequest

from .support import EVENTS, OLD_DONE, OLD_START, REQUESTS, fixture, parse

OLD = [name for name in REQUESTS if name.startswith("old/")]


@pytest.mark.parametrize("name", OLD)
def test_fixture_parses_into_the_documented_event(name: str) -> None:
    before = time.time()
    event = parse(fixture(name)).to_dict()
    expected = dict(EVENTS[name])
    assert expected["time"] == "arrival"  # the old callback carries no time
    assert before <= event["time"] <= time.time()
    assert event == expected | {"time": event["time"]}
    assert event["raw"]["callback"] == "old"
    assert event["node"] == ""  # the form does not say which node took the push


def test_doc_samples_pair_start_and_end() -> None:
    start = parse(fixture("old/user_publish.body"))
    done = parse(fixture("old/user_publish_done.body"))
    assert (start.action, done.action) == ("publish_started", "publish_done")
    assert start.session_id == done.session_id == "test.uplive.ks-cdn.com/live/asdf/123456"
    assert (start.role, done.role) == ("publisher", "publisher")
    assert done.raw["close_mode"] == "nil"


def test_an_empty_vdoid_pairs_by_domain_app_and_stream() -> None:
    start = parse(fixture("old/user_publish_empty_vdoid.body"))
    done = parse(fixture("old/user_publish_done_empty_vdoid.body"))
    assert start.session_id == done.session_id == "push.example.com/live/cam1"
    assert "vdoid" not in start.params


@pytest.mark.parametrize("close_mode", ["1", "2", "nil", ""])
def test_close_mode_is_kept_as_sent(close_mode: str) -> None:
    body = OLD_DONE.replace(b"close_mode=1", f"close_mode={close_mode}".encode())
    assert parse(body).raw["close_mode"] == close_mode


def test_content_type_does_not_matter() -> None:
    for content_type in (
        None,
        "application/x-www-form-urlencoded",
        "application/json",
        "text/plain",
    ):
        assert parse(OLD_START, content_type=content_type).stream == "cam1"


def test_nil_and_blank_fields_are_absent() -> None:
    body = b"app=nil&name=cam1&swfurl=&flashver=+&tcurl=nil&call=user_publish&vdoid=nil"
    event = parse(body)
    assert (event.app, event.stream, event.raw["domain"]) == ("", "cam1", "")
    assert event.params == {}
    assert event.session_id == "//cam1"
    assert event.raw["vdoid"] == "nil"  # raw keeps what was sent


def test_unknown_keys_are_push_params_first_value_wins() -> None:
    event = parse(OLD_START + b"&key=k1&key=k2&blank=&x=nil")
    assert event.params == {"vdoid": "7781", "key": "k1"}
    assert event.raw["key"] == ["k1", "k2"]


def test_keys_named_like_castgates_own_are_params_and_reported() -> None:
    event = parse(OLD_START + b"&domain=evil.example&callback=new")
    assert (event.raw["domain"], event.raw["callback"]) == ("push.example.com", "old")
    assert event.raw["spoofed"] == ["callback", "domain"]
    assert event.params["domain"] == "evil.example"


def test_a_kls_field_repeated_with_the_same_value_is_reported() -> None:
    event = parse(OLD_START + b"&app=live")
    assert event.app == "live"
    assert event.raw["app"] == ["live", "live"]
    assert event.raw["spoofed"] == ["app"]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        (b"&call=user_publish_done", "call"),
        (b"&name=evil", "name"),
        (b"&app=x", "app"),
        (b"&vdoid=1", "vdoid"),
        (b"&tcurl=rtmp://evil.example/x", "tcurl"),
        (b"&close_mode=2", None),  # once only: not repeated
    ],
)
def test_a_repeated_kls_field_keeps_klss_first_value_and_is_reported(
    extra: bytes, field: str | None
) -> None:
    # e.g. a push URL ?call=...: the doc's sample writes KLS's fields before the push's vdoid
    honest = parse(OLD_START)
    event = parse(OLD_START + extra)
    assert (event.action, event.app, event.stream, event.session_id) == (
        honest.action,
        honest.app,
        honest.stream,
        honest.session_id,
    )
    assert event.raw["domain"] == "push.example.com"
    assert event.raw["spoofed"] == ([field] if field else [])
    assert event.params == {"vdoid": "7781"}  # never a KLS field's second value


def test_every_repeated_field_is_listed_once() -> None:
    event = parse(OLD_START + b"&name=a&name=b&call=x&domain=d")
    assert event.raw["spoofed"] == ["call", "domain", "name"]
    assert event.raw["name"] == ["cam1", "a", "b"]


@pytest.mark.parametrize("call", [b"call=user_publish_done", b"call=USER_PUBLISH_DONE"])
def test_call_case_does_not_matter(call: bytes) -> None:
    body = OLD_START.replace(b"call=user_publish", call)
    assert parse(body).action == "publish_done"


def test_an_unknown_call_is_notify() -> None:
    event = parse(OLD_START.replace(b"call=user_publish", b"call=user_record"))
    assert (event.action, event.role, event.raw["event"]) == ("notify", "", "user_record")


@pytest.mark.parametrize("call", [b"call=", b"call=nil", b"call=+"])
def test_a_blank_call_is_refused(call: bytes) -> None:
    with pytest.raises(MalformedRequest, match="no call"):
        parse(OLD_START.replace(b"call=user_publish", call))


@pytest.mark.parametrize("field", [b"name=cam%FF", b"app=l%C3", b"tcurl=rtmp://h%FF/live"])
def test_invalid_utf8_in_what_names_the_push_is_refused(field: bytes) -> None:
    key = field.split(b"=")[0]
    body = b"&".join(
        field if pair.startswith(key + b"=") else pair for pair in OLD_START.split(b"&")
    )
    with pytest.raises(MalformedRequest, match="not valid UTF-8") as caught:
        parse(body)
    assert caught.value.action == "publish_started"


def test_invalid_utf8_elsewhere_is_replaced() -> None:
    event = parse(OLD_START + b"&x=%FFa")
    assert event.params["x"] == "\ufffda"
