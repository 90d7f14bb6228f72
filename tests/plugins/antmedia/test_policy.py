"""The worked policy in policies/antmedia: its own tests, its form, and AMS requests against it."""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from castgate.cli import main

from .support import gate

POLICY = Path(__file__).parents[3] / "policies" / "antmedia"
TICKET_KEY = "policy-test-ticket-key-0123456789abcdef"


@pytest.fixture(autouse=True)
def _logging(isolated_logging: None) -> None:
    """The CLI verbs configure logging; keep that from leaking into other tests."""


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_the_shipped_cases_pass(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(capsys, "test", str(POLICY))
    assert code == 0, out
    assert out.rstrip().endswith(" passed, 0 failed")
    assert int(out.split()[0]) >= 20


def test_it_checks_and_is_formatted(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CASTGATE_AMS_TICKET_KEY", TICKET_KEY)
    code, out = _run(capsys, "check", str(POLICY))
    assert code == 0, out
    assert out.startswith("ok: 7 rules in 1 files")
    code, out = _run(capsys, "fmt", "--check", str(POLICY))
    assert code == 0, out


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    directory = tmp_path_factory.mktemp("antmedia")
    for name in ("streams.policy", "publish-tokens.txt", "subscribers.txt"):
        shutil.copy(POLICY / name, directory)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CASTGATE_AMS_TICKET_KEY", TICKET_KEY)
        with gate(directory) as started:
            yield started


def _decisions(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [
        record.fields  # type: ignore[attr-defined]
        for record in caplog.records
        if record.name == "castgate.decisions"
    ]


def _publish(client: TestClient, stream: str, token: str) -> tuple[int, str]:
    body = {
        "appName": "LiveApp",
        "name": stream,
        "streamId": stream,
        "mode": "live",
        "queryParams": f"{{token={token}, tier=gold}}",
    }
    response = client.post("/hooks/antmedia/publish", content=json.dumps(body))
    return response.status_code, response.text


def _event(client: TestClient, action: str, stream: str, stamp: int) -> int:
    body = {"id": stream, "action": action, "app": "LiveApp", "timestamp": str(stamp)}
    return client.post("/hooks/antmedia", content=json.dumps(body)).status_code


def _ams_clock(offset: float = 0.0) -> int:
    """AMS's timestamp for a moment ``offset`` seconds from now (AMS and castgate share NTP)."""
    return int((time.time() + offset) * 1000)


def test_a_publish_session_from_authentication_to_its_end(client: TestClient) -> None:
    assert _publish(client, "studio-1", "t0k3n-5f1c9a") == (403, "no rule allowed this request")
    assert _publish(client, "studio-1", "t0k3n-88d2e4") == (200, "")
    assert _event(client, "liveStreamStarted", "studio-1", _ams_clock()) == 200
    # the same session: a second encoder with the right token is refused while it is live
    assert _publish(client, "studio-1", "t0k3n-88d2e4") == (403, "stream already live")
    assert _event(client, "liveStreamEnded", "studio-1", _ams_clock()) == 200
    time.sleep(0.01)
    assert _publish(client, "studio-1", "t0k3n-88d2e4") == (200, "")
    assert _publish(client, "studio-1", "t0k3n-88d2e4") == (403, "stream already live")
    assert _event(client, "liveStreamEnded", "studio-1", _ams_clock()) == 200


def test_a_stream_live_before_castgate_started_is_counted_from_its_start_event(
    client: TestClient,
) -> None:
    assert _event(client, "liveStreamEnded", "studio-1", _ams_clock()) == 200
    time.sleep(0.01)
    assert _event(client, "liveStreamStarted", "studio-1", _ams_clock()) == 200
    assert _publish(client, "studio-1", "t0k3n-88d2e4") == (403, "stream already live")
    assert _event(client, "liveStreamEnded", "studio-1", _ams_clock()) == 200


def test_an_end_that_overtakes_its_start_leaves_no_session(client: TestClient) -> None:
    # AMS delivers on unordered workers; its timestamps put the two back in order.
    assert _event(client, "liveStreamEnded", "stream1", _ams_clock(-1)) == 200
    assert _event(client, "liveStreamStarted", "stream1", _ams_clock(-2)) == 200
    assert _publish(client, "stream1", "t0k3n-5f1c9a") == (200, "")
    assert _event(client, "liveStreamEnded", "stream1", _ams_clock()) == 200


def test_a_member_from_the_site_plays(client: TestClient) -> None:
    body = {
        "streamId": "stream1",
        "mode": "play",
        "appName": "LiveApp",
        "origin": "https://example.com",
        "subscriberId": "alice",
    }
    assert client.post("/hooks/antmedia/play", content=json.dumps(body)).status_code == 200
    body["origin"] = "https://evil.example.net"
    assert client.post("/hooks/antmedia/play", content=json.dumps(body)).status_code == 403


def test_a_stream_that_bypassed_authentication_is_acknowledged_and_flagged(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="castgate.decisions")
    form = b"id=pirate-1&action=liveStreamStarted&app=LiveApp&timestamp=1795424400123"
    response = client.post(
        "/hooks/antmedia",
        content=form,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert (response.status_code, response.content) == (200, b"")
    logged = _decisions(caplog)[-1]
    assert (logged["action"], logged["stream"], logged["effect"]) == (
        "publish_started",
        "pirate-1",
        "ack",
    )
    assert logged["rule"] == "unkeyed_stream_went_live"
