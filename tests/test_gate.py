"""Failure modes: a policy function whose upstream is slow, down or broken fails the decision
within its deadline, closed by default and open where the operator says; the decision log and
the metrics say it was a failure. The upstream is a real HTTP server on loopback."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from distributions import Site
from served import served
from starlette.testclient import TestClient

from castgate.app import create_app
from castgate.settings import Settings, parse_fail_open

BUILT_IN_VENDORS = frozenset({"nginx_rtmp", "livepeer", "antmedia", "kls", "nimble"})
POLICY = """
rule banned_keys {
  on play from signedcam
  deny "banned" if upstream.tier(params.key) == "banned"
}
rule gold_viewers {
  on play from signedcam
  allow if upstream.tier(params.key) == "gold"
}
rule house_stream {
  on play from signedcam
  allow if stream.name == "house"
}
rule record_ends {
  on publish_done from signedcam
  deny "not gold" if upstream.tier(params.key) != "gold"
}
"""


class Upstream(BaseHTTPRequestHandler):
    """``/tier/<key>``: ``gold`` or ``plain``; keys starting ``slow`` answer after 2 s, keys
    starting ``broken`` with a 500."""

    def do_GET(self) -> None:
        key = self.path.rsplit("/", 1)[-1]
        if key.startswith("slow"):
            time.sleep(2)
        status, text = (500, "down") if key.startswith("broken") else (200, key.split("-")[-1])
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the test output to castgate's own log


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def policy_dir(tmp_path: Path, site: Site, upstream: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    site.install_signedcam()
    monkeypatch.setenv("SIGNEDCAM_UPSTREAM", upstream)
    directory = tmp_path / "policies"
    directory.mkdir()
    (directory / "main.policy").write_text(POLICY)
    return directory


def client_for(policy_dir: Path, tmp_path: Path, **changes: Any) -> TestClient:
    settings = Settings(
        policies=(policy_dir,),
        disabled_plugins=BUILT_IN_VENDORS,
        log_format="json",
        decision_log=tmp_path / "decisions.log",
        decision_log_flush=0.0,
        **changes,
    )
    return TestClient(create_app(settings), client=("192.0.2.1", 1))


def play(client: TestClient, key: str, stream: str = "s") -> dict[str, Any]:
    body = {"action": "play", "stream": stream, "key": key}
    response = client.post("/hooks/signedcam", json=body)
    assert response.status_code == 200
    answer: dict[str, Any] = response.json()
    return answer


def logged(tmp_path: Path) -> list[dict[str, Any]]:
    lines = (tmp_path / "decisions.log").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_a_function_that_answers_in_time_decides(policy_dir: Path, tmp_path: Path) -> None:
    with client_for(policy_dir, tmp_path) as client:
        assert play(client, "k-gold") == {"allowed": True, "reason": "allowed by rule gold_viewers"}
        assert play(client, "k-plain")["allowed"] is False
    assert [record.get("failed", False) for record in logged(tmp_path)] == [False, False]


def test_a_slow_upstream_fails_closed_at_the_deadline(policy_dir: Path, tmp_path: Path) -> None:
    with client_for(policy_dir, tmp_path) as client:
        started = time.monotonic()
        answer = play(client, "slow-gold")
        waited = time.monotonic() - started
        metrics = client.get("/metrics").text
    assert answer == {
        "allowed": False,
        "reason": "dependency failed: upstream.tier() missed its deadline of 300 ms",
    }
    # Not a timing assertion on speed: the upstream takes 2 s, so an answer sooner than that
    # shows the deadline cut it short.
    assert waited < 2
    (record,) = logged(tmp_path)
    assert record["failed"] is True
    assert record["effect"] == "deny"
    assert 'castgate_errors_total{kind="dependency"} 1.0' in metrics
    assert 'failed="true"' in metrics


def test_a_broken_upstream_fails_closed(policy_dir: Path, tmp_path: Path) -> None:
    with client_for(policy_dir, tmp_path) as client:
        answer = play(client, "broken-gold")
    assert answer == {
        "allowed": False,
        "reason": "dependency failed: upstream.tier() failed: HTTPStatusError",
    }


def test_fail_open_decides_without_the_failed_call_for_the_listed_pairs_only(
    policy_dir: Path, tmp_path: Path
) -> None:
    opened = parse_fail_open("signedcam:play")
    with client_for(policy_dir, tmp_path, fail_open=opened) as client:
        # The other rules still decide: a rule that needs no upstream admits...
        house = play(client, "slow-banned", stream="house")
        # ...and the failed call grants nothing by itself.
        gold = play(client, "slow-gold")
        done = client.post(
            "/hooks/signedcam", json={"action": "publish_done", "stream": "s", "key": "broken"}
        )
    assert house == {
        "allowed": True,
        "reason": "allowed by rule house_stream (dependency failed: upstream.tier() missed its "
        "deadline of 300 ms; decided without it)",
    }
    assert gold["allowed"] is False
    assert done.status_code == 200  # a notification is acknowledged either way
    first, second, third = logged(tmp_path)
    assert (first["effect"], first["rule"], first["failed"]) == ("allow", "house_stream", True)
    assert (second["effect"], second["failed"]) == ("deny", True)
    assert (third["effect"], third["failed"]) == ("ack", True)


def test_without_fail_open_the_failed_call_denies_even_what_other_rules_allow(
    policy_dir: Path, tmp_path: Path
) -> None:
    with client_for(policy_dir, tmp_path) as client:
        answer = play(client, "slow-x", stream="house")
    assert answer["allowed"] is False
    assert answer["reason"].startswith("dependency failed: upstream.tier()")


def test_the_event_loop_keeps_serving_while_a_call_waits_for_its_deadline(
    policy_dir: Path, tmp_path: Path
) -> None:
    settings = Settings(
        policies=(policy_dir,), disabled_plugins=BUILT_IN_VENDORS, log_format="json"
    )
    with served(create_app(settings)) as base:
        waiting = threading.Thread(
            target=httpx.post,
            args=(f"{base}/hooks/signedcam",),
            kwargs={"json": {"action": "play", "stream": "s", "key": "slow-x"}, "timeout": 10},
        )
        waiting.start()
        time.sleep(0.1)  # the slow decision is now waiting on its upstream
        health = httpx.get(f"{base}/healthz", timeout=10)
        answered_during_the_wait = waiting.is_alive()
        waiting.join()
    assert health.status_code == 200
    # The upstream takes 2 s and the deadline is 300 ms: /healthz answered while the decision
    # was still waiting shows the loop was free.
    assert answered_during_the_wait


def test_calls_still_stuck_upstream_do_not_break_later_decisions(
    policy_dir: Path, tmp_path: Path
) -> None:
    with client_for(policy_dir, tmp_path) as client:
        slow = [play(client, "slow-x") for _ in range(3)]
        fast = play(client, "k-gold")
    assert all(answer["allowed"] is False for answer in slow)
    assert fast["allowed"] is True
