"""Nimble through castgate's real app: real plugin loading, real compiled policies, real answers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from distributions import Site
from served import served
from starlette.testclient import TestClient

from castgate.app import create_app
from castgate.settings import Settings

from .support import OTHER_VENDORS, TOKEN, fixture, nimble_app, sign

POLICY = """
rule keyed {
  on play from nimble app live
  allow if params.key == "k1"
}
rule renew {
  on play from nimble app live
  allow with { redirect: "https://shop.example.com/renew?from=castgate" } if params.key == "old"
}
rule computed {
  on play from nimble app computed
  allow with { redirect: params.to }
}
rule private_viewers {
  on play from nimble
  deny "private address" if client.ip in [10.0.0.0/8]
}
rule banned {
  on update from nimble
  deny "banned id" if params.id in ["2", "user-17"]
}
rule stay {
  on update from nimble
  allow if role == "viewer"
}
rule odd_publish {
  on publish_started from nimble
  deny "unexpected app" if app != "live"
}
"""

JSON = "application/json"


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "policies"
    directory.mkdir()
    (directory / "nimble.policy").write_text(POLICY)
    return directory


@pytest.fixture
def client(policy_dir: Path) -> Iterator[TestClient]:
    with nimble_app(policy_dir) as started:
        yield started


def decision_logs(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [
        record.fields  # type: ignore[attr-defined]
        for record in caplog.records
        if record.name == "castgate.decisions"
    ]


def _auth(client: TestClient, body: dict[str, Any], path: str = "/hooks/nimble") -> Any:
    return client.post(path, json=body, follow_redirects=False)


# --- the auth handler ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/hooks/nimble", "/hooks/nimble/auth"])
def test_an_allowed_viewer_gets_200_with_the_status_as_json(client: TestClient, path: str) -> None:
    body = {"clientIp": "203.0.113.5", "url": "http://edge:8081/live/cam1/playlist.m3u8?key=k1"}
    response = _auth(client, body, path)
    assert (response.status_code, response.content) == (200, b'{"status":200}')
    assert response.headers["content-type"] == JSON
    assert response.headers["connection"] == "close"


def test_a_denied_viewer_gets_403(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    body = {"ip": "10.1.2.3", "url": "/live/cam1/playlist.m3u8?key=k1", "id": "s1"}
    with caplog.at_level(logging.INFO):
        response = _auth(client, body)
    assert (response.status_code, response.content) == (403, b'{"status":403}')
    [logged] = decision_logs(caplog)
    assert logged["vendor"] == "nimble"
    assert (logged["action"], logged["app"], logged["stream"]) == ("play", "live", "cam1")
    assert (logged["client_ip"], logged["params"]) == ("10.1.2.3", ["key"])
    assert (logged["effect"], logged["rule"], logged["reason"]) == (
        "deny",
        "private_viewers",
        "private address",
    )
    assert logged["status"] == 403


def test_no_rule_allowing_is_a_403(client: TestClient) -> None:
    response = _auth(client, {"ip": "203.0.113.5", "url": "/live/cam1/playlist.m3u8?key=k2"})
    assert (response.status_code, response.content) == (403, b'{"status":403}')


def test_a_redirect_is_a_302_with_the_location(client: TestClient) -> None:
    response = _auth(client, {"ip": "203.0.113.5", "url": "/live/cam1/manifest.mpd?key=old"})
    assert (response.status_code, response.content) == (302, b'{"status":302}')
    assert response.headers["location"] == "https://shop.example.com/renew?from=castgate"
    assert response.headers["content-type"] == JSON


def test_a_computed_redirect_the_vendor_cannot_send_is_denied_and_logged(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    ok = _auth(client, {"url": "/computed/x?to=https%3A%2F%2Fa.example%2Fp"})
    assert (ok.status_code, ok.headers["location"]) == (302, "https://a.example/p")
    with caplog.at_level(logging.INFO):
        bad = _auth(client, {"url": "/computed/x?to=%2Frelative"})
    assert (bad.status_code, bad.content, "location" in bad.headers) == (
        403,
        b'{"status":403}',
        False,
    )
    [logged] = decision_logs(caplog)
    assert logged["failed"] is True
    assert logged["reason"].startswith("response data the vendor cannot send: redirect must be")


def test_the_answer_for_one_session_is_the_same_each_time(client: TestClient) -> None:
    # Nimble asks once per session start; a player that retries gets the same answer.
    body = {"ip": "203.0.113.5", "url": "/live/cam1/playlist.m3u8?key=k1"}
    answers = {(r.status_code, r.content) for r in (_auth(client, body) for _ in range(3))}
    assert answers == {(200, b'{"status":200}')}


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"[]",
        b'"x"',
        b"\xff",
        b'{"ip": "203.0.113.5", "ip": "10.0.0.1", "url": "/live/cam1?key=k1"}',
        b'{"ip": ["203.0.113.5"], "url": "/live/cam1?key=k1"}',
        b'{"url": "/x/../live/cam1?key=k1"}',
        b'{"url": "/live/cam1?key=k1", "x": "\\udc00"}',
        b'{"a":' * 40 + b"1" + b"}" * 40,
    ],
)
def test_malformed_auth_requests_are_denied_and_logged(
    client: TestClient, caplog: pytest.LogCaptureFixture, body: bytes
) -> None:
    with caplog.at_level(logging.INFO):
        response = client.post("/hooks/nimble", content=body)
    assert (response.status_code, response.content) == (403, b'{"status":403}')
    [logged] = decision_logs(caplog)
    assert (logged["effect"], logged["action"]) == ("deny", "play")
    assert logged["reason"].startswith("malformed request: ")


def test_a_body_over_castgates_limit_gets_413(client: TestClient) -> None:
    response = client.post("/hooks/nimble/ppv", content=b" " * (1024 * 1024 + 1))
    assert response.status_code == 413


def test_a_redirect_reaches_the_wire_verbatim(policy_dir: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("CASTGATE_NIMBLE_TOKEN", TOKEN)
    settings = Settings(policies=(policy_dir,), disabled_plugins=OTHER_VENDORS, log_format="json")
    body = b'{"ip":"203.0.113.5","url":"/live/cam1/playlist.m3u8?key=old"}'
    with served(create_app(settings)) as base:
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as connection:
            connection.sendall(
                b"POST /hooks/nimble HTTP/1.1\r\nHost: castgate\r\n"
                b"Content-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            received = b""
            while chunk := connection.recv(4096):
                received += chunk
    head, _, content = received.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 302 Found"
    assert b"location: https://shop.example.com/renew?from=castgate" in lines
    assert b"content-type: application/json" in lines
    assert b"connection: close" in lines
    assert content == b'{"status":302}'


# --- the PPV sync ----------------------------------------------------------------------------


def test_a_signed_sync_gets_the_deny_list_and_each_player_is_logged(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        response = client.post("/hooks/nimble/ppv", content=fixture("ppv/sample_signed.json"))
    assert (response.status_code, response.content) == (200, b'{"DenyList":{"ID":["2"]}}')
    assert response.headers["content-type"] == JSON
    assert response.headers["connection"] == "close"
    logged = decision_logs(caplog)
    # One record per player (the app writes them in no promised order).
    assert sorted((e["action"], e["client_ip"], e["effect"], e["rule"]) for e in logged) == [
        ("update", "127.0.0.1", "allow", "stay"),
        ("update", "127.0.0.1", "allow", "stay"),
        ("update", "192.168.10.10", "allow", "stay"),
        ("update", "192.168.10.11", "deny", "banned"),
    ]
    assert {(e["app"], e["stream"], e["status"]) for e in logged} == {("vod", "sample.mp4", 200)}
    assert logged[0]["params"] == ["delta", "id", "instance", "vhost"]


def test_an_id_denied_twice_is_listed_once(client: TestClient) -> None:
    response = client.post("/hooks/nimble/ppv", content=fixture("ppv/xsd_sessionid.json"))
    assert response.content == b'{"DenyList":{"ID":["user-17"]}}'


def test_a_sync_nobody_is_denied_in_gets_an_empty_list(client: TestClient) -> None:
    for name in ("wrapped", "single_objects", "no_players", "empty_levels"):
        response = client.post("/hooks/nimble/ppv", content=fixture(f"ppv/{name}.json"))
        assert (response.status_code, response.content) == (200, b'{"DenyList":{"ID":[]}}')


def test_alerts_are_acknowledged_and_flagged_in_the_log(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    sync_id, puzzle = "alert-1", "puzzle-1"
    alert = {"VHostName": "_defaultVHost_", "AppInstanceName": "_definst_", "StreamName": "x"}
    body = {
        "ApiSyncRequest": {
            "ID": sync_id,
            "Puzzle": puzzle,
            "Signature": sign(sync_id, puzzle),
            "Publish": [{**alert, "AppName": "live"}, {**alert, "AppName": "test"}],
        }
    }
    with caplog.at_level(logging.INFO):
        response = client.post("/hooks/nimble/ppv", json=body)
    assert (response.status_code, response.content) == (200, b'{"DenyList":{"ID":[]}}')
    logged = decision_logs(caplog)
    assert sorted((e["action"], e["app"], e["effect"], e["rule"] or "") for e in logged) == [
        ("publish_started", "live", "ack", ""),
        ("publish_started", "test", "ack", "odd_publish"),
    ]


def test_a_forged_sync_is_403_denies_nobody_and_is_logged(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        response = client.post("/hooks/nimble/ppv", content=fixture("ppv/official_sample.json"))
    assert (response.status_code, response.content) == (403, b'{"DenyList":{"ID":[]}}')
    [logged] = decision_logs(caplog)
    assert logged["reason"] == (
        "malformed request: sync signature does not match the token in CASTGATE_NIMBLE_TOKEN"
    )
    assert logged["status"] == 403


def test_an_unsigned_sync_is_403(client: TestClient) -> None:
    body = json.loads(fixture("ppv/sample_signed.json"))
    del body["Signature"]
    response = client.post("/hooks/nimble/ppv", json=body)
    assert (response.status_code, response.content) == (403, b'{"DenyList":{"ID":[]}}')


def test_a_garbled_signed_sync_is_400_and_denies_nobody(client: TestClient) -> None:
    body = json.loads(fixture("ppv/sample_signed.json"))
    body["PayPerViewInfo"]["VHost"][0]["Application"] = "vod"
    response = client.post("/hooks/nimble/ppv", json=body)
    assert (response.status_code, response.content) == (400, b'{"DenyList":{"ID":[]}}')
    response = client.post("/hooks/nimble/ppv", content=b'{"ID": "1", ')
    assert (response.status_code, response.content) == (400, b'{"DenyList":{"ID":[]}}')


def test_without_a_token_every_sync_is_refused_and_the_log_says_why(
    policy_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with nimble_app(policy_dir, token=None) as client, caplog.at_level(logging.INFO):
        response = client.post("/hooks/nimble/ppv", content=fixture("ppv/sample_signed.json"))
    assert (response.status_code, response.content) == (403, b'{"DenyList":{"ID":[]}}')
    [logged] = decision_logs(caplog)
    assert "set CASTGATE_NIMBLE_TOKEN" in logged["reason"]


def test_the_token_is_read_from_the_environment_when_the_server_starts(policy_dir: Path) -> None:
    with nimble_app(policy_dir, token="another-token") as client:
        response = client.post("/hooks/nimble/ppv", content=fixture("ppv/sample_signed.json"))
    assert response.status_code == 403


def test_an_auth_request_sent_to_the_ppv_route_is_refused(client: TestClient) -> None:
    response = _auth(client, {"ip": "203.0.113.5", "url": "/live/cam1?key=k1"}, "/hooks/nimble/ppv")
    assert (response.status_code, response.content) == (403, b'{"DenyList":{"ID":[]}}')


def test_a_sync_sent_to_the_auth_route_is_refused(client: TestClient) -> None:
    response = client.post("/hooks/nimble", content=fixture("ppv/sample_signed.json"))
    assert (response.status_code, response.content) == (403, b'{"status":403}')


def test_an_unknown_route_is_404(client: TestClient) -> None:
    assert client.post("/hooks/nimble/sync", content=b"{}").status_code == 404


BROKEN_BATCH = """
import castgate
from castgate_nimble import Nimble


