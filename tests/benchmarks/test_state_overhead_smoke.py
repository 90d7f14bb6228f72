"""The state-overhead benchmark runs end to end on tiny sizes (no timing is asserted)."""

from __future__ import annotations

from benchmark_scripts import load_benchmark
from redis_server import require_redis


def test_the_benchmark_reports_every_figure() -> None:
    require_redis()
    results = load_benchmark("state_overhead").main(["--quick"])
    assert set(results) == {
        "decide",
        "decide+record",
        "redis ping (1 round trip)",
        "redis, policy reads sessions (snapshot + record)",
        "redis, policy reads no sessions (record only)",
        "summary",
    }
    for name, figures in results.items():
        if name != "summary":
            assert figures["median_us"] > 0 and figures["p99_us"] >= figures["median_us"]
