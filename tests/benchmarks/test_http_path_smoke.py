"""Smoke test of benchmarks/http_path.py: a ``--quick`` run starts every server, each of them
answered every body of its mix with the status the policy gives it (allowed 200, denied 403,
notifications 200) in every phase, and the report carries every figure the README describes.
No timing is asserted: this machine's speed is not the code's."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from typing import Any

import pytest
from benchmark_scripts import load_benchmark
from dependencies import unavailable
from redis_server import require_redis

SERVERS = {"bare", "nginx_rtmp, memory", "livepeer, memory", "nginx_rtmp, redis", "livepeer, redis"}
LATENCY_KEYS = {"p50", "p90", "p99", "max"}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    """One quick run for every test here: the JSON document and the Markdown report."""
    require_redis()
    out = tmp_path_factory.mktemp("http_path") / "results.json"
    report = io.StringIO()
    with contextlib.redirect_stdout(report):
        assert load_benchmark("http_path").main(["--quick", "--json", str(out)]) == 0
    return json.loads(out.read_text(encoding="utf-8")), report.getvalue()


def _expected_status(server: str, label: str) -> int:
    if server == "bare" or label.startswith(("allowed", "done")):
        return 200
    assert label.startswith("denied"), label
    return 403


def test_every_body_got_the_status_the_policy_gives_it(run: tuple[dict[str, Any], str]) -> None:
    results = run[0]["results"]
    assert set(results) == SERVERS
    for server, result in results.items():
        labels = set(result["mix"])
        if server != "bare":
            assert any(label.startswith("allowed") for label in labels), server
            assert any(label.startswith("denied") for label in labels), server
        for phase in (result["each_once"], result["half"]["statuses"]):
            assert set(phase) == labels, server
            for label, entry in phase.items():
                status = _expected_status(server, label)
                assert entry["expected"] == status, (server, label)
                # JSON object keys are strings; every answer had exactly that status.
                assert list(entry["answered"]) == [str(status)], (server, label, entry)
        assert result["half"]["errors"] == {}, server


def test_no_server_logged_an_error(run: tuple[dict[str, Any], str]) -> None:
    """A hook answered 200 can still have lost its session record (Redis refusing a burst of
    connections did exactly that); every error a server logs is counted."""
    for server, result in run[0]["results"].items():
        assert result["errors_logged"] == {"count": 0, "first": []}, server


def test_the_open_loop_run_reports_its_latencies(run: tuple[dict[str, Any], str]) -> None:
    for server, result in run[0]["results"].items():
        half = result["half"]
        assert half["sent"] > 0 and half["rate_per_s"] > 0, server
        for figures in (half["latency_ms"], half["client_lag_ms"]):
            assert set(figures) == LATENCY_KEYS
            assert 0 <= figures["p50"] <= figures["p90"] <= figures["p99"] <= figures["max"]


def test_wrk_saturates_each_server_and_counts_the_expected_statuses(
    run: tuple[dict[str, Any], str],
) -> None:
    if shutil.which("wrk") is None:
        unavailable("needs wrk (Debian package wrk) for the saturation runs")
    document, report = run
    for server, result in document["results"].items():
        saturation = result["saturation"]
        assert saturation["statuses_as_expected"] is True, (server, saturation["statuses"])
        assert set(saturation["errors"].values()) == {0}, server
        assert set(saturation["statuses"]) == ({"200"} if server == "bare" else {"200", "403"})
        assert saturation["requests_per_s"] > 0 and saturation["server_cpu_us"] > 0
        assert set(saturation["latency_ms"]) == LATENCY_KEYS
        assert result["share_of_bare"] > 0 and result["share_of_bare_by_cpu"] > 0
        assert ("redis_cpu_us" in saturation) == (result["state"] == "redis")
    assert set(document["targets"]) == {
        "memory_throughput_ge_80pct_of_bare",
        "memory_p99_le_5ms_at_half_saturation",
        "redis_p99_le_5ms_at_half_saturation",
    }
    assert all(isinstance(target["met"], bool) for target in document["targets"].values())
    assert "| server | state | req/s | % of bare |" in report


def test_the_report_says_every_status_was_as_expected(run: tuple[dict[str, Any], str]) -> None:
    document, report = run
    assert {"cpu", "cpus", "python", "uvicorn", "http_parser", "pinning", "date"} <= set(
        document["machine"]
    )
    assert "Half of saturation (open loop" in report
    assert "UNEXPECTED" not in report
    assert report.count("as expected") >= 2 * len(SERVERS)
