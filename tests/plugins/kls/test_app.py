"""KLS callbacks through the real castgate app, with a real compiled policy and the real session
state: every answer byte for byte, flags in the decision log, starts paired with their ends."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from served import served
from starlette.testclient import TestClient

from castgate.app import create_app
from castgate.settings import DEFAULT_MAX_BODY as APP_MAX_BODY_BYTES
from castgate.settings import Settings
from castgate_kls.body import MAX_BODY_BYTES

from .support import ANSWERS, OLD_START, REQUESTS, fixture, json_body

POLICY = """
rule revoked_key {
  on publish_started from kls
  deny "revoked push key" if params.key == "k-revoked"
}
rule forged {
  on publish_started, publish_done from kls
  deny "a KLS field is repeated" if len(raw.spoofed) > 0
}
rule already_live {
  on publish_started from kls
  deny "stream already live" if sessions.publishers(stream.name) >= 1
}
"""

#: The other vendors are left out: these tests are about kls alone.
OTHERS = frozenset({"nginx_rtmp", "livepeer", "antmedia", "nimble"})


def _app(policy_dir: Path) -> TestClient:
    (policy_dir / "kls.policy").write_text(POLICY)
    settings_ = Settings(policies=(policy_dir,), disabled_plugins=OTHERS, log_format="json")
    return TestClient(create_app(settings_))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with _app(tmp_path) as started:
        yield started


def _post(client: TestClient, body: bytes) -> tuple[int, list[list[str]], bytes]:
    # No Content-Type: KLS's old callback sends none, and castgate must not need one.
    response = client.post("/hooks/kls", content=body)
    headers = [[key.decode(), value.decode()] for key, value in response.headers.raw]
    return response.status_code, headers, response.content


def _logs(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [
        record.fields  # type: ignore[attr-defined]
        for record in caplog.records
        if record.name == "castgate.decisions"
    ]


def _ack(answer: tuple[int, list[list[str]], bytes]) -> None:
    expected = ANSWERS["ack"]
    assert answer == (expected["status"], expected["headers"], expected["body"].encode())


# --- answers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", REQUESTS)
def test_every_request_shape_gets_an_empty_200(client: TestClient, name: str) -> None:
    _ack(_post(client, fixture(name)))


def test_a_flagged_push_is_acknowledged_alike_and_logged_with_the_rule(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        _ack(_post(client, json_body(PubParam={"key": "k-revoked"})))
    [logged] = _logs(caplog)
    assert (logged["vendor"], logged["action"], logged["effect"]) == (
        "kls",
        "publish_started",
        "ack",
    )
    assert (logged["rule"], logged["reason"]) == ("revoked_key", "revoked push key")
    assert (logged["status"], logged["params"]) == (200, ["key"])
    assert logged["time"] == "2022-12-09T08:38:50.460Z"  # KLS's PubStartUnixTime


def test_a_push_url_repeating_klss_fields_is_recorded_as_klss_and_flagged(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        _ack(_post(client, OLD_START + b"&call=user_publish_done&name=other"))
        _ack(_post(client, OLD_START))
    forged, retried = _logs(caplog)
    assert (forged["action"], forged["stream"]) == ("publish_started", "cam1")
    assert (forged["rule"], forged["reason"]) == ("forged", "a KLS field is repeated")
    # The forged body still opened cam1's session: the clean retry finds it live.
    assert retried["rule"] == "already_live"


def test_an_unflagged_push_is_logged_without_a_rule(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        _ack(_post(client, fixture("old/user_publish.body")))
    [logged] = _logs(caplog)
    assert (logged["effect"], logged["rule"], logged["stream"]) == ("ack", None, "asdf")


MALFORMED = [
    (b"", "empty body: a KLS callback is a JSON object or a form"),
    (b"\r\n", "empty body: a KLS callback is a JSON object or a form"),
    (b"[1, 2]", "body is a JSON array, not a JSON object"),
    (b'"PubStart"', "body is a JSON string, not a JSON object"),
    (b"42", "neither a JSON callback (no NotifyType) nor a form callback (no call)"),
    (
        json_body()[:40],
        "body is not valid JSON: Unterminated string starting at: line 1 column 35 (char 34)",
    ),
    (b'{"App": "a", "App": "b"}', "body is not valid JSON: key 'App' appears twice"),
    (b'{"NotifyType": "PubStart", "Stream": "\xff"}', "body is not valid UTF-8"),
    (b'{"a": ' + b"[" * 40 + b"]" * 40 + b"}", "body is nested deeper than 16 levels"),
    (b'{"a": ' + b"[" * 50_000, "body is nested too deeply"),
    (json_body(ClientPort="abc"), "ClientPort must be a port number, not 'abc'"),
    (
        json_body(PubStartUnixTime=True),
        "PubStartUnixTime must be epoch milliseconds, not a boolean",
    ),
    (json_body(App=["live"]), "App must be text, not a list"),
    (json_body(PubParam=[1]), "PubParam must be an object or JSON text holding one"),
    (json_body(NotifyType=None), "no NotifyType: not a KLS push callback"),
    (OLD_START.replace(b"name=cam1", b"name=cam%FF"), "app, name or tcurl is not valid UTF-8"),
    (
        b"app=live&name=cam1",
        "neither a JSON callback (no NotifyType) nor a form callback (no call)",
    ),
    (
        OLD_START + b"&pad=" + b"x" * MAX_BODY_BYTES,
        f"request body larger than {MAX_BODY_BYTES} bytes",
    ),
]


@pytest.mark.parametrize(
    ("body", "reason"), MALFORMED, ids=[reason[:40] for _, reason in MALFORMED]
)
def test_an_unreadable_callback_is_a_400_with_the_reason(
    client: TestClient, caplog: pytest.LogCaptureFixture, body: bytes, reason: str
) -> None:
    with caplog.at_level(logging.INFO):
        answer = _post(client, body)
    assert answer == (
        400,
        [
            ["content-length", str(len(reason.encode()))],
            ["content-type", "text/plain; charset=utf-8"],
            ["connection", "close"],
        ],
        reason.encode(),
    )
    assert answer[0] == ANSWERS["malformed"]["status"]
    [logged] = _logs(caplog)
    assert (logged["effect"], logged["reason"], logged["status"]) == (
        "deny",
        f"malformed request: {reason}",
        400,
    )


def test_a_body_over_the_apps_limit_is_refused_by_the_app(client: TestClient) -> None:
    status, _, body = _post(client, b"x" * (APP_MAX_BODY_BYTES + 1))
    assert (status, body) == (413, f"request body over {APP_MAX_BODY_BYTES} bytes".encode())


def test_a_get_has_no_body_and_is_refused(client: TestClient) -> None:
    response = client.get("/hooks/kls?app=live&name=cam1&call=user_publish")
    assert (response.status_code, response.text) == (
        400,
        "empty body: a KLS callback is a JSON object or a form",
    )


# --- sessions: a start pairs with its end -------------------------------------------------------


def _later(body: bytes) -> bytes:
    """The same push started again, after its end: a JSON start is re-dated, a form start is
    dated on arrival anyway."""
    if not body.startswith(b"{"):
        return body
    data = json.loads(body)
    data["PubStartUnixTime"] = 1_900_000_000_000
    return json.dumps(data).encode()


PAIRS = [
    ("new/pubstart_2020.json", "new/pubend_2020.json"),  # by Pubdomain/App/Stream
    ("new/pubstart_2024.json", "new/pubend_2024.json"),  # by Sequence
    ("old/user_publish.body", "old/user_publish_done.body"),  # by domain/app/stream/vdoid
    ("old/user_publish_empty_vdoid.body", "old/user_publish_done_empty_vdoid.body"),
]


@pytest.mark.parametrize(("start", "end"), PAIRS)
def test_a_start_pairs_with_its_end(
    client: TestClient, caplog: pytest.LogCaptureFixture, start: str, end: str
) -> None:
    with caplog.at_level(logging.INFO):
        for body in (
            fixture(start),  # nothing live: not flagged
            fixture(start),  # a retried start: its push is live already
            fixture(end),  # closes it
            _later(fixture(start)),  # the next push to the name: not flagged
            _later(fixture(start)),  # ... and live again
        ):
            _ack(_post(client, body))
    rules = [logged["rule"] for logged in _logs(caplog)]
    assert rules == [None, "already_live", None, None, "already_live"]


def test_pushes_to_one_stream_name_on_different_nodes_are_two_sessions(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        _post(client, json_body(Sequence="a", Node="198.51.100.1"))
        _post(client, json_body(Sequence="b", Node="198.51.100.2"))
        _post(client, json_body(Sequence="a", Node="198.51.100.1", NotifyType="PubEnd"))
        _post(client, json_body(Sequence="c", Node="198.51.100.3"))
    assert [logged["rule"] for logged in _logs(caplog)] == [
        None,
        "already_live",
        None,  # a PubEnd is never checked by these rules
        "already_live",  # b is still live
    ]


def test_an_end_without_a_start_is_acknowledged(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        _ack(_post(client, fixture("old/user_publish_done.body")))
        _ack(_post(client, fixture("old/user_publish.body")))
    # The late-looking start arrived after the end: it is a new push, and nothing else is live.
    assert [logged["rule"] for logged in _logs(caplog)] == [None, None]


# --- anything at all is a 200 or a 400, never a 5xx ---------------------------------------------


@pytest.fixture(scope="module")
def shared_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with _app(tmp_path_factory.mktemp("policies")) as started:
        yield started


_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=16),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=10,
)
_FIELDS = st.sampled_from(
    [
        "App",
        "Stream",
        "Pubdomain",
        "NotifyType",
        "PubParam",
        "ClientIp",
        "ClientPort",
        "Node",
        "Sequence",
        "PubStartUnixTime",
        "PubEndUnixTime",
        "PubEndMessage",
        "Version",
        "UniqueName",
    ]
)
_BODIES = st.one_of(
    st.binary(max_size=300),
    st.dictionaries(_FIELDS, _VALUES, max_size=14).map(
        lambda fields: json.dumps({"NotifyType": "PubStart", **fields}).encode()
    ),
    st.lists(
        st.sampled_from(
            [
                b"app=live&",
                b"name=",
                b"call=user_publish&",
                b"call=user_publish_done&",
                b"vdoid=",
                b"tcurl=rtmp://h/",
                b"%",
                b"%FF",
                b"&",
                b"=",
                b"nil",
                b"+",
                b"\xff",
                b"cam1",
            ]
        ),
        max_size=20,
    ).map(b"".join),
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=_BODIES)
def test_any_body_is_answered_200_or_400(shared_client: TestClient, body: bytes) -> None:
    status, headers, content = _post(shared_client, body)
    assert status in (200, 400)
    if status == 200:
        assert (headers, content) == (ANSWERS["ack"]["headers"], b"")
    else:
        assert content
        assert ["content-type", "text/plain; charset=utf-8"] in headers


# --- on the wire, as KLS sends it ---------------------------------------------------------------


def _exchange(base_url: str, request: bytes) -> tuple[bytes, float]:
    """Everything received until the server closed the connection, and how long that took."""
    address = urlsplit(base_url)
    with socket.create_connection((address.hostname, address.port), timeout=5) as connection:
        started = time.monotonic()
        connection.sendall(request)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
        return received, time.monotonic() - started


@pytest.mark.parametrize(
    ("head", "body"),
    [
        # The old callback as the doc shows it: HTTP/1.0, Connection: close, no Content-Type.
        (b"POST /hooks/kls HTTP/1.0\r\nConnection: close\r\n", fixture("old/user_publish.body")),
        (
            b"POST /hooks/kls HTTP/1.1\r\nHost: castgate\r\nContent-Type: application/json\r\n",
            fixture("new/pubstart_2024.json"),
        ),
    ],
    ids=["old-form-http-1.0", "new-json-http-1.1"],
)
def test_on_the_wire_the_answer_is_an_empty_200_and_the_connection_closes(
    tmp_path: Path, head: bytes, body: bytes
) -> None:
    (tmp_path / "kls.policy").write_text(POLICY)
    app = create_app(Settings(policies=(tmp_path,), disabled_plugins=OTHERS, log_format="json"))
    request = head + b"Content-Length: %d\r\n\r\n" % len(body) + body
    with served(app) as base_url:
        received, seconds = _exchange(base_url, request)
    head_received, _, content = received.partition(b"\r\n\r\n")
    lines = head_received.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 200 OK"
    headers = {line.split(b":")[0].lower(): line.split(b":", 1)[1].strip() for line in lines[1:]}
    assert headers[b"content-length"] == b"0"
    assert headers[b"connection"] == b"close"
    assert b"content-type" not in headers
    assert content == b""
    assert seconds < 2  # closed by castgate at once, not by a keep-alive timeout
