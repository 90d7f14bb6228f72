"""The livepeer vendor through the real castgate app and real compiled policies: every answer
byte for byte, the shipped worked policy, response data refused at load and at request time,
and hostile bodies (fuzzed too), which get a refusal and never a 5xx or an allow."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from served import served
from starlette.testclient import TestClient

from castgate import MalformedRequest
from castgate.app import create_app
from castgate.gate import StartupError
from castgate.lang.tokens import link_signature
from castgate.settings import Settings
from castgate_livepeer import Livepeer

from .support import FIXTURES, fixture, fixture_json, make_request

POLICIES = Path(__file__).parents[3] / "policies" / "livepeer"
#: The other built-in vendors are left out: these tests are about this one.
OTHERS = frozenset({"nginx_rtmp", "antmedia", "kls", "nimble"})
ORCHESTRATOR = "/hooks/livepeer/orchestrator"
#: A request fixture for each action.
REQUESTS = {
    "publish": ("/hooks/livepeer", "requests/broadcaster/rtmp_publish_plain.json"),
    "play": ("/hooks/livepeer", "requests/broadcaster/recordings_mp4.json"),
    "discover": (ORCHESTRATOR, "requests/orchestrator/discover.json"),
}


def app_for(directory: Path, policy: str, files: dict[str, str] | None = None) -> TestClient:
    directory.mkdir(exist_ok=True)
    (directory / "test.policy").write_text(policy)
    for name, text in (files or {}).items():
        (directory / name).write_text(text)
    return TestClient(create_app(Settings(policies=(directory,), disabled_plugins=OTHERS)))


def decision_logs(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [
        record.fields  # type: ignore[attr-defined]
        for record in caplog.records
        if record.name == "castgate.decisions"
    ]


# --- every answer, byte for byte ----------------------------------------------------------------

ANSWERS = sorted(path.stem for path in (FIXTURES / "answers").glob("*.json"))


def _rule_for(answer: dict[str, Any]) -> str:
    if answer["effect"] == "deny":
        return f"deny {json.dumps(answer['reason'])}"
    # A JSON object is a policy object literal: the policy sends exactly the fixture's data.
    data = answer["response"]
    return f"allow with {json.dumps(data)}" if data else "allow"


@pytest.mark.parametrize("name", ANSWERS)
def test_each_answer_through_the_app(tmp_path: Path, name: str) -> None:
    answer = fixture_json(f"answers/{name}.json")
    policy = f"rule r {{ on {answer['action']} from livepeer  {_rule_for(answer)} }}"
    path, request = REQUESTS[answer["action"]]
    with app_for(tmp_path / "p", policy) as client:
        response = client.post(path, content=fixture(request))
    assert response.status_code == answer["status"]
    assert response.headers.get("content-type") == answer["content_type"]
    assert response.content == answer["body"].encode()
    assert response.headers["connection"] == "close"


@pytest.mark.parametrize(
    "name", sorted(path.stem for path in (FIXTURES / "requests" / "broadcaster").glob("*.json"))
)
def test_every_broadcaster_request_reaches_the_policy_as_its_event(
    tmp_path: Path, name: str
) -> None:
    expected = fixture_json(f"events/broadcaster/{name}.json")
    # Allowed only when the policy sees the documented action, app, stream and node.
    policy = (
        f"rule r {{ on {expected['action']} from livepeer app {json.dumps(expected['app'])}\n"
        f"  allow if node == {json.dumps(expected['node'])} and raw.form == "
        f"{json.dumps(expected['raw']['form'])}"
        + (f" and stream.name == {json.dumps(expected['stream'])}" if expected["stream"] else "")
        + " }"
    )
    if not expected["node"]:
        policy = policy.replace('node == ""', "not has(node)")
    with app_for(tmp_path / "p", policy) as client:
        response = client.post(
            "/hooks/livepeer", content=fixture(f"requests/broadcaster/{name}.json")
        )
    assert (response.status_code, response.content) == (200, b"")


def test_the_orchestrator_request_reaches_the_policy_with_its_lowercase_address(
    tmp_path: Path,
) -> None:
    policy = (
        "rule r { on discover from livepeer\n"
        "  allow with { priceInfo: { pricePerUnit: 7, pixelsPerUnit: 2 } }\n"
        '  if params.address == "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"\n'
        '  and session.id == params.address and node == "orch1" }'
    )
    with app_for(tmp_path / "p", policy) as client:
        response = client.post(
            f"{ORCHESTRATOR}?node=orch1", content=fixture("requests/orchestrator/discover.json")
        )
    assert response.content == b'{"priceInfo":{"pricePerUnit":7,"pixelsPerUnit":2}}'


def test_an_empty_allow_is_exactly_200_with_no_body_on_the_wire(tmp_path: Path) -> None:
    # Go's client reads the body by Content-Length; only 200 counts, and any body must be JSON.
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "t.policy").write_text("rule r { on publish from livepeer  allow }")
    app = create_app(Settings(policies=(tmp_path / "p",), disabled_plugins=OTHERS))
    body = fixture("requests/broadcaster/rtmp_publish_plain.json")
    with served(app) as base:
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as conn:
            conn.sendall(
                b"POST /hooks/livepeer HTTP/1.1\r\nHost: castgate\r\n"
                b"User-Agent: Go-http-client/1.1\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\nAccept-Encoding: gzip\r\n\r\n".encode()
                + body
            )
            raw = b""
            while chunk := conn.recv(4096):
                raw += chunk
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 200 OK"
    headers = dict(line.lower().split(b": ", 1) for line in lines[1:])
    assert headers[b"content-length"] == b"0"
    assert headers[b"connection"] == b"close"
    assert b"content-type" not in headers
    assert rest == b""


# --- the shipped worked policy ------------------------------------------------------------------


@pytest.fixture
def worked(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("CASTGATE_SIGNING_KEY", "policy-test-signing-key")
    settings_ = Settings(policies=(POLICIES,), disabled_plugins=OTHERS)
    with TestClient(create_app(settings_)) as client:
        yield client


def test_worked_policy_small_ladder_over_rtmp(worked: TestClient) -> None:
    response = worked.post(
        "/hooks/livepeer", content=fixture("requests/broadcaster/rtmp_publish.json")
    )
    assert response.content == (
        b'{"manifestID":"studio1","presets":["P360p30fps16x9","P240p30fps16x9"]}'
    )


def test_worked_policy_full_ladder_over_http_push(worked: TestClient) -> None:
    body = fixture("requests/broadcaster/push_first_segment.json")
    response = worked.post("/hooks/livepeer", content=body)
    expected = fixture_json("answers/allow_ladder.json")["body"].replace("studio1", "studio2")
    assert (response.status_code, response.text) == (200, expected)


def test_worked_policy_refuses_an_unknown_key(worked: TestClient) -> None:
    body = fixture("requests/broadcaster/rtmp_publish_stream_prefix.json")
    assert (worked.post("/hooks/livepeer", content=body).text) == "unknown stream key"


def test_worked_policy_signed_recordings(worked: TestClient) -> None:
    expires = int(time.time()) + 600
    sig = link_signature("policy-test-signing-key", "recordings/studio1", expires)
    url = f"http://gw1:8935/recordings/studio1/index.m3u8?expires={expires}&sig={sig}"
    response = worked.post("/hooks/livepeer", json={"url": url})
    assert (response.status_code, response.content) == (200, b"")
    forged = url.replace("studio1/index", "studio2/index")
    assert worked.post("/hooks/livepeer", json={"url": forged}).status_code == 403


def test_worked_policy_prices(worked: TestClient) -> None:
    discover = fixture("requests/orchestrator/discover.json")
    assert worked.post(ORCHESTRATOR, content=discover).content == (
        b'{"priceInfo":{"pricePerUnit":900,"pixelsPerUnit":1}}'
    )
    other = worked.post(ORCHESTRATOR, json={"id": "0x" + "Ab" * 20})
    assert other.content == b'{"priceInfo":{"pricePerUnit":1500,"pixelsPerUnit":1}}'
    blocked = worked.post(ORCHESTRATOR, json={"id": "0xDBF03B407C01E7CD3CBEA99509D93F8DDDC8C6FB"})
    assert (blocked.status_code, blocked.text) == (403, "broadcaster not served")


def test_a_bad_price_in_the_worked_policys_file_is_refused_not_quoted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    copy = tmp_path / "livepeer"
    shutil.copytree(POLICIES, copy)
    (copy / "prices.txt").write_text("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed 12.5\n")
    monkeypatch.setenv("CASTGATE_SIGNING_KEY", "k")
    app = create_app(Settings(policies=(copy,), disabled_plugins=OTHERS))
    with TestClient(app) as client, caplog.at_level(logging.INFO):
        response = client.post(ORCHESTRATOR, content=fixture("requests/orchestrator/discover.json"))
    assert response.status_code == 403
    assert response.text == (
        "response data the vendor cannot send: priceInfo.pricePerUnit must be a whole number "
        "0 or more, not a number (12.5)"
    )
    [logged] = decision_logs(caplog)
    assert (logged["rule"], logged["failed"]) == ("negotiated_price", True)


# --- response data refused at load and at request time ------------------------------------------


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ('allow with { manifestID: "live/cam" }', "E502: livepeer: manifestID 'live/cam' would"),
        ('allow with { manifestID: "m", profiles: [] }', "zero renditions"),
        ('allow with { manifestID: "m", presets: ["P1080p"] }', "'P1080p' is not a preset"),
        ("allow with { priceInfo: { pricePerUnit: 1, pixelsPerUnit: 0 } }", "above 0"),
        (
            "allow with { profiles: [{ width: 1, height: 1, bitrate: 100000 }] }",
            "manifestID is required",
        ),
        ('allow with { rename: "x" }', "E501"),
        ("allow with { priceInfo: 5 }", "E301"),
    ],
)
def test_constant_data_the_node_cannot_take_stops_startup(
    tmp_path: Path, rule: str, message: str
) -> None:
    with (
        pytest.raises(StartupError) as raised,
        app_for(tmp_path / "p", f"rule r {{ on publish, discover from livepeer  {rule} }}"),
    ):
        pass
    assert message in str(raised.value)


def test_livepeer_never_sends_update(tmp_path: Path) -> None:
    with (
        pytest.raises(StartupError, match="E204"),
        app_for(tmp_path / "p", "rule r { on update from livepeer  allow }"),
    ):
        pass


@pytest.mark.parametrize(
    ("query", "text"),
    [
        (
            "m=live%2Fcam",
            "manifestID 'live/cam' would reach the node as 'live'; use letters and digits only",
        ),
        ("m=", "manifestID is required with presets"),
        ("m=ok&p=P720p", "presets[0] 'P720p' is not a preset"),
    ],
)
def test_computed_data_the_node_cannot_take_is_a_logged_refusal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, query: str, text: str
) -> None:
    policy = (
        "rule r { on publish from livepeer\n"
        '  allow with { manifestID: params.m, presets: [params.p, "P240p30fps16x9"] } }'
    )
    with app_for(tmp_path / "p", policy) as client, caplog.at_level(logging.INFO):
        response = client.post("/hooks/livepeer", json={"url": f"rtmp://gw1/live/k?{query}"})
    assert response.status_code == 403
    assert response.text.startswith(f"response data the vendor cannot send: {text}")
    [logged] = decision_logs(caplog)
    assert (logged["effect"], logged["failed"]) == ("deny", True)


# --- hostile bodies -----------------------------------------------------------------------------

HOSTILE = [
    (b"", "body is empty"),
    (b'{"url":"rtmp://gw1/live/k"', "body is not JSON"),
    (b'{"url":', "body is not JSON"),
    (b'{"url":"rtmp://gw1/live/k","url":"rtmp://gw1/live/other"}', "repeats the JSON key 'url'"),
    (b'{"id":"0x1","id":"0x2"}', "repeats the JSON key 'id'"),
    (b'{"url":"rtmp://gw1/live/\xff"}', "body is not UTF-8"),
    (b'{"url":"\\ud83d"}', "lone surrogate"),
    (b'["rtmp://gw1/live/k"]', "a JSON array"),
    (b'"rtmp://gw1/live/k"', "a JSON string"),
    (b"null", "JSON null"),
    (b"1e999", "a JSON number"),
    (b"[" * 20_000 + b"]" * 20_000, "nested too deeply"),
    (b'{"url":' + b"[" * 20_000 + b"]" * 20_000 + b"}", "nested too deeply"),
    (b'{"url":"' + b"a" * 70_000 + b'"}', "larger than 65536 bytes"),
    (b'{"url":5}', "no url"),
    (b'{"id":5}', "no id"),
    (b'{"url":{"$ne":""}}', "no url"),
]


@pytest.fixture(scope="module")
def allow_all(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """Allows everything the policy can see, with data: whatever is refused, the plugin refused."""
    directory = tmp_path_factory.mktemp("allow_all")
    policy = (
        'rule b { on publish, play from livepeer  allow with { manifestID: "m1" } }\n'
        "rule o { on discover from livepeer  allow with { priceInfo: { pricePerUnit: 1, "
        "pixelsPerUnit: 1 } } }\n"
    )
    with app_for(directory, policy) as client:
        yield client


@pytest.mark.parametrize("path", ["/hooks/livepeer", ORCHESTRATOR])
@pytest.mark.parametrize(("body", "reason"), HOSTILE, ids=[repr(body[:20]) for body, _ in HOSTILE])
def test_hostile_bodies_are_refused_with_the_reason(
    allow_all: TestClient, path: str, body: bytes, reason: str
) -> None:
    if path == ORCHESTRATOR and reason == "no url":
        reason = "no id"
    if path == "/hooks/livepeer" and reason == "no id":
        reason = "no url"
    response = allow_all.post(path, content=body)
    assert response.status_code == 403
    assert reason in response.text


def test_a_body_over_the_servers_limit_is_a_413(allow_all: TestClient) -> None:
    response = allow_all.post("/hooks/livepeer", content=b'{"url":"' + b"a" * (2 << 20) + b'"}')
    assert response.status_code == 413


def test_a_get_is_refused(allow_all: TestClient) -> None:
    response = allow_all.get("/hooks/livepeer?url=rtmp://gw1/live/k")
    assert (response.status_code, response.text) == (403, "body is empty")


def test_an_unknown_route_is_a_404(allow_all: TestClient) -> None:
    response = allow_all.post("/hooks/livepeer/broadcaster", json={"url": "rtmp://gw1/live/k"})
    assert response.status_code == 404


_PIECES = st.sampled_from(
    [
        "rtmp://",
        "http://",
        "https://",
        "gw1",
        ":1935",
        "/",
        "live",
        "recordings",
        "stream",
        "k1",
        ".ts",
        ".m3u8",
        "?",
        "&",
        "=",
        "node",
        "%FF",
        "%2F",
        "%",
        "[",
        "]",
        "@",
        " ",
        "\x00",
        "\u00e9",
        "\ud800",
        "nil",
        "#",
        "\\",
    ]
)
_URLS = st.lists(_PIECES, max_size=14).map("".join)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
_OBJECTS = st.dictionaries(st.sampled_from(["url", "id", "URL", "x"]), _URLS | _JSON, max_size=3)


def _encoded(value: object) -> bytes:
    return json.dumps(value).encode()


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.one_of(st.binary(max_size=200), _OBJECTS.map(_encoded), _JSON.map(_encoded)),
    path=st.sampled_from(["/hooks/livepeer", ORCHESTRATOR]),
)
def test_fuzzed_bodies_are_answered_and_only_a_readable_call_is_allowed(
    allow_all: TestClient, body: bytes, path: str
) -> None:
    response = allow_all.post(path, content=body)
    route = "orchestrator" if path == ORCHESTRATOR else ""
    try:
        event = asyncio.run(Livepeer().parse(make_request(body, target=path), route))
    except MalformedRequest as error:
        assert (response.status_code, response.text) == (403, error.reason[:200])
        return
    assert event.action in {"publish", "play", "discover"}
    assert response.status_code == 200
    assert response.content in (
        b'{"manifestID":"m1"}',
        b'{"priceInfo":{"pricePerUnit":1,"pixelsPerUnit":1}}',
    )
