"""AMS requests through the real castgate app, deciding with a real compiled policy: every
answer byte for byte, hostile input, and a fuzz test over the three endpoints."""

from __future__ import annotations

import json
import logging
import shutil
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from served import served
from starlette.testclient import TestClient

from castgate.app import create_app
from castgate.settings import DEFAULT_MAX_BODY as APP_MAX_BODY_BYTES
from castgate.settings import Settings
from castgate_antmedia.body import MAX_BODY_BYTES

from .support import FIXTURES, OTHER_VENDORS, Fixture, fixture, fixtures, gate

ROUTES = {
    "": "/hooks/antmedia",
    "publish": "/hooks/antmedia/publish",
    "play": "/hooks/antmedia/play",
}
DENIED = (403, "text/plain; charset=utf-8")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    policy_dir = tmp_path_factory.mktemp("policies")
    shutil.copy(FIXTURES / "answers.policy", policy_dir)
    with gate(policy_dir) as started:
        yield started


def _post(client: TestClient, route: str, body: bytes, content_type: str | None) -> Any:
    headers = {"content-type": content_type} if content_type is not None else {}
    return client.post(ROUTES[route], content=body, headers=headers)


def _headers(response: Any) -> list[tuple[str, str]]:
    return sorted(response.headers.multi_items())


def _expected_headers(body: str, content_type: str | None) -> list[tuple[str, str]]:
    headers = [("connection", "close"), ("content-length", str(len(body.encode())))]
    if content_type is not None:
        headers.append(("content-type", content_type))
    return sorted(headers)


@pytest.mark.parametrize("item", fixtures(), ids=lambda item: item.name)
def test_every_fixture_gets_its_documented_answer_byte_for_byte(
    client: TestClient, item: Fixture
) -> None:
    response = _post(client, item.route, item.body, item.content_type)
    answer = item.answer
    assert response.status_code == answer["status"]
    assert response.content == answer["body"].encode()
    assert _headers(response) == _expected_headers(answer["body"], answer["content_type"])


def test_fixture_answers_cover_allow_deny_and_ack() -> None:
    answers = {(item.route == "", item.answer["status"]) for item in fixtures()}
    assert answers == {(True, 200), (False, 200), (False, 403)}


def test_the_decision_log_shows_what_the_policy_saw(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="castgate.decisions")
    item = fixture("publish/explicit_fields")
    _post(client, item.route, item.body, item.content_type)
    started = json.loads(fixture("json/liveStreamStarted").body)
    started["id"] = "intruder"
    _post(client, "", json.dumps(started).encode(), "application/json")
    logged = [
        record.fields  # type: ignore[attr-defined]
        for record in caplog.records
        if record.name == "castgate.decisions"
    ]
    publish, flagged = logged[-2], logged[-1]
    assert (publish["action"], publish["app"], publish["stream"]) == (
        "publish",
        "LiveApp",
        "stream1",
    )
    assert publish["params"] == ["subscriberCode", "subscriberId", "tier", "token"]
    assert (publish["effect"], publish["rule"], publish["status"]) == (
        "allow",
        "fixture_publish",
        200,
    )
    # a notification a deny rule matched: acknowledged, and the rule is on record
    assert (flagged["action"], flagged["stream"]) == ("publish_started", "intruder")
    assert (flagged["effect"], flagged["rule"], flagged["status"]) == ("ack", "fixture_flag", 200)
    assert flagged["reason"] == "unknown stream"


# --- hostile input ---------------------------------------------------------------------------

PUBLISH = {"appName": "LiveApp", "streamId": "stream1", "mode": "live", "token": "t0k3n"}
PLAY = {"streamId": "stream1", "mode": "play", "appName": "LiveApp", "token": "v1ewer"}
STARTED = {"id": "stream1", "action": "liveStreamStarted", "app": "LiveApp", "timestamp": "1"}


def _dump(data: object) -> bytes:
    return json.dumps(data).encode()


