"""Error messages, pinned by golden files: ``golden/NAME.policy`` must report ``NAME.expected``.

Regenerate after a deliberate change with ``CASTGATE_UPDATE_GOLDEN=1 pytest tests/lang``, then
read the diff: these messages are the interface a new user meets first.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from castgate import PolicyFunction, Vendor
from castgate.lang import compile_sources
from castgate.lang.errors import PolicyError

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("policy", sorted(GOLDEN.glob("*.policy")), ids=lambda p: p.stem)
def test_error_report_matches_golden(
    policy: Path, vendors: dict[str, Vendor], functions: dict[str, PolicyFunction]
) -> None:
    with pytest.raises(PolicyError) as raised:
        compile_sources(
            [(policy.name, policy.read_text(encoding="utf-8"), GOLDEN)],
            vendors=vendors,
            functions=functions,
            env={},
        )
    report = raised.value.report() + "\n"
    expected = policy.with_suffix(".expected")
    if os.environ.get("CASTGATE_UPDATE_GOLDEN"):
        expected.write_text(report, encoding="utf-8")
    assert report == expected.read_text(encoding="utf-8")


def test_errors_are_sorted_by_position(
    vendors: dict[str, Vendor], functions: dict[str, PolicyFunction]
) -> None:
    source = (GOLDEN / "names.policy").read_text(encoding="utf-8")
    with pytest.raises(PolicyError) as raised:
        compile_sources(
            [("names.policy", source, GOLDEN)], vendors=vendors, functions=functions, env={}
        )
    positions = [(d.line, d.column) for d in raised.value.diagnostics]
    assert positions == sorted(positions)
    assert len(positions) >= 7


def test_secret_values_never_appear_in_reports(
    vendors: dict[str, Vendor], functions: dict[str, PolicyFunction]
) -> None:
    source = 'let key = env("SIGNING")\nrule r { on play  allow if params.sig == key }\n'
    with pytest.raises(PolicyError) as raised:
        compile_sources(
            [("s.policy", source, GOLDEN)],
            vendors=vendors,
            functions=functions,
            env={"SIGNING": "hunter2-very-secret"},
        )
    assert "E308" in raised.value.report()
    assert "hunter2" not in raised.value.report()
