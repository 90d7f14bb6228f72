"""The checker's products beyond its diagnostics: what it prepares for the compiler."""

from __future__ import annotations

from pathlib import Path

import pytest

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


def _diagnostics(text: str) -> list[tuple[str, int, int, str]]:
    checked = check_policies(
        [(parse_policy(text, "p.policy"), Path())], vendors={}, functions={}, env={}
    )
    return [(d.code.value, d.line, d.column, d.message) for d in checked.diagnostics]


@pytest.mark.parametrize(
    ("argument", "found"), [("{a: 1}", "object"), ("10.0.0.0/8", "ip"), ("[1, 2]", "list")]
)
def test_a_load_function_given_no_text_is_one_type_error_not_a_crash(
    argument: str, found: str
) -> None:
    # `lines` ran with the dict, address or list itself and raised TypeError.
    text = f"let k = lines({argument})\nrule r {{ on publish  allow if stream.name in k }}"
    assert _diagnostics(text) == [("E301", 1, 15, f"`lines` needs a string here, not a {found}")]


def test_a_time_window_in_a_list_tested_with_in_is_a_type_error_not_a_crash() -> None:
    # The list was taken for addresses and IpSet raised AttributeError on the window.
    text = (
        'let showtime = weekdays mon..fri 06:00..23:30 "UTC"\n'
        "rule r { on publish  allow if client.ip in [showtime, 10.0.0.0/8] }"
    )
    assert _diagnostics(text) == [
        (
            "E301",
            2,
            44,
            "`in` looks through a list of values or addresses; this one holds a time window or "
            "a set",
        )
    ]


def test_the_constant_windows_of_sessions_denials_are_collected_once_each() -> None:
    text = (
        "let w = 10s\n"
        'rule a { on publish  deny "x" if sessions.denials(client.ip, 1m) > 3 or '
        "sessions.denials(params.key, w) > 1 }\n"
        'rule b { on play  deny "y" if sessions.denials(client.ip, 60s) > 3 }\n'
        # Read from the event: the shared state counts it once asked (a second round trip).
        'rule c { on play  deny "z" if sessions.denials(client.ip, params.window) > 3 }\n'
        'rule d { on play  deny "z" if sessions.viewers(stream.name) > 3 }\n'
    )
    checked = check_policies(
        [(parse_policy(text, "p.policy"), Path())], vendors={}, functions={}, env={}
    )
    assert not checked.diagnostics
    assert checked.denial_windows == (10.0, 60.0)
