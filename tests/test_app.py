"""The HTTP app, with real plugins (the test vendor ``testcam`` installed as a distribution) and
real compiled policies. Most tests use Starlette's in-process client; those about connections
and raw bytes run a real uvicorn on loopback."""

from __future__ import annotations

import gc
import json
import logging
import socket
import sys
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from distributions import Site, installed_site
from served import served
from starlette.testclient import TestClient

import castgate
from castgate.app import create_app, create_app_from_env, set_aside_what_is_loaded
from castgate.gate import StartupError
from castgate.settings import DEFAULT_MAX_BODY as MAX_BODY_BYTES
from castgate.settings import Settings

POLICY = """
rule keyed {
  on publish from testcam
  allow with { rename: params.to } if params.key == "k1"
}
rule private_viewers {
  on play
  deny "no private viewers" if client.ip in [10.0.0.0/8]
}
rule viewers {
  on play
  allow
}
"""

#: castgate's own vendor plugins, turned off so these tests see only the test vendor.
BUILT_IN_VENDORS = frozenset({"nginx_rtmp", "livepeer", "antmedia", "kls", "nimble"})


def settings_for(policy_dir: Path, **changes: Any) -> Settings:
    # The built-in nginx_rtmp plugin is left out so these tests exercise the app alone.
    return Settings(
        policies=(policy_dir,),
        disabled_plugins=BUILT_IN_VENDORS,
        log_format="json",
        **changes,
    )


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "policies"
    directory.mkdir()
    (directory / "main.policy").write_text(POLICY)
    return directory


@pytest.fixture
def client(site: Site, policy_dir: Path) -> Iterator[TestClient]:
    site.install_testcam()
    with TestClient(create_app(settings_for(policy_dir))) as started:
        yield started


def observed_by_testcam() -> list[tuple[castgate.Event, castgate.Decision]]:
    observed: list[tuple[castgate.Event, castgate.Decision]] = sys.modules[
        "castgate_testcam"
    ].observed
    return observed


def decision_logs(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [
        record.fields  # type: ignore[attr-defined]
        for record in caplog.records
        if record.name == "castgate.decisions"
    ]


def test_healthz_says_the_process_is_alive_and_names_the_policy(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "policy": client.get("/readyz").json()["policy"]["version"],
    }
    assert len(response.json()["policy"]) == 12


def test_readyz_describes_the_loaded_policy_the_vendors_and_the_state(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    ready = response.json()
    assert ready["status"] == "ready"
    assert ready["vendors"] == ["testcam"]
    assert ready["reload_error"] == ""
    assert ready["state"] == {"backend": "memory", "reachable": True}
    assert ready["policy"]["rules"] >= 1
    assert ready["policy"]["loaded"].endswith("Z")
    assert all(path.endswith(".policy") for path in ready["policy"]["files"])


def test_an_allow_is_rendered_by_the_vendor_with_its_response_data(client: TestClient) -> None:
    body = {"action": "publish", "stream": "cam1", "params": {"key": "k1", "to": "cam1_hd"}}
    response = client.post("/hooks/testcam", json=body)
    assert response.status_code == 200
    assert response.json() == {"effect": "allow", "response": {"rename": "cam1_hd"}}


def test_a_deny_carries_the_rule_reason(client: TestClient) -> None:
    response = client.post("/hooks/testcam", json={"action": "play", "ip": "10.1.2.3"})
    assert (response.status_code, response.text) == (403, "no private viewers")


def test_a_request_no_rule_allows_is_denied_by_default(client: TestClient) -> None:
    response = client.post("/hooks/testcam", json={"action": "publish", "params": {"key": "k2"}})
    assert response.status_code == 403


def test_a_notification_is_acknowledged(client: TestClient) -> None:
    response = client.post("/hooks/testcam/done", json={"stream": "cam1"})
    assert response.status_code == 200
    assert response.json()["effect"] == "ack"


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/hooks/nope", "no vendor 'nope' (this server has: testcam)"),
        ("/hooks/testcam/zzz", "vendor 'testcam' has no route 'zzz' (it has: '', 'done')"),
    ],
)
def test_an_unknown_vendor_or_route_is_a_404_with_the_reason(
    client: TestClient, path: str, reason: str
) -> None:
    response = client.post(path, content=b"{}")
    assert (response.status_code, response.text) == (404, reason)


