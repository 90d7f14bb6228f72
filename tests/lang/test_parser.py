"""The parser never crashes: any text yields a syntax tree or a PolicyError with a position."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from castgate.lang import compile_sources
from castgate.lang.errors import PolicyError
from castgate.lang.parser import duration_seconds, parse_policy

# Fragments of real policies: random sequences of them reach deep parser states far more often
# than random characters do.
FRAGMENTS = [
    "rule",
    "let",
    "r",
    "x",
    "=",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ",",
    ":",
    ".",
    "..",
    "on",
    "from",
    "app",
    "allow",
    "deny",
    "with",
    "if",
    "and",
    "or",
    "not",
    "in",
    "matches",
    "==",
    "!=",
    "<",
    ">=",
    "+",
    "publish",
    "play",
    "params.key",
    "client.ip",
    "now",
    '"s"',
    "'q'",
    "10.0.0.0/8",
    "::1",
    "30s",
    "1h30m",
    "42",
    "-1.5",
    "true",
    "weekdays",
    "daily",
    "dates",
    "mon",
    "..",
    "fri",
    "06:00",
    "2026-12-24",
    '"UTC"',
    "#c\n",
    "\n",
    " ",
    "\\",
    '"',
    "@",
]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_parses_or_reports(text: str) -> None:
    try:
        parse_policy(text, "fuzz.policy")
    except PolicyError as err:
        assert err.diagnostics
        for diagnostic in err.diagnostics:
            assert diagnostic.line >= 1 and diagnostic.column >= 1
            assert diagnostic.render().startswith("fuzz.policy:")


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=40).map(" ".join))
def test_token_soup_compiles_or_reports(text: str) -> None:
    try:
        compile_sources([("soup.policy", text, Path())], vendors={}, functions={}, env={})
    except PolicyError as err:
        assert all(d.code.value.startswith("E") for d in err.diagnostics)


def test_keywords_are_field_names_after_a_dot() -> None:
    policy = parse_policy(
        'rule r { on play allow if params.from == "x" and params.on == "y" }', "k.policy"
    )
    assert [item.name for item in policy.items] == ["r"]


def test_comments_are_kept_with_positions() -> None:
    policy = parse_policy("# head\nlet a = 1  # tail\n", "c.policy")
    assert [(c.span.line, c.span.column, c.text) for c in policy.comments] == [
        (1, 1, "# head"),
        (2, 12, "# tail"),
    ]


def test_every_broken_statement_is_reported() -> None:
    source = (
        "rule a { on play alow }\nrule b { on play allow if x = 1 }\nrule c { on play allow }\n"
    )
    try:
        parse_policy(source, "b.policy")
    except PolicyError as err:
        assert [d.line for d in err.diagnostics] == [1, 2]
    else:
        raise AssertionError("broken policy parsed")


def test_duration_literals() -> None:
    assert duration_seconds("1h30m") == 5400
    assert duration_seconds("500ms") == 0.5
    assert duration_seconds("1d") == 86400


@pytest.mark.parametrize("depth", [150, 600, 5000])
@pytest.mark.parametrize(
    "shape",
    [
        lambda n: "let x = " + " or ".join(["has(params.a)"] * n),
        lambda n: "let x = " + "not " * n + "has(params.a)",
        lambda n: "let x = " + "[" * n + "]" * n,
    ],
    ids=["or-chain", "not-chain", "lists"],
)
def test_deep_nesting_is_a_policy_error(depth: int, shape: Callable[[int], str]) -> None:
    with pytest.raises(PolicyError) as raised:
        compile_sources([("deep.policy", shape(depth), Path())], vendors={}, functions={}, env={})
    assert "nested" in raised.value.diagnostics[0].message


def test_redundant_parentheses_do_not_nest() -> None:
    policy = compile_sources(
        [
            (
                "parens.policy",
                "rule r { on play  allow if " + "(" * 5000 + "true" + ")" * 5000 + " }",
                Path(),
            )
        ],
        vendors={},
        functions={},
        env={},
    )
    assert [rule.name for rule in policy.rules] == ["r"]
