"""The state-overhead benchmark runs end to end on tiny sizes (no timing is asserted)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from redis_server import require_redis

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "state_overhead.py"


def test_the_benchmark_reports_every_figure() -> None:
    require_redis()
    spec = importlib.util.spec_from_file_location("state_overhead", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["state_overhead"] = module
    spec.loader.exec_module(module)
    results = module.main(["--quick"])
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
