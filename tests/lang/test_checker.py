"""The checker's products beyond its diagnostics: what it prepares for the compiler."""

from __future__ import annotations

from pathlib import Path

from castgate.lang.checker import check_policies
from castgate.lang.parser import parse_policy


def test_rules_testing_one_let_list_share_one_set() -> None:
    text = "let studio = [10.20.0.0/16, 2001:db8:10::/48]\n" + "\n".join(
        f"rule r{i} {{ on publish  allow if client.ip in studio }}" for i in range(3)
    )
    checked = check_policies(
        [(parse_policy(text, "p.policy"), Path())], vendors={}, functions={}, env={}
    )
    assert not checked.diagnostics
    prepared = {id(value) for value in checked.notes.prepared.values()}
    assert len(checked.notes.prepared) == 3
    assert len(prepared) == 1