def _hostile(fields: dict[str, Any]) -> list[tuple[str, bytes, str | None]]:
    """Malformed variants of a body that is otherwise allowed (or acknowledged)."""
    good = _dump(fields)
    first_key = next(iter(fields))
    return [
        ("truncated", good[:-1], "application/json"),
        ("trailing garbage", good + b"}", "application/json"),
        ("array", _dump([fields]), "application/json"),
        ("string", _dump(json.dumps(fields)), "application/json"),
        ("number", b"42", "application/json"),
        ("null", b"null", "application/json"),
        ("repeated key", good[:-1] + b"," + _dump({first_key: "x"})[1:], "application/json"),
        ("wrong type", _dump({**fields, first_key: 5}), "application/json"),
        ("object for text", _dump({**fields, first_key: {"x": 1}}), "application/json"),
        ("deep", b'{"a":' * 5_000 + b"1" + b"}" * 5_000, "application/json"),
        ("NaN", good[:-1] + b',"n":NaN}', "application/json"),
        ("invalid utf-8, declared", good[:-1] + b',"x":"\xff"}', "application/json; charset=utf-8"),
        ("unsupported charset", good, "application/json; charset=utf-7"),
        ("over the plugin limit", good[:-1] + b',"x":"' + b"a" * MAX_BODY_BYTES + b'"}', None),
        ("empty", b"", None),
    ]


HOSTILE = [
    (route, name, body, content_type)
    for route, fields in (("", STARTED), ("publish", PUBLISH), ("play", PLAY))
    for name, body, content_type in _hostile(fields)
] + [
    ("", "form repeated action", b"id=s&action=liveStreamStarted&action=playStarted", None),
    ("", "form repeated id", b"id=s&action=liveStreamStarted&id=t", None),
    ("", "form raw non-ascii", b"id=caf\xc3\xa9&action=liveStreamStarted", None),
    ("", "form without action", b"id=s&app=LiveApp", None),
    ("publish", "form", b"streamId=stream1&token=t0k3n", None),
    ("publish", "name and streamId differ", _dump({**PUBLISH, "name": "other"}), None),
    ("publish", "play body", _dump({**PUBLISH, "mode": "play"}), None),
    ("play", "publish body", _dump({**PLAY, "mode": "live"}), None),
    ("publish", "no stream", _dump({"appName": "LiveApp", "token": "t0k3n"}), None),
]


@pytest.mark.parametrize(
    ("route", "name", "body", "content_type"),
    HOSTILE,
    ids=[f"{route or 'events'}-{name}" for route, name, _, _ in HOSTILE],
)
def test_hostile_input_is_refused_the_vendors_way(
    client: TestClient, route: str, name: str, body: bytes, content_type: str | None
) -> None:
    response = _post(client, route, body, content_type)
    expected = 400 if route == "" else 403
    assert response.status_code == expected, response.text
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text  # the reason, for AMS's log and ours


@pytest.mark.parametrize("route", ["", "publish", "play"])
def test_a_body_over_the_servers_limit_is_413_before_the_plugin(
    client: TestClient, route: str
) -> None:
    response = _post(client, route, b"{" + b" " * APP_MAX_BODY_BYTES + b"}", "application/json")
    assert response.status_code == 413


@pytest.mark.parametrize(("route", "body"), [("", STARTED), ("publish", PUBLISH), ("play", PLAY)])
def test_the_well_formed_bodies_the_hostile_ones_derive_from_pass(
    client: TestClient, route: str, body: dict[str, Any]
) -> None:
    response = _post(client, route, _dump(body), "application/json")
    assert (response.status_code, response.content) == (200, b"")


@pytest.mark.parametrize("route", ["", "publish", "play"])
def test_get_is_never_an_allow(client: TestClient, route: str) -> None:
    response = client.get(ROUTES[route] + "?streamId=stream1&token=t0k3n&action=liveStreamStarted")
    assert response.status_code == (400 if route == "" else 403)


# --- fuzz --------------------------------------------------------------------------------------

