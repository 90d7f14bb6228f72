"""Telling the two callback versions apart by the body, and refusing what is neither."""

from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from castgate import ACTIONS, Event, MalformedRequest
from castgate_kls import Kls
from castgate_kls.body import MAX_BODY_BYTES

from .support import OLD_START, fixture, json_body, make_request, parse


def test_a_json_object_is_the_new_callback_whatever_the_content_type() -> None:
    for content_type in (
        None,
        "application/json",
        "text/plain",
        "application/x-www-form-urlencoded",
    ):
        event = parse(json_body(), content_type=content_type)
        assert (event.raw["callback"], event.action) == ("new", "publish_started")


def test_a_form_with_call_is_the_old_callback() -> None:
    assert parse(OLD_START).raw["callback"] == "old"


def test_whitespace_a_bom_and_crlf_around_the_body_are_ignored() -> None:
    assert parse(b"\xef\xbb\xbf \r\n" + json_body() + b"\r\n").stream == "cam1"
    assert parse(OLD_START + b"\r\n").params == {"vdoid": "7781"}


def test_unverified_string_encodings_of_the_new_callback() -> None:
    as_string = parse(fixture("string/pubstart_json_string.body"))
    as_form = parse(fixture("string/pubstart_form.body"))
    assert as_string.to_dict() | {"time": 0} == as_form.to_dict() | {"time": 0}
    assert (as_form.session_id, as_form.params) == ("s-6", {"key": "k-5f2c91d7"})


def test_a_form_encoded_new_callback_with_a_repeated_field_is_refused() -> None:
    body = fixture("string/pubstart_form.body") + b"&Stream=other"
    with pytest.raises(MalformedRequest, match="'Stream' is sent twice"):
        parse(body)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"", "empty body"),
        (b" \r\n", "empty body"),
        (b"[1, 2]", "body is a JSON array, not a JSON object"),
        (b'[{"NotifyType": "PubStart"}]', "body is a JSON array"),
        (b'"PubStart"', "body is a JSON string"),
        (b'"{not json"', "body's JSON string is not valid JSON"),
        (b"42", "neither a JSON callback"),
        (b"null", "neither a JSON callback"),
        (b"true", "neither a JSON callback"),
        (b'{"App": "live"', "body is not valid JSON"),
        (json_body()[:-10], "body is not valid JSON"),
        (b'{"NotifyType": "PubStart", "NotifyType": "PubEnd"}', "'NotifyType' appears twice"),
        (b'{"NotifyType": "PubStart", "App": "\xff"}', "body is not valid UTF-8"),
        pytest.param(b'{"a": ' + b"[" * 100 + b"]" * 100 + b"}", "nested deeper", id="deep"),
        pytest.param(b'{"a": ' + b"[" * 50_000, "nested too deeply", id="deeper-than-json"),
        (b'{"App": "live"}', "no NotifyType"),
        (b"app=live&name=cam1", "neither a JSON callback (no NotifyType) nor a form callback"),
        (b"\xff\xfe\x00", "neither a JSON callback"),
    ],
)
def test_unreadable_bodies_are_refused_with_the_reason(body: bytes, problem: str) -> None:
    with pytest.raises(MalformedRequest) as caught:
        parse(body)
    assert problem in caught.value.reason


def test_a_body_over_the_limit_is_refused_before_it_is_read() -> None:
    with pytest.raises(MalformedRequest, match=f"larger than {MAX_BODY_BYTES} bytes"):
        parse(b"x", content_length=str(MAX_BODY_BYTES + 1))
    padding = b"&pad=" + b"x" * MAX_BODY_BYTES
    with pytest.raises(MalformedRequest, match="larger than"):
        parse(OLD_START + padding, content_length="")


def test_only_the_bare_route_exists() -> None:
    with pytest.raises(MalformedRequest, match="unknown kls route"):
        parse(json_body(), route="v2")


# --- anything at all parses or is refused, never raises anything else --------------------------

_PIECES = st.sampled_from(
    [
        b"&",
        b"=",
        b"%",
        b"%2",
        b"%FF",
        b"+",
        b" ",
        b"nil",
        b"\xff",
        b"{",
        b"}",
        b"[",
        b'"',
        b":",
        b",",
        b"null",
        b"1670575130460",
        b"call=user_publish&",
        b"call=user_publish_done&",
        b"name=cam1&",
        b"app=live&",
        b"vdoid=&",
        b"NotifyType=PubStart&",
        b'"NotifyType":"PubEnd"',
        b'"PubParam":',
        b'"ClientPort":',
        b'"PubStartUnixTime":',
        b'" "',
        b"1.5",
        b"-1",
        b"true",
    ]
)

_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
_FIELDS = st.sampled_from(
    [
        "Version",
        "UniqueName",
        "App",
        "Pubdomain",
        "Stream",
        "PubStartUnixTime",
        "PubEndUnixTime",
        "NotifyType",
        "PubParam",
        "ClientIp",
        "ClientPort",
        "Node",
        "PubEndMessage",
        "Sequence",
    ]
)


def _parse_or_refuse(body: bytes) -> Event | None:
    try:
        return asyncio.run(Kls().parse(make_request(body), ""))
    except MalformedRequest as error:
        assert error.reason
        return None


def _check(event: Event | None) -> None:
    if event is None:
        return
    assert event.vendor == "kls"
    assert event.action in Kls.actions <= ACTIONS
    assert event.client_port is None or 1 <= event.client_port <= 65535
    assert all(isinstance(value, str) for value in (event.app, event.stream, event.node))
    json.dumps(event.to_dict())  # raw and params stay JSON data


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=200), st.lists(_PIECES, max_size=30).map(b"".join)))
def test_garbage_parses_or_is_refused(body: bytes) -> None:
    _check(_parse_or_refuse(body))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_FIELDS, _JSON_VALUES, max_size=14))
def test_any_typing_of_the_new_fields_parses_or_is_refused(fields: dict[str, object]) -> None:
    _check(_parse_or_refuse(json.dumps(fields).encode()))