def test_a_malformed_decision_request_is_denied_the_vendors_way_and_logged(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        response = client.post("/hooks/testcam", content=b"not json")
    assert (response.status_code, response.text) == (403, "body is not JSON")
    [logged] = decision_logs(caplog)
    assert logged["effect"] == "deny"
    assert logged["reason"] == "malformed request: body is not JSON"
    assert logged["status"] == 403


def test_a_malformed_notification_gets_the_vendors_4xx(client: TestClient) -> None:
    response = client.post("/hooks/testcam/done", content=b"[1, 2]")
    assert (response.status_code, response.text) == (400, "body is not a JSON object")


def test_a_plugin_failing_to_parse_is_answered_as_malformed_and_logged_with_the_plugin(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        response = client.post("/hooks/testcam", json={"stream": "fail-parse"})
    assert (response.status_code, response.text) == (403, "the request could not be read")
    assert (
        "plugin 'testcam' (castgate-testcam 1.0): vendor 'testcam' failed to parse" in caplog.text
    )
    assert "testcam failed to parse" in caplog.text


def test_response_data_the_vendor_refuses_is_never_rendered_but_denied(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    body = {"action": "publish", "params": {"key": "k1", "to": "a/b"}}
    with caplog.at_level(logging.INFO):
        response = client.post("/hooks/testcam", json=body)
    assert response.status_code == 403
    assert response.text == "response data the vendor cannot send: rename must not contain '/'"
    [logged] = decision_logs(caplog)
    assert (logged["effect"], logged["rule"], logged["failed"]) == ("deny", "keyed", True)


def test_a_plugin_failing_to_validate_response_data_denies(client: TestClient) -> None:
    body = {"action": "publish", "params": {"key": "k1", "to": "fail-validate"}}
    response = client.post("/hooks/testcam", json=body)
    assert response.status_code == 403
    assert (
        response.text
        == "response data the vendor cannot send: validate_response raised RuntimeError"
    )


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/hooks/testcam", {"action": "play", "stream": "fail-render"}, 403),
        ("/hooks/testcam/done", {"stream": "fail-render"}, 200),
    ],
    ids=["decision", "notification"],
)
def test_a_plugin_failing_to_render_gets_a_bare_refusal_or_acknowledgement(
    client: TestClient,
    caplog: pytest.LogCaptureFixture,
    path: str,
    body: dict[str, str],
    status: int,
) -> None:
    with caplog.at_level(logging.INFO):
        response = client.post(path, json=body)
    assert (response.status_code, response.text) == (status, "")
    assert "vendor 'testcam' failed to render its answer" in caplog.text
    [logged] = decision_logs(caplog)
    assert logged["effect"] == ("deny" if status == 403 else "ack")


def test_observers_see_each_decision_after_the_answer(client: TestClient) -> None:
    client.post("/hooks/testcam", json={"action": "play", "stream": "cam2", "ip": "192.0.2.1"})
    [(event, decision)] = observed_by_testcam()
    assert (event.stream, event.client_ip) == ("cam2", "192.0.2.1")
    assert (decision.effect, decision.rule) == (castgate.Effect.ALLOW, "viewers")


def test_a_failing_observer_changes_nothing_in_the_answer(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        response = client.post("/hooks/testcam", json={"action": "play", "stream": "fail-observe"})
    assert response.status_code == 200
    assert "plugin 'testcam' failed in castgate_observe_decision" in caplog.text
    assert decision_logs(caplog)[0]["effect"] == "allow"


def test_the_decision_log_has_the_documented_keys_and_no_param_values(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    body = {
        "action": "publish",
        "app": "live",
        "stream": "cam1",
        "ip": "198.51.100.7",
        "params": {"key": "k1", "to": "cam1", "token": "s3cr3t-t0ken"},
    }
    with caplog.at_level(logging.INFO):
        client.post("/hooks/testcam", json=body)
    [logged] = decision_logs(caplog)
    assert set(logged) >= {
        "time",
        "vendor",
        "action",
        "app",
        "stream",
        "client_ip",
        "effect",
        "rule",
        "reason",
        "latency_ms",
    }
    assert logged["vendor"] == "testcam"
    assert (logged["app"], logged["stream"], logged["client_ip"]) == (
        "live",
        "cam1",
        "198.51.100.7",
    )
    assert (logged["effect"], logged["rule"]) == ("allow", "keyed")
    assert logged["params"] == ["key", "to", "token"]
    assert 0 < logged["latency_ms"] < 1000
    assert "s3cr3t-t0ken" not in caplog.text
    assert "k1" not in json.dumps(logged)


def test_explain_puts_the_rule_trace_in_the_decision_log(
    site: Site, policy_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    site.install_testcam()
    with (
        TestClient(create_app(settings_for(policy_dir, explain=True))) as client,
        caplog.at_level(logging.INFO),
    ):
        client.post("/hooks/testcam", json={"action": "play", "ip": "10.0.0.1"})
    [logged] = decision_logs(caplog)
    assert [step["rule"] for step in logged["trace"]] == ["private_viewers", "viewers"]


def test_every_answer_asks_to_close_the_connection(client: TestClient) -> None:
    assert client.get("/healthz").headers["connection"] == "close"
    assert client.post("/hooks/testcam", content=b"x").headers["connection"] == "close"
    assert client.post("/hooks/nope").headers["connection"] == "close"


def test_a_trailing_slash_is_not_redirected(client: TestClient) -> None:
    # A redirect from a hook means "rename the stream" to nginx-rtmp.
    response = client.get("/healthz/", follow_redirects=False)
    assert response.status_code == 404


def test_a_body_over_the_limit_is_refused_before_the_plugin_sees_it(client: TestClient) -> None:
    response = client.post("/hooks/testcam", content=b"{" + b" " * MAX_BODY_BYTES + b"}")
    assert response.status_code == 413
    assert observed_by_testcam() == []


def test_nothing_is_loaded_until_the_server_starts(site: Site, tmp_path: Path) -> None:
    app = create_app(settings_for(tmp_path / "missing"))  # no error yet: nothing loaded
    with pytest.raises(StartupError, match="no such file or directory"), TestClient(app):
        pass


def test_a_policy_that_does_not_compile_stops_startup_with_the_full_report(
    site: Site, policy_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    site.install_testcam()
    (policy_dir / "main.policy").write_text(
        "rule r {\n  on publish\n  allow if params.key == \n}\n"
    )
    with pytest.raises(StartupError) as raised, TestClient(create_app(settings_for(policy_dir))):
        pass
    assert f"{policy_dir / 'main.policy'}:4:1" in str(raised.value)
    assert "castgate cannot start" in caplog.text


def test_a_broken_plugin_stops_startup_naming_it(site: Site, policy_dir: Path) -> None:
    site.install("acme", entry_points={"acme": "acme_broken"}, modules={"acme_broken": "1 / 0"})
    with pytest.raises(StartupError) as raised, TestClient(create_app(settings_for(policy_dir))):
        pass
    assert "plugin 'acme' (acme 1.0): cannot import 'acme_broken': ZeroDivisionError" in str(
        raised.value
    )


def test_the_app_factory_reads_its_settings_from_the_environment(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_logging: None
) -> None:
    site.install_testcam()
    (tmp_path / "viewers.policy").write_text("rule viewers { on play allow }")
    monkeypatch.setenv("CASTGATE_POLICIES", str(tmp_path / "viewers.policy"))
    monkeypatch.setenv("CASTGATE_DISABLE_PLUGINS", ",".join([*BUILT_IN_VENDORS, "testcam"]))
    with TestClient(create_app_from_env()) as client:
        assert client.get("/readyz").json()["vendors"] == []
        response = client.post("/hooks/testcam", content=b"{}")
    assert (response.status_code, response.text) == (
        404,
        "no vendor 'testcam' (this server has: none)",
    )


# Against a real uvicorn: connection handling and bytes no in-process client would send.


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("served")
    (root / "main.policy").write_text(POLICY)
    with installed_site(root / "site") as site:
        site.install_testcam()
        with served(create_app(settings_for(root))) as base_url:
            yield base_url


def exchange(base_url: str, request: bytes) -> tuple[bytes, float]:
    """Send raw ``request``; return everything received until the server closed the connection,
    and how many seconds the close took after the request was sent."""
    address = urlsplit(base_url)
    with socket.create_connection((address.hostname, address.port), timeout=5) as connection:
        started = time.monotonic()
        connection.sendall(request)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
        return received, time.monotonic() - started


@pytest.mark.parametrize(
    "request_head",
    [
        # nginx-rtmp's own request line and headers
        b"POST /hooks/testcam HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: Close\r\n",
        b"POST /hooks/testcam HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n",
    ],
    ids=["http-1.0", "http-1.1-keep-alive"],
)
def test_the_server_closes_the_connection_right_after_answering(
    server: str, request_head: bytes
) -> None:
    body = b'{"action": "play", "stream": "cam1"}'
    request = request_head + b"Content-Length: %d\r\n\r\n" % len(body) + body
    received, seconds = exchange(server, request)
    assert received.startswith((b"HTTP/1.0 200", b"HTTP/1.1 200"))
    assert b"connection: close" in received.lower()
    # The keep-alive timeout is 30 s here, so a close this quick is the app's doing.
    assert seconds < 2


GARBAGE_BODIES = [
    b"",
    b"\xff\xfe\xfd not utf-8 \xc3\x28",
    b"call=publish&name=%ff%fe&addr=\xff",
    b'{"stream": "\xff"}',
    b'{"params": "not an object"}',
    b'{"params": [1, 2]}',
    b'{"stream": {"nested": true}, "action": 5}',
    b"[" * 10_000 + b"]" * 10_000,
    b"\x00" * 1000,
    b"{" + b" " * (MAX_BODY_BYTES + 10) + b"}",
]
PATHS = [
    "/",
    "/healthz",
    "/hooks",
    "/hooks/",
    "/hooks/testcam",
    "/hooks/testcam/",
    "/hooks/testcam/done",
    "/hooks/testcam/zzz",
    "/hooks/nope",
    "/hooks/%ff%fe",
    "/hooks/testcam/%00",
]
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]


@pytest.mark.parametrize("path", PATHS)
def test_nothing_a_client_sends_gets_a_5xx_or_a_redirect(server: str, path: str) -> None:
    with httpx.Client(base_url=server, timeout=10) as http:
        for method in METHODS:
            for body in GARBAGE_BODIES:
                response = http.request(method, path, content=body)
                assert response.status_code < 500, (method, path, body[:40])
                assert not 300 <= response.status_code < 400, (method, path, body[:40])


def test_a_request_the_http_layer_cannot_parse_gets_a_4xx(server: str) -> None:
    received, _ = exchange(server, b"POST /hooks/testcam HTTP/1.1\r\nContent-Length: x\r\n\r\n")
    assert received.startswith(b"HTTP/1.1 4")


@pytest.mark.parametrize("owns_process", [True, False])
def test_a_server_process_sets_what_startup_loaded_aside_from_garbage_collection(
    site: Site, policy_dir: Path, owns_process: bool
) -> None:
    site.install_testcam()
    gc.unfreeze()
    try:
        with TestClient(create_app(settings_for(policy_dir), owns_process=owns_process)):
            assert (gc.get_freeze_count() > 0) is owns_process
    finally:
        gc.unfreeze()


class _Cycle:
    def __init__(self) -> None:
        self.itself = self


def test_setting_aside_again_collects_cycles_frozen_earlier() -> None:
    let_go = _Cycle()
    collected = weakref.ref(let_go)
    gc.freeze()
    del let_go
    try:
        set_aside_what_is_loaded()
        assert collected() is None
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
