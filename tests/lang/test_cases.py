"""The language's semantics, pinned by the data-driven cases in ``cases/``."""

from __future__ import annotations

from pathlib import Path

import pytest

from castgate import PolicyFunction, Vendor
from castgate.lang.testing import find_test_files, run_test_file

CASE_FILES = find_test_files([Path(__file__).parent / "cases"])


def test_every_semantics_area_has_cases() -> None:
    names = {p.name.removesuffix(".test.yaml") for p in CASE_FILES}
    assert {
        "decision",
        "missing",
        "strings",
        "addresses",
        "windows",
        "tokens",
        "response",
        "sessions",
    } <= names


@pytest.mark.parametrize("path", CASE_FILES, ids=lambda p: p.name)
def test_cases_pass(
    path: Path, vendors: dict[str, Vendor], functions: dict[str, PolicyFunction]
) -> None:
    results = run_test_file(path, vendors=vendors, functions=functions)
    failures = [f"{r.name}:\n{r.detail}" for r in results if not r.passed]
    assert not failures, "\n\n".join(failures)
    assert len(results) >= 4
