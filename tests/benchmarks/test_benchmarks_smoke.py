"""Smoke test of benchmarks/decision_speed.py: it runs on tiny sizes, reports every number the
README promises, and castgate agreed with the hand-written floor on every event. No timing is
asserted: this machine's speed is not the code's."""

from __future__ import annotations

import json
from pathlib import Path

from benchmark_scripts import load_benchmark


def test_quick_run_reports_every_number_and_full_agreement(tmp_path: Path) -> None:
    bench = load_benchmark("decision_speed")
    out = tmp_path / "results.json"
    assert bench.main(["--quick", "--silent", "--json", str(out)]) == 0
    results = json.loads(out.read_text(encoding="utf-8"))

    assert {"machine", "method", "agreement", "cases", "compile", "targets"} <= set(results)
    assert {"cpu", "cpus", "python", "date"} <= set(results["machine"])
    agreement = results["agreement"]
    assert agreement["agreed"] is True and agreement["disagreements"] == 0
    assert agreement["events_checked"] == sum(c["events_checked"] for c in results["cases"])
    assert agreement["events_checked"] > 0

    names = [case["name"] for case in results["cases"]]
    assert names[0] == "small" and "large" in names
    assert {c["extra_rules"] for c in results["cases"] if c["rules"] > 20} == {"other", "same"}
    stat_keys = {"batch_median_ns", "batch_p99_ns", "call_median_ns", "call_p99_ns"}
    for case in results["cases"]:
        classes = case["classes"]
        # allowed and denied are reported apart, and the whole mix besides
        assert {"allowed", "denied", "mix"} <= set(classes), case["name"]
        for stats in classes.values():
            assert stats["events"] > 0
            for side in ("castgate", "floor"):
                assert stat_keys <= set(stats[side])
                assert all(stats[side][k] == stats[side][k] for k in stat_keys)  # no NaN
            assert stats["ratio_to_floor"] > 0
            assert stats["ratio_to_small"] > 0

    compiled = results["compile"]
    for key in (
        "compile_s",
        "compile_gc_paused_s",
        "parse_s",
        "check_s",
        "closures_s",
        "first_decision_s",
        "first_decision_distinct_apps_s",
    ):
        assert compiled[key] >= 0
    assert compiled["load_keys_s"] > 0 and compiled["load_cidrs_s"] > 0
    assert set(results["targets"]) == {
        "median_le_2us",
        "p99_le_5us",
        "floor_ratio_le_1_5",
        "large_ratio_le_2",
        "compile_lt_1s",
    }
    assert all(isinstance(t["met"], bool) for t in results["targets"].values())
    table = bench.markdown(results)
    assert "| small | allowed |" in table and "compile 200 rules" in table


def test_the_floor_is_the_reference_policy(tmp_path: Path) -> None:
    """Every rule of the shipped reference policy decides at least one event of the check mix,
    so the agreement check covers each branch of the hand-written floor."""
    bench = load_benchmark("decision_speed")
    case = bench.Case("small", 10, 3, bench.REFERENCE_RULES)
    data = bench.write_case(case, tmp_path, 7)
    policy = bench.compile_case(data)
    floor = bench.make_floor(data)
    maker = bench.EventMaker(data, 7)
    events = maker.timed_mix(3000) + maker.check_mix(3000)
    assert bench.check_agreement(policy, floor, events) == len(events)
    deciders = {policy.decide(e, bench.EMPTY_STATE).rule for e in events}
    assert {r.name for r in policy.rules} <= deciders
