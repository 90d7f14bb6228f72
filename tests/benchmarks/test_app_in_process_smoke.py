"""Smoke test of benchmarks/app_in_process.py: a ``--quick`` run serves every request of both
vendors' mixes with the status the reference policy gives it (the script checks each answer and
exits non-zero otherwise) and reports a figure per vendor. No timing is asserted.

Run in a subprocess: the script configures the process's logging as ``castgate serve`` does."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "app_in_process.py"


def test_a_quick_run_answers_both_mixes_and_reports_each_vendor() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    reported = re.findall(r"^(\w+): ([0-9.]+) µs of CPU per request", done.stdout, re.MULTILINE)
    assert [vendor for vendor, _ in reported] == ["nginx_rtmp", "livepeer"], done.stdout
    assert all(float(figure) > 0 for _, figure in reported)
