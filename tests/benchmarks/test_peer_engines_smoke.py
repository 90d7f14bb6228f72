"""Smoke test of benchmarks/peer_engines.py: on tiny sizes it loads every peer engine, every one of
them allows exactly what castgate allows, and the report has every number the README promises.
No timing is asserted: this machine's speed is not the code's.

The script runs in a subprocess: rego-cpp has to be loaded before castgate's google-re2
(benchmarks/peers/__init__.py says why), and this process imported castgate long ago.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "peer_engines.py"
PEERS = {
    "Cedar",
    "CEL (cel-rust)",
    "CEL (cel-python)",
    "OPA Rego (regopy)",
    "OPA Rego (regorus)",
    "Casbin",
    "Oso Polar",
    "py-abac",
    "Vakt",
}
STAT_KEYS = {"batch_median_ns", "batch_p99_ns", "call_median_ns", "call_p99_ns", "events"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _run(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path, str]:
    out = tmp_path_factory.mktemp("peers")
    report = _run(
        "--quick", "--silent", "--json", str(out / "r.json"), "--plot", str(out / "p.png")
    )
    return json.loads((out / "r.json").read_text(encoding="utf-8")), out, report


def test_every_peer_is_installed_and_measured(quick_run: tuple[dict, Path, str]) -> None:
    results, _, _ = quick_run
    assert results["engines"]["skipped"] == []
    measured = {engine["name"] for engine in results["engines"]["measured"]}
    assert measured == PEERS
    for engine in results["engines"]["measured"]:
        assert engine["version"] and engine["precomputed"]


def test_every_engine_agreed_with_castgate(quick_run: tuple[dict, Path, str]) -> None:
    results, _, report = quick_run
    agreement = results["agreement"]
    assert agreement["agreed"] is True and agreement["disagreements"] == 0
    for case in results["cases"]:
        for engine in case["engines"]:
            if engine["capped"] and engine["probe_ns"] is None:
                continue  # beyond the engine's limits for this size: never loaded
            timed_events = sum(stats["events"] for stats in engine["classes"].values())
            # A timed engine was checked on every timed event, one capped as slow on its probe.
            assert engine["events_checked"] >= max(1, timed_events), (case["name"], engine)
    assert "agreement: every engine allowed exactly what castgate allowed" in report


def test_the_report_has_every_number(quick_run: tuple[dict, Path, str]) -> None:
    results, _, _ = quick_run
    assert {"machine", "method", "engines", "agreement", "cases", "targets"} <= set(results)
    assert {"cpu", "cpus", "python", "date"} <= set(results["machine"])
    cases = results["cases"]
    assert cases[0]["name"] == "small"
    small = cases[0]
    scaled = {("keys", c["keys"] > small["keys"]) for c in cases[1:]}
    scaled |= {("cidrs", c["cidrs"] > small["cidrs"]) for c in cases[1:]}
    scaled |= {("rules", c["rules"] > small["rules"]) for c in cases[1:]}
    assert {("keys", True), ("cidrs", True), ("rules", True)} <= scaled
    for case in cases:
        engines = {engine["name"]: engine for engine in case["engines"]}
        assert set(engines) == {"castgate", "floor"} | PEERS
        assert engines["castgate"]["timed"] and engines["floor"]["timed"]
        for engine in engines.values():
            assert engine["load_s"] is None or engine["load_s"] >= 0
            if not engine["timed"]:
                assert engine["capped"] and not engine["classes"], engine
                continue
            assert set(engine["classes"]) == {"allowed", "denied"}, engine["name"]
            for stats in engine["classes"].values():
                assert set(stats) >= STAT_KEYS
                assert all(stats[k] == stats[k] for k in STAT_KEYS)  # no NaN
                assert stats["vs_castgate"] > 0
    targets = results["targets"]
    assert set(targets) == {"median_le_2us", "floor_ratio_le_1_5", "peers_at_least_10x"}
    assert all(isinstance(t["met"], bool) for t in targets.values())
    assert set(targets["peers_at_least_10x"]["per_engine"]) == PEERS


def test_markdown_and_plot_come_from_the_json(quick_run: tuple[dict, Path, str]) -> None:
    _, out, _ = quick_run
    assert (out / "p.png").read_bytes()[:8] == PNG_MAGIC
    tables = _run("--markdown", str(out / "r.json"), "--plot", str(out / "again.png"))
    assert "| castgate | " in tables and "| Cedar | " in tables
    assert "| compile or load (s) |" in tables
    assert (out / "again.png").read_bytes()[:8] == PNG_MAGIC
