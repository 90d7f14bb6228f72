"""The parser never crashes: any text yields a syntax tree or a PolicyError with a position."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from castgate import PolicyFunction, Vendor
from castgate.lang import ast, compile_sources
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


# Literals the grammar reads but that hold no value: a PolicyError at the spot, never a traceback.

LONG = "1" + "0" * 5000  # more digits than int() reads (4,300)
HUGE = "1" + "0" * 400  # past the largest float, about 1.8e308 (309 digits)
LARGEST = str(int(sys.float_info.max))


@pytest.mark.parametrize(
    ("source", "code", "line", "column", "message"),
    [
        ('let x = "a\tb"', "E103", 1, 11, "control character U+0009 in a string: write \\t"),
        ('let x = "a\x01b"', "E103", 1, 11, "control character U+0001 in a string: write \\u0001"),
        ('let x = "\x1f"', "E103", 1, 10, "control character U+001F in a string: write \\u001f"),
        ('let x =\t"é✓\x00"', "E103", 1, 12, "control character U+0000 in a string: write \\u0000"),
        (
            'rule r {\n  on publish\n  deny "no\x0cway"\n}',
            "E103",
            3,
            11,
            "control character U+000C",
        ),
        (
            'rule r { app "a\rb" allow }',
            "E103",
            1,
            16,
            "control character U+000D in a string: write \\r",
        ),
        ('let x = {"k\x08": 1}', "E103", 1, 12, "control character U+0008 in a string: write \\b"),
        # JSON takes DEL and the C1 controls raw; in a policy they would not show.
        ('let x = "a\x7fb"', "E103", 1, 11, "control character U+007F in a string: write \\u007f"),
        ('let x = "a\x85"', "E103", 1, 11, "control character U+0085 in a string: write \\u0085"),
        ('let x = "\x9f"', "E103", 1, 10, "control character U+009F in a string: write \\u009f"),
        ('let x = weekdays mon "U\tTC"', "E103", 1, 24, "control character U+0009"),
        ('let x = daily 06:00..07:00 "U\tTC"', "E103", 1, 30, "control character U+0009"),
        ('let x = dates 2026-12-24 "U\tTC"', "E103", 1, 28, "control character U+0009"),
        ('let x = "\\ud800"', "E103", 1, 10, "lone surrogate `\\ud800` in a string"),
        ('let x = "ok \\uDC00"', "E103", 1, 13, "lone surrogate `\\uDC00` in a string"),
        ('let x = "\\ud83d\\u0041"', "E103", 1, 10, "lone surrogate `\\ud83d` in a string"),
        ('let x = "\\ude00\\ud83d"', "E103", 1, 10, "lone surrogate `\\ude00` in a string"),
        ('let x = "\\ud83d\\ude00\\ud83d"', "E103", 1, 22, "lone surrogate `\\ud83d`"),
        ('rule r { deny "\\udfff" }', "E103", 1, 16, "lone surrogate `\\udfff` in a string"),
        ('let x = "\ud800"', "E103", 1, 10, "lone surrogate `U+D800` in a string"),
        (f"let x = {LONG}", "E309", 1, 9, "integer literal too long: 5001 digits"),
        (f"let x = -{LONG}", "E309", 1, 9, "integer literal too long: 5001 digits"),
        (f"let x = {HUGE}", "E309", 1, 9, "integer literal too long: 401 digits"),
        (f"let x = {int(LARGEST) + 1}", "E309", 1, 9, "integer literal too long: 309 digits"),
        (f"let x = {HUGE}.5", "E309", 1, 9, "number literal too large: 401 digits before"),
        (f"let x = -{LONG}.5", "E309", 1, 9, "number literal too large: 5001 digits before"),
        (f"let x = {HUGE}s", "E309", 1, 9, "duration literal too large"),
        (f"let x = {LONG}ms", "E309", 1, 9, "duration literal too large"),
        # Every amount fits a float; in seconds, or added up, they do not.
        (f"let x = 1{'0' * 304}d", "E309", 1, 9, "duration literal too large"),
        (f"let x = 9{'0' * 307}s9{'0' * 307}s", "E309", 1, 9, "duration literal too large"),
        (f"rule r {{ allow with {{ lifetime: {HUGE}d }} }}", "E309", 1, 33, "duration literal"),
        (f"rule r {{ allow if client.port < {HUGE} }}", "E309", 1, 33, "integer literal too"),
        (f"let x = [1, 2][{HUGE}]", "E309", 1, 16, "integer literal too long: 401 digits"),
    ],
)
def test_a_literal_without_a_value_is_a_policy_error_at_its_spot(
    source: str, code: str, line: int, column: int, message: str
) -> None:
    with pytest.raises(PolicyError) as raised:
        parse_policy(source, "lit.policy")
    [diagnostic] = raised.value.diagnostics
    assert (diagnostic.code.value, diagnostic.line, diagnostic.column) == (code, line, column)
    assert diagnostic.message.startswith(message), diagnostic.message
    report = raised.value.report()
    assert report.startswith(f"lit.policy:{line}:{column}: {code}: {diagnostic.message}\n")
    report.encode("utf-8")  # printable: no lone surrogate in it


def test_the_largest_numbers_and_durations_are_accepted() -> None:
    seconds = f"1{'0' * 303}d"  # 8.64e307 seconds; one more zero and they are past the float range
    source = f"let a = {LARGEST}\nlet b = -{LARGEST}\nlet c = {LARGEST}.0\nlet d = {seconds}\n"
    values = [
        item.value.value if isinstance(item.value, ast.Number) else item.value
        for item in parse_policy(source, "big.policy").items
        if isinstance(item, ast.Let)
    ]
    assert values[:3] == [int(LARGEST), -int(LARGEST), sys.float_info.max]
    assert isinstance(values[3], ast.Duration) and values[3].seconds <= sys.float_info.max


def test_escapes_that_only_look_like_surrogates_are_accepted() -> None:
    # An escaped backslash, then the text `ud800`; a pair of escapes is one character.
    policy = parse_policy('let a = "\\\\ud800"\nlet b = "\\ud83d\\ude00\\uD83D\\uDE00"', "s.policy")
    values = [item.value for item in policy.items if isinstance(item, ast.Let)]
    assert [v.value for v in values if isinstance(v, ast.String)] == ["\\ud800", "\U0001f600" * 2]


def test_every_bad_literal_in_a_file_is_reported() -> None:
    source = (
        'let a = "x\ty"\n'
        f'let b = {{"k": {HUGE}, "\\udead": 1}}\n'
        "rule r { deny }\n"
        f"let c = {HUGE}d\n"
    )
    expected = [(1, 11, "E103"), (2, 15, "E309"), (2, 15 + len(HUGE) + 3, "E103"), (4, 9, "E309")]
    with pytest.raises(PolicyError) as raised:
        parse_policy(source, "many.policy")
    assert [(d.line, d.column, d.code.value) for d in raised.value.diagnostics] == expected
    # With a syntax error in another statement, each statement is parsed on its own: the same.
    broken = source.replace("rule r { deny }", "rule r { deny if }")
    with pytest.raises(PolicyError) as raised:
        parse_policy(broken, "many.policy")
    found = [(d.line, d.column, d.code.value) for d in raised.value.diagnostics]
    assert found == sorted([*expected, (3, 18, "E101")])


def test_duration_seconds_refuses_durations_past_the_float_range() -> None:
    for text in (f"{HUGE}s", f"{LONG}ms", f"1{'0' * 304}d", f"9{'0' * 307}s9{'0' * 307}s"):
        with pytest.raises(ValueError, match="duration too large"):
            duration_seconds(text)


@pytest.mark.parametrize(
    ("source", "code", "line", "column"),
    [
        ('rule r { on publish  allow if stream.name matches "\\ud800" }', "E103", 1, 52),
        ('rule r { on publish  deny "\\ud800" }', "E103", 1, 28),
        ('rule r { on publish  allow if now in daily 06:00..07:00 "UTC\x00" }', "E103", 1, 61),
        (f"rule r {{ on publish  allow if client.port < {LONG} }}", "E309", 1, 45),
        # Literals the grammar reads and the checker refuses: their own codes, no traceback.
        ('let x = "a\\x"', "E103", 1, 9),
        ('rule r { on publish  allow if now in daily 25:00..26:00 "UTC" }', "E307", 1, 44),
        ('rule r { on publish  allow if now in daily 06:00..24:01 "UTC" }', "E307", 1, 44),
        ('rule r { on publish  allow if now in dates 2026-02-30 "UTC" }', "E307", 1, 44),
        ('rule r { on publish  allow if now in dates 2026-13-01 "UTC" }', "E307", 1, 44),
        ('rule r { on publish  allow if now in dates 0000-01-01 "UTC" }', "E307", 1, 44),
        (
            'rule r { on publish  allow if now in dates 2026-01-01T24:00..2026-01-02T00:00 "UTC" }',
            "E307",
            1,
            44,
        ),
        ("rule r { on publish  allow if client.ip in [10.0.0.1/8] }", "E305", 1, 45),
        ("rule r { on publish  allow if client.ip in [10.0.0.0/33] }", "E305", 1, 45),
        ("rule r { on publish  allow if client.ip in [::/129] }", "E305", 1, 45),
        ("rule r { on publish  allow if client.ip in [999.0.0.1] }", "E305", 1, 45),
        ("rule r { on publish  allow if client.ip in [1:::2] }", "E305", 1, 45),
        ("rule r { on publish  allow if client.ip == fe80::1%eth0 }", "E101", 1, 51),
        ("rule r { on publish  allow if client.ip == 1:2:3:4:5:6:7:8:9 }", "E101", 1, 45),
    ],
)
def test_odd_literals_compile_to_policy_errors(
    source: str,
    code: str,
    line: int,
    column: int,
    vendors: dict[str, Vendor],
    functions: dict[str, PolicyFunction],
) -> None:
    with pytest.raises(PolicyError) as raised:
        compile_sources(
            [("odd.policy", source, Path())], vendors=vendors, functions=functions, env={}
        )
    [diagnostic] = raised.value.diagnostics
    assert (diagnostic.code.value, diagnostic.line, diagnostic.column) == (code, line, column)
    raised.value.report().encode("utf-8")