_TEXT = st.text(max_size=12)
_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), _TEXT)
_KEYS = st.sampled_from(
    [
        "id",
        "action",
        "app",
        "timestamp",
        "streamName",
        "metadata",
        "subscriberId",
        "roomId",
        "mainTrackId",
        "appName",
        "name",
        "streamId",
        "mode",
        "token",
        "queryParams",
        "metaData",
        "ipAddress",
        "origin",
        "width",
        "host",
    ]
)
_VALUES = st.one_of(
    _SCALAR,
    st.sampled_from(
        [
            "liveStreamStarted",
            "playStarted",
            "liveStreamStatus",
            "highResourceUsage",
            "play",
            "live",
        ]
    ),
    st.sampled_from(["{token=x, a=b}", "{}", "{a=b, a=c}", '{"k":"v"}', "1795424400123"]),
    st.lists(_SCALAR, max_size=3),
    st.dictionaries(_TEXT, _SCALAR, max_size=3),
)
_JSON_BODIES = st.dictionaries(_KEYS, _VALUES, max_size=8).map(
    lambda data: json.dumps(data).encode()
)
_FORM_BODIES = st.lists(
    st.tuples(_KEYS, st.one_of(_TEXT, st.sampled_from(["liveStreamStarted", "%FF", "a+b", ""]))),
    max_size=8,
).map(lambda pairs: "&".join(f"{key}={value}" for key, value in pairs).encode("utf-8"))
_BODIES = st.one_of(_JSON_BODIES, _FORM_BODIES, st.binary(max_size=200))
_CONTENT_TYPES = st.sampled_from(
    [
        None,
        "application/json",
        "application/json; charset=UTF-8",
        "application/x-www-form-urlencoded",
        "text/plain; charset=ISO-8859-1",
        "text/plain; charset=bogus",
    ]
)


@settings(max_examples=250, deadline=None)
@given(route=st.sampled_from(["", "publish", "play"]), body=_BODIES, content_type=_CONTENT_TYPES)
def test_fuzz_never_a_5xx_a_redirect_or_an_unearned_allow(
    client: TestClient, route: str, body: bytes, content_type: str | None
) -> None:
    response = _post(client, route, body, content_type)
    status = response.status_code
    if route == "":
        assert status in (200, 400), body
    else:
        assert status in (200, 403), body
        if status == 200:
            # answers.policy allows only these tokens; the fuzzer never writes them
            pytest.fail(f"allowed without a token: {body!r}")
    if status == 200:
        assert response.content == b""


# --- the wire, through a real uvicorn ------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    policy_dir = tmp_path_factory.mktemp("served")
    shutil.copy(FIXTURES / "answers.policy", policy_dir)
    settings = Settings(policies=(policy_dir,), disabled_plugins=OTHER_VENDORS, log_format="json")
    with served(create_app(settings)) as base_url:
        yield base_url


def _exchange(base_url: str, path: str, body: bytes) -> bytes:
    """What AMS's Apache HttpClient sends, and everything received until the server closed."""
    address = urlsplit(base_url)
    request = (
        f"POST {path} HTTP/1.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nHost: {address.netloc}\r\n"
        "Connection: Keep-Alive\r\nUser-Agent: Apache-HttpClient/4.5.14 (Java/17.0.13)\r\n"
        "Accept-Encoding: gzip,deflate\r\n\r\n"
    ).encode() + body
    with socket.create_connection((address.hostname, address.port), timeout=5) as connection:
        connection.sendall(request)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    return received


def _split(received: bytes) -> tuple[bytes, dict[bytes, bytes], bytes]:
    head, _, body = received.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    headers = dict(line.lower().split(b": ", 1) for line in lines)
    headers.pop(b"date", None)
    return status, headers, body


def test_allow_on_the_wire(server: str) -> None:
    received = _exchange(server, ROUTES["publish"], fixture("publish/rtmp").body)
    assert _split(received) == (
        b"HTTP/1.1 200 OK",
        {b"server": b"uvicorn", b"content-length": b"0", b"connection": b"close"},
        b"",
    )


def test_deny_on_the_wire(server: str) -> None:
    received = _exchange(server, ROUTES["play"], fixture("play/minimal").body)
    assert _split(received) == (
        b"HTTP/1.1 403 Forbidden",
        {
            b"server": b"uvicorn",
            b"content-length": b"28",
            b"content-type": b"text/plain; charset=utf-8",
            b"connection": b"close",
        },
        b"no rule allowed this request",
    )


def test_event_acknowledged_on_the_wire(server: str) -> None:
    received = _exchange(server, ROUTES[""], fixture("json/liveStreamEnded").body)
    assert _split(received) == (
        b"HTTP/1.1 200 OK",
        {b"server": b"uvicorn", b"content-length": b"0", b"connection": b"close"},
        b"",
    )


def test_unknown_route_is_404_not_a_decision(client: TestClient) -> None:
    response = client.post("/hooks/antmedia/unpublish", content=_dump(PUBLISH))
    assert response.status_code == 404