class BrokenBatch(Nimble):
    name = "brokenbatch"

    def render_batch(self, batch, decisions):
        raise RuntimeError("cannot answer this batch")


@castgate.hookimpl
def castgate_register_vendors():
    return [BrokenBatch("castgate-test-push-token")]
"""


def test_a_vendor_whose_render_batch_fails_gets_400_and_the_decisions_are_logged(
    site: Site, policy_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    site.install(
        "castgate-brokenbatch",
        entry_points={"brokenbatch": "castgate_brokenbatch"},
        modules={"castgate_brokenbatch": BROKEN_BATCH},
    )
    settings = Settings(policies=(policy_dir,), disabled_plugins=OTHER_VENDORS, log_format="json")
    with TestClient(create_app(settings)) as client, caplog.at_level(logging.INFO):
        response = client.post("/hooks/brokenbatch/ppv", content=fixture("ppv/sample_signed.json"))
    assert (response.status_code, response.text) == (400, "the answer could not be rendered")
    failures = [r for r in caplog.records if "failed to answer a batch of 4 events" in r.message]
    assert len(failures) == 1
    assert [e["status"] for e in decision_logs(caplog)] == [400] * 4


# --- the shipped worked policy ---------------------------------------------------------------

WORKED_POLICY = Path(__file__).parents[3] / "policies" / "nimble"


def _link(secret: str, message: str, expires: int) -> str:
    text = f"{expires}:{message}".encode()
    mac = hmac.new(secret.encode(), text, hashlib.sha256).digest()
    return f"expires={expires}&sig={base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def test_the_worked_policy_through_the_app(monkeypatch: Any) -> None:
    key = "nimble-policy-test-key"
    monkeypatch.setenv("CASTGATE_SIGNING_KEY", key)
    valid = _link(key, "live/cam1", int(time.time()) + 3600)
    expired = _link(key, "live/cam1", 1_700_000_000)
    sync_id, puzzle = "w-1", "p-1"
    players = [
        {"id": "user-1", "ip": "192.0.2.1", "delta": 30000},
        {"id": "user-666", "ip": "192.0.2.2", "delta": 30000},
        {"id": "user-3", "ip": "192.0.2.3", "delta": 3_600_000},
    ]
    sync = {
        "ID": sync_id,
        "Puzzle": puzzle,
        "Signature": sign(sync_id, puzzle),
        "PayPerViewInfo": {
            "VHost": [
                {
                    "name": "_defaultVHost_",
                    "Application": [
                        {
                            "name": "live",
                            "Instance": [
                                {
                                    "name": "_definst_",
                                    "Stream": [{"name": "cam1", "Player": players}],
                                }
                            ],
                        }
                    ],
                }
            ]
        },
    }
    with nimble_app(WORKED_POLICY) as client:
        play = _auth(client, {"ip": "203.0.113.5", "url": f"/live/cam1/playlist.m3u8?{valid}"})
        assert (play.status_code, play.content) == (200, b'{"status":200}')
        renew = _auth(client, {"ip": "203.0.113.5", "url": f"/live/cam1/playlist.m3u8?{expired}"})
        assert (renew.status_code, renew.headers["location"]) == (
            302,
            "https://shop.example.com/renew",
        )
        radio = _auth(client, {"ip": "203.0.113.5", "url": "/radio/jazz/icecast.stream"})
        assert radio.status_code == 200
        assert _auth(client, {"ip": "203.0.113.5", "url": "/live/cam1/x.m3u8"}).status_code == 403
        response = client.post("/hooks/nimble/ppv", json=sync)
    assert response.content == b'{"DenyList":{"ID":["user-666","user-3"]}}'
