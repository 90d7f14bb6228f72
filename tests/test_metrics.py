"""``/metrics`` through the real app: decisions by bounded labels, latency, errors, reloads,
state health; and the decision log and process log the same requests produce."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from distributions import Site
from hardening.castgate_process import castgate_serve
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from castgate.app import create_app
from castgate.settings import Settings

BUILT_IN_VENDORS = frozenset({"nginx_rtmp", "livepeer", "antmedia", "kls", "nimble"})
POLICY = """
rule keyed {
  on publish from testcam
  allow if params.key == "k1"
}
rule viewers {
  on play
  allow
}
"""


@pytest.fixture
def policy_dir(tmp_path: Path, site: Site) -> Path:
    site.install_testcam()
    directory = tmp_path / "policies"
    directory.mkdir()
    (directory / "main.policy").write_text(POLICY)
    return directory


def settings_for(policy_dir: Path, **changes: Any) -> Settings:
    return Settings(
        policies=(policy_dir,), disabled_plugins=BUILT_IN_VENDORS, log_format="json", **changes
    )


@pytest.fixture
def client(policy_dir: Path, tmp_path: Path) -> Iterator[TestClient]:
    settings = settings_for(
        policy_dir, decision_log=tmp_path / "decisions.log", decision_log_flush=0.0
    )
    with TestClient(create_app(settings)) as started:
        yield started


def samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = client.get("/metrics").text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def publish(client: TestClient, stream: str, key: str) -> int:
    body = {"action": "publish", "stream": stream, "params": {"key": key}}
    return client.post("/hooks/testcam", json=body).status_code


def test_decisions_are_counted_by_vendor_action_effect_and_rule(client: TestClient) -> None:
    assert publish(client, "secret-stream-name", "k1") == 200
    assert publish(client, "other", "nope") == 403
    assert publish(client, "third", "nope") == 403
    found = samples(client)
    labels = (("action", "publish"), ("vendor", "testcam"))
    allowed = (*labels[:1], ("effect", "allow"), ("failed", "false"), ("rule", "keyed"), labels[1])
    denied = (*labels[:1], ("effect", "deny"), ("failed", "false"), ("rule", ""), labels[1])
    assert found[("castgate_decisions_total", allowed)] == 1
    assert found[("castgate_decisions_total", denied)] == 2
    assert found[("castgate_decision_seconds_count", (("vendor", "testcam"),))] == 3


def test_no_label_carries_a_stream_name_a_key_or_an_address(client: TestClient) -> None:
    publish(client, "secret-stream-name", "k1")
    client.post("/hooks/testcam", json={"action": "play", "stream": "s", "ip": "203.0.113.50"})
    text = client.get("/metrics").text
    assert "secret-stream-name" not in text
    assert "k1" not in text.replace("keyed", "")
    assert "203.0.113.50" not in text


def test_malformed_requests_and_plugin_failures_are_counted_as_errors(client: TestClient) -> None:
    client.post("/hooks/testcam", content=b"not json")
    client.post("/hooks/testcam", json={"stream": "fail-parse"})
    client.post("/hooks/testcam", json={"action": "play", "stream": "fail-render"})
    client.post("/hooks/testcam", json={"action": "play", "stream": "fail-observe"})
    found = samples(client)

    def errors(kind: str) -> float:
        return found[("castgate_errors_total", (("kind", kind),))]

    assert errors("malformed") == 2  # the unreadable body and the one parse crashed on
    assert errors("plugin_parse") == 1
    assert errors("plugin_render") == 1
    assert errors("observer") == 1
    assert errors("state") == errors("dependency") == 0


def test_memory_state_is_reported_up(client: TestClient) -> None:
    assert samples(client)[("castgate_state_up", ())] == 1


def test_reloads_are_counted_by_result(client: TestClient, policy_dir: Path) -> None:
    (policy_dir / "main.policy").write_text(POLICY + "rule broken { on plaay allow }\n")
    assert eventually(lambda: client.get("/readyz").json()["reload_error"] != "")
    (policy_dir / "main.policy").write_text(POLICY.replace("k1", "k2"))
    assert eventually(lambda: publish(client, "s", "k2") == 200)
    found = samples(client)
    assert found[("castgate_policy_reloads_total", (("result", "refused"),))] == 1
    assert found[("castgate_policy_reloads_total", (("result", "ok"),))] == 1


def eventually(check: Callable[[], bool], seconds: float = 10.0) -> bool:
    """Whether ``check`` holds within ``seconds`` (the reload watcher polls every 2 s)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def test_the_decision_log_gets_one_redacted_line_per_decision(
    client: TestClient, tmp_path: Path
) -> None:
    body = {"action": "publish", "stream": "cam1", "params": {"key": "k1", "token": "t0p"}}
    assert client.post("/hooks/testcam", json=body).status_code == 200
    client.post("/hooks/testcam", content=b"not json")
    first, second = (
        json.loads(line) for line in (tmp_path / "decisions.log").read_text().splitlines()
    )
    assert (first["vendor"], first["action"], first["effect"], first["rule"]) == (
        "testcam",
        "publish",
        "allow",
        "keyed",
    )
    assert first["event"]["params"] == {"key": "<redacted>", "token": "<redacted>"}
    assert first["policy"] == client.get("/readyz").json()["policy"]["version"]
    assert second["malformed"] is True
    assert second["reason"] == "malformed request: body is not JSON"


@pytest.mark.parametrize(("setting", "expected"), [("info", 1), ("debug", 0), ("off", 0)])
def test_the_process_log_line_per_decision_follows_its_level(
    policy_dir: Path, caplog: pytest.LogCaptureFixture, setting: str, expected: int
) -> None:
    caplog.set_level(logging.INFO, logger="castgate.decisions")
    with TestClient(create_app(settings_for(policy_dir, log_decisions=setting))) as client:
        publish(client, "cam1", "k1")
    assert [r.getMessage() for r in caplog.records if r.name == "castgate.decisions"] == [
        "decision"
    ] * expected


def test_with_several_workers_every_scrape_reports_all_of_them(tmp_path: Path) -> None:
    """Each worker counts in the shared multiprocess directory ``castgate serve`` sets up, so a
    scrape answered by any worker reports every worker's decisions."""
    policy = tmp_path / "viewers.policy"
    policy.write_text("rule viewers { on play allow }\n")
    with castgate_serve(tmp_path, "--policies", str(policy), "--workers", "2") as served:
        body = (
            "app=live&flashver=&swfurl=&tcurl=rtmp://127.0.0.1/live&pageurl="
            "&addr=127.0.0.1&clientid={}&call=play&name=cam1&start=-2&duration=0&reset=0"
        )
        headers = {"content-type": "application/x-www-form-urlencoded"}
        for number in range(30):
            answer = httpx.post(
                f"{served.url}/hooks/nginx_rtmp", content=body.format(number), headers=headers
            )
            assert answer.status_code == 200
        totals = []
        for _ in range(6):
            text = httpx.get(f"{served.url}/metrics").text
            totals.append(
                sum(
                    sample.value
                    for family in text_string_to_metric_families(text)
                    for sample in family.samples
                    if sample.name == "castgate_decisions_total"
                )
            )
    assert totals == [30] * 6
