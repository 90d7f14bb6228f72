"""``castgate fmt``: the canonical form of policy text (castgate.lang.formatter).

Golden examples pin each rule of the canonical form; hypothesis checks on generated policies that
formatting is idempotent, keeps the syntax tree and every comment, and never changes a decision.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.requests import Request
from starlette.responses import Response

from castgate import Decision, Event, MalformedRequest, ResponseField, Vendor
from castgate.lang import ast, compile_sources
from castgate.lang.errors import PolicyError
from castgate.lang.formatter import WIDTH, format_source
from castgate.lang.parser import parse_policy
from castgate.state import FixedState


def fmt(text: str) -> str:
    return format_source(textwrap.dedent(text))


def expect(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def check(source: str, expected: str) -> None:
    """``source`` formats to ``expected``, which is a fixed point that means the same."""
    out = fmt(source)
    assert out == expect(expected)
    assert format_source(out) == out
    assert shape(parse_policy(out, "out")) == shape(parse_policy(textwrap.dedent(source), "in"))


# Golden examples: layout ------------------------------------------------------------------------


def test_items_are_separated_by_one_blank_line_and_the_file_ends_with_one_newline() -> None:
    check(
        """

        let a   =   1
        let b = 2


        rule r { allow }   rule s
        {
            on    publish
            deny
        }



        """,
        """
        let a = 1
        let b = 2

        rule r {
          allow
        }

        rule s {
          on publish
          deny
        }
        """,
    )


def test_nothing_formats_to_nothing() -> None:
    assert format_source("") == ""
    assert format_source("  \n\n\t\n") == ""


def test_selectors_are_merged_ordered_and_on_one_line() -> None:
    check(
        """
        rule r {
          app live
          from nginx_rtmp
          on publish
          app "my app", test
          on update
          allow
        }
        """,
        """
        rule r {
          on publish, update from nginx_rtmp app live, "my app", test
          allow
        }
        """,
    )


def test_a_selector_line_too_long_puts_each_kind_on_its_own_line() -> None:
    check(
        """
        rule r { on publish, play, update, done from first_vendor_name, second_vendor_name
                 app application_one, application_two, application_three allow }
        """,
        """
        rule r {
          on publish, play, update, done
          from first_vendor_name, second_vendor_name
          app application_one, application_two, application_three
          allow
        }
        """,
    )


def test_words_and_keys_are_bare_when_they_are_names_and_quoted_as_written_otherwise() -> None:
    check(
        r"""
        rule r {
          app "live", "my app", "caf\u00e9", "on"
          allow with { "rename": "x", "x-y": 1, "a\/b": 2, on: 3, "not": 4, true: 5 }
        }
        """,
        r"""
        rule r {
          app live, "my app", "caf\u00e9", on
          allow with { rename: "x", "x-y": 1, "a\/b": 2, on: 3, not: 4, true: 5 }
        }
        """,
    )


def test_effects() -> None:
    check(
        """
        rule a { deny }
        rule b { deny "ExistStreamName" }
        rule c { deny "no" if x }
        rule d { allow if x }
        rule e { allow with {} }
        rule f { allow with {a:1} if x }
        """,
        """
        rule a {
          deny
        }

        rule b {
          deny "ExistStreamName"
        }

        rule c {
          deny "no" if x
        }

        rule d {
          allow if x
        }

        rule e {
          allow with {}
        }

        rule f {
          allow with { a: 1 } if x
        }
        """,
    )


@pytest.mark.parametrize(
    ("written", "printed"),
    [
        ("a==b", "a == b"),
        ("a!=b", "a != b"),
        ("a<b", "a < b"),
        ("a<=b", "a <= b"),
        ("a>b", "a > b"),
        ("a>=b", "a >= b"),
        ("a in b", "a in b"),
        ("a not   in b", "a not in b"),
        ("a\nnot\n# why\nin b", "a not in b"),
        ("a matches b", "a matches b"),
        ("a startswith b", "a startswith b"),
        ("a endswith b", "a endswith b"),
        ("a contains b", "a contains b"),
        ("a+b", "a + b"),
        ("a and b", "a and b"),
        ("a or b", "a or b"),
        ("not a", "not a"),
        ("params . key", "params.key"),
        ('a [ 0 ] [ "k" ]', 'a[0]["k"]'),
        ("f( )", "f()"),
        ("f(a,b ,c)", "f(a, b, c)"),
        ("sessions.publishers( stream.name )", "sessions.publishers(stream.name)"),
        ("[ ]", "[]"),
        ("[1,2 , 3]", "[1, 2, 3]"),
        ("{ }", "{}"),
        ('{a:1,"b c":[x]}', '{ a: 1, "b c": [x] }'),
        ("true", "true"),
        ("false", "false"),
    ],
)
def test_operators_and_punctuation(written: str, printed: str) -> None:
    out = format_source(f"let x = {written}")
    assert out.split("\n")[-2] == f"let x = {printed}"


@pytest.mark.parametrize(
    "literal",
    [
        '"plain"',
        '""',
        r'"esc \" \\ \/ \b \f \n \r \t \u00e9"',
        '"unicode é ✓"',
        "0",
        "-12",
        "1.50",
        "007",
        "30s",
        "1h30m",
        "500ms",
        "2d",
        "10.0.0.1",
        "10.0.0.0/8",
        "::1",
        "::",
        "2001:db8::/32",
        "::ffff:10.0.0.1",
    ],
)
def test_literals_keep_their_text(literal: str) -> None:
    assert format_source(f"let x = {literal}") == f"let x = {literal}\n"


@pytest.mark.parametrize(
    ("written", "printed"),
    [
        ('weekdays mon..fri 06:00..23:30 "Europe/Berlin"', None),
        ('weekdays  mon .. fri ,sat,sun..mon "UTC"', 'weekdays mon..fri, sat, sun..mon "UTC"'),
        ('daily 22:00..06:00 "UTC"', None),
        ('daily 22:00:30 .. 06:00 "UTC"', 'daily 22:00:30..06:00 "UTC"'),
        ('dates 2026-12-24..2026-12-26 "UTC"', None),
        (
            'dates 2026-12-24,2026-12-31 20:00..02:00 "UTC"',
            'dates 2026-12-24, 2026-12-31 20:00..02:00 "UTC"',
        ),
        ('dates 2026-11-21T10:00..2026-11-21T10:00:08 "UTC"', None),
    ],
)
def test_time_windows(written: str, printed: str | None) -> None:
    assert format_source(f"let w = {written}") == f"let w = {printed or written}\n"


# Golden examples: parentheses -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "printed"),
    [
        # Only where precedence needs them.
        ("(a and b) or c", "a and b or c"),
        ("a and (b or c)", "a and (b or c)"),
        ("(a or b) and c", "(a or b) and c"),
        ("((a))", "a"),
        ("(a == b) and (c != d)", "a == b and c != d"),
        ("(a + b) == (c + d)", "a + b == c + d"),
        ("(a == b) == c", "(a == b) == c"),
        ("a == (b in c)", "a == (b in c)"),
        ("(a + b) + c", "a + b + c"),
        ("a + (b + c)", "a + (b + c)"),
        ('(params.a) + ("x")', 'params.a + "x"'),
        ("(a + b).c", "(a + b).c"),
        ("(a.b).c", "a.b.c"),
        ("(f(x))(y)", "f(x)(y)"),
        ("(a + b)[0]", "(a + b)[0]"),
        ("(not a)[0]", "(not a)[0]"),
        ("x[(a or b)]", "x[a or b]"),
        ("f((a or b), (c))", "f(a or b, c)"),
        ("[(a and b), (c)]", "[a and b, c]"),
        ("{k: (a or b)}", "{ k: a or b }"),
        ("(10.0.0.1).x", "(10.0.0.1).x"),
        ("(::1).x", "(::1).x"),
        ("(10.0.0.0/8)[0]", "10.0.0.0/8[0]"),
        ("(1).x", "1.x"),
        ('(daily 22:00..06:00 "UTC").x', 'daily 22:00..06:00 "UTC".x'),
        # A chain of one operator means the same in any grouping.
        ("a or (b or c)", "a or b or c"),
        ("(a or b) or (c or d)", "a or b or c or d"),
        ("a and (b and (c and d))", "a and b and c and d"),
        ("a or (b and c) or d", "a or b and c or d"),
        # `not`: its operand is parenthesised unless it is a name, literal, postfix or `not`.
        ("not (a == b)", "not (a == b)"),
        ("not a == b", "not (a == b)"),
        ("not (x in list)", "not (x in list)"),
        ("not x not in list", "not (x not in list)"),
        ("not (a + b)", "not (a + b)"),
        ("not (a and b)", "not (a and b)"),
        ("not (a or b)", "not (a or b)"),
        ("not (a)", "not a"),
        ("not (f(x))", "not f(x)"),
        ("not (not a)", "not not a"),
        ("not not (a == b)", "not not (a == b)"),
        ("(not a) == b", "(not a) == b"),
        ("(not a) and b", "not a and b"),
        ("a and (not b)", "a and not b"),
        ("(not a) + b", "(not a) + b"),
        ("a + (not b)", "a + (not b)"),
        ("a in (not b)", "a in (not b)"),
    ],
)
def test_parentheses(written: str, printed: str) -> None:
    out = format_source(f"let x = {written}")
    assert out == f"let x = {printed}\n"
    assert shape(parse_policy(out, "out")) == shape(parse_policy(f"let x = {written}", "in"))


def test_not_keeps_the_meaning_of_what_it_negates() -> None:
    # `not (a == b)` and `(not a) == b` are different trees, and stay so.
    negated = parse_policy(format_source("let x = not (a == b)"), "p").items[0]
    assert isinstance(negated, ast.Let) and isinstance(negated.value, ast.Not)
    compared = parse_policy(format_source("let x = (not a) == b"), "p").items[0]
    assert isinstance(compared, ast.Let) and isinstance(compared.value, ast.Compare)


# Golden examples: long lines --------------------------------------------------------------------
# Pairs in formatter/: NAME.policy formats to NAME.expected (files, since their lines are long).

GOLDEN = Path(__file__).parent / "formatter"


@pytest.mark.parametrize("name", sorted(p.stem for p in GOLDEN.glob("*.policy")))
def test_golden_files(name: str) -> None:
    source = (GOLDEN / f"{name}.policy").read_text(encoding="utf-8")
    check(source, (GOLDEN / f"{name}.expected").read_text(encoding="utf-8"))


def test_golden_files_are_there() -> None:
    assert {p.stem for p in GOLDEN.glob("*.policy")} == {p.stem for p in GOLDEN.glob("*.expected")}
    assert len(list(GOLDEN.glob("*.policy"))) >= 7


def test_a_line_of_exactly_the_width_stays_whole() -> None:
    condition = 'params.a == "' + "x" * (WIDTH - len('  allow if params.a == "" and b')) + '" and b'
    out = format_source(f"rule r {{ allow if {condition} }}")
    assert f"  allow if {condition}" in out.split("\n")
    out = format_source(f"rule r {{ allow if x{condition} }}")
    assert out.split("\n")[2] == "      and b"


def test_an_unbreakable_long_line_stays_long() -> None:
    name = "n" * 120
    assert format_source(f"let x = {name}") == f"let x = {name}\n"


# Golden examples: comments ----------------------------------------------------------------------


def test_comments_before_items_stay_attached_and_keep_single_blank_lines() -> None:
    check(
        """
        # policies/ingest.policy
        # for the studio


        # the studio's networks
        let studio = [10.20.0.0/16]
        # reloaded with the policy

        let keys = lines("keys.txt")
        let showtime = daily 06:00..23:30 "UTC"
        # about the rule
        rule r { allow }
        """,
        """
        # policies/ingest.policy
        # for the studio

        # the studio's networks
        let studio = [10.20.0.0/16]

        # reloaded with the policy

        let keys = lines("keys.txt")
        let showtime = daily 06:00..23:30 "UTC"

        # about the rule
        rule r {
          allow
        }
        """,
    )


def test_comments_at_the_end_of_lines_stay_there() -> None:
    check(
        """
        let studio   = [10.20.0.0/16, 2001:db8:10::/48]   # the studio
        let keys = [   # multi-line let: only the last line's comment trails
          "a",
          "b"] # keys
        rule r {    # the header
          on publish   # the selectors
          allow if x   # the effect
        }   # the end of the rule
        rule s { on publish allow }   # one-line rule
        """,
        """
        let studio = [10.20.0.0/16, 2001:db8:10::/48]  # the studio

        # multi-line let: only the last line's comment trails
        let keys = ["a", "b"]  # keys

        rule r {  # the header
          on publish  # the selectors
          allow if x  # the effect
        }  # the end of the rule

        rule s {
          on publish
          allow
        }  # one-line rule
        """,
    )


def test_comments_inside_a_rule_go_before_the_line_they_preceded() -> None:
    check(
        """
        rule r
        {
          # before the app selector

          app live
          # before the on selector
          on publish
          # before the effect
          allow if x
          # before the closing brace
        }
        """,
        """
        rule r {
          # before the app selector
          # before the on selector
          on publish app live
          # before the effect
          allow if x
          # before the closing brace
        }
        """,
    )


def test_comments_follow_their_selector_kind_when_the_selector_line_is_split() -> None:
    check(
        """
        rule r {
          app application_one, application_two, application_three  # apps
          # vendors
          from first_vendor_name, second_vendor_name
          on publish, play, update, done  # actions
          allow
        }
        """,
        """
        rule r {
          on publish, play, update, done  # actions
          # vendors
          from first_vendor_name, second_vendor_name
          app application_one, application_two, application_three  # apps
          allow
        }
        """,
    )


def test_several_end_of_line_comments_merged_onto_one_line_go_above_it() -> None:
    check(
        """
        rule r {
          on publish  # first
          app live    # second
          on play
          allow
        }
        """,
        """
        rule r {
          # first
          # second
          on publish, play app live
          allow
        }
        """,
    )


def test_comments_inside_a_multi_line_expression_move_above_its_line() -> None:
    check(
        """
        let pairs = {
          a: 1,   # one
          # two
          b: 2
        }
        rule r {
          allow with {   # data
            rename: "x"
          } if
            # why
            params.a == "x"  # a
            or params.b == "y"  # the end
        }
        """,
        """
        # one
        # two
        let pairs = { a: 1, b: 2 }

        rule r {
          # data
          # why
          # a
          allow with { rename: "x" } if params.a == "x" or params.b == "y"  # the end
        }
        """,
    )


def test_comments_between_rule_and_its_brace_go_before_the_rule() -> None:
    check(
        """
        rule   # odd
          r  # odder
        {  # the header
          allow
        }
        """,
        """
        # odd
        # odder
        rule r {  # the header
          allow
        }
        """,
    )


def test_comments_after_the_last_item_and_in_an_empty_file() -> None:
    check(
        """
        let a = 1
        # right after

        # at the end
        """,
        """
        let a = 1
        # right after

        # at the end
        """,
    )
    check(
        """
        # only

        # comments
        """,
        """
        # only

        # comments
        """,
    )


def test_comment_text_is_kept_without_trailing_whitespace() -> None:
    source = "let a = 1   #  spaced   \t\r\n#no space\r\n##  double\n"
    assert format_source(source) == "let a = 1  #  spaced\n#no space\n##  double\n"


def test_a_syntax_error_raises_policy_error_naming_the_path() -> None:
    with pytest.raises(PolicyError) as raised:
        format_source("rule r { allow if }", "bad.policy")
    assert raised.value.diagnostics[0].file == "bad.policy"


# Tree shapes: what must survive formatting ------------------------------------------------------


def shape(node: Any) -> Any:
    """A node without positions or spelling: what the policy means syntactically. ``and``/``or``
    chains are flattened (their grouping means nothing), selectors are merged per kind, keys and
    words are compared decoded."""
    if isinstance(node, ast.PolicyFile):
        return tuple(shape(item) for item in node.items)
    if isinstance(node, ast.Rule):
        words = {
            kind: tuple(w.text for s in node.selectors if s.kind == kind for w in s.words)
            for kind in ("on", "from", "app")
        }
        return ("rule", node.name, words, shape(node.effect))
    if isinstance(node, ast.Logical):
        return ("chain", node.op, tuple(shape(o) for o in _operands(node, node.op)))
    if isinstance(node, ast.Pair):
        return ("pair", node.key, shape(node.value))
    if isinstance(node, ast.Node):
        return (
            type(node).__name__,
            *(
                shape(getattr(node, f.name))
                for f in dataclasses.fields(node)
                if not f.name.endswith("span")
            ),
        )
    if isinstance(node, tuple):
        return tuple(shape(n) for n in node)
    return node


def _operands(node: ast.Expr, op: str) -> list[ast.Expr]:
    if isinstance(node, ast.Logical) and node.op == op:
        return [*_operands(node.left, op), *_operands(node.right, op)]
    return [node]


# Generated policies -----------------------------------------------------------------------------
# Policies are generated as token lists with a precedence, so that parentheses can be added where
# the grammar needs them and, at random, where it does not; layout (spaces, newlines, comments)
# is drawn between every two tokens.

OR, AND, NOT, COMPARE, ADD, POSTFIX, ATOM = range(1, 8)


@dataclasses.dataclass(frozen=True)
class Src:
    tokens: tuple[str, ...]
    precedence: int


def atom(*tokens: str) -> Src:
    return Src(tokens, ATOM)


@st.composite
def grouped(draw: st.DrawFn, src: Src, tightest: int) -> tuple[str, ...]:
    """``src`` where the grammar needs an expression at least as tight as ``tightest``."""
    if src.precedence < tightest or draw(st.integers(0, 9)) == 0:
        return ("(", *src.tokens, ")")
    return src.tokens


@st.composite
def binary(draw: st.DrawFn, left: Src, op: str, right: Src, precedence: int) -> Src:
    """``left op right`` for an operator of ``precedence``, left-associative where it chains."""
    if precedence in (OR, AND):
        left_needs, right_needs = precedence, precedence + 1
    elif precedence == ADD:
        left_needs, right_needs = ADD, POSTFIX
    else:  # comparisons do not chain
        left_needs = right_needs = ADD
    return Src(
        (
            *draw(grouped(left, left_needs)),
            *op.split(),
            *draw(grouped(right, right_needs)),
        ),
        precedence,
    )


def field(path: str) -> Src:
    parts = path.split(".")
    tokens = [parts[0]]
    for part in parts[1:]:
        tokens += [".", part]
    return Src(tuple(tokens), POSTFIX if len(parts) > 1 else ATOM)


STRING_FIELDS = ["params.a", "params.b", "stream.name", "app"]
STRINGS = ['"a"', '"ab"', '"b"', '""', r'"\u0061"', r'"x\"y"', '"A"']
ADDRESSES = ["10.0.0.0/8", "10.1.2.3", "192.168.0.0/16", "2001:db8::/32", "::1"]
PATTERNS = ['"^a"', '"b$"', '"a.?b"', '"^$"']

string_fields = st.sampled_from(STRING_FIELDS).map(field)
string_literals = st.sampled_from(STRINGS).map(atom)


@st.composite
def string_values(draw: st.DrawFn) -> Src:
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return draw(string_literals)
    if kind == 1:
        function = draw(st.sampled_from(["lower", "upper"]))
        argument = draw(string_fields)
        return Src((function, "(", *argument.tokens, ")"), POSTFIX)
    if kind == 2:
        left = draw(st.one_of(string_fields, string_literals))
        right = draw(st.one_of(string_fields, string_literals))
        return draw(binary(left, "+", right, ADD))
    return draw(string_fields)


@st.composite
def lists_of(draw: st.DrawFn, items: st.SearchStrategy[str]) -> Src:
    chosen = draw(st.lists(items, max_size=4))
    tokens: list[str] = ["["]
    for index, item in enumerate(chosen):
        tokens += [","] * bool(index) + [item]
    return atom(*tokens, "]")


@st.composite
def windows(draw: st.DrawFn) -> Src:
    kind = draw(st.sampled_from(["weekdays", "daily", "dates"]))
    clock = draw(st.sampled_from([("06:00", "..", "23:30"), ("22:00", "..", "06:00")]))
    zone = draw(st.sampled_from(['"UTC"', '"Europe/Berlin"']))
    if kind == "daily":
        return atom("daily", *clock, zone)
    if kind == "weekdays":
        days = draw(st.sampled_from([("mon", "..", "fri"), ("sat",), ("sun", "..", "tue")]))
        more = draw(st.sampled_from([(), (",", "wed")]))
        timed = clock if draw(st.booleans()) else ()
        return atom("weekdays", *days, *more, *timed, zone)
    first = draw(st.sampled_from([("2026-03-28",), ("2026-03-29", "..", "2026-04-02")]))
    timed = clock if draw(st.booleans()) else ()
    return atom("dates", *first, *timed, zone)


@st.composite
def comparisons(draw: st.DrawFn, flag: bool = True) -> Src:
    """A test of the event; ``flag`` says whether the `let` of that name may be used."""
    kind = draw(st.integers(0, 9))
    if kind == 0:
        op = draw(st.sampled_from(["==", "!="]))
        return draw(binary(draw(string_values()), op, draw(string_values()), COMPARE))
    if kind == 1:
        op = draw(st.sampled_from(["in", "not in"]))
        container = draw(st.one_of(lists_of(st.sampled_from(STRINGS)), st.just(atom("names"))))
        return draw(binary(draw(string_fields), op, container, COMPARE))
    if kind == 2:
        op = draw(st.sampled_from(["startswith", "endswith", "contains"]))
        return draw(binary(draw(string_values()), op, draw(string_literals), COMPARE))
    if kind == 3:
        pattern = atom(draw(st.sampled_from(PATTERNS)))
        return draw(binary(draw(string_fields), "matches", pattern, COMPARE))
    if kind == 4:
        op = draw(st.sampled_from(["in", "not in"]))
        container = draw(st.one_of(lists_of(st.sampled_from(ADDRESSES)), st.just(atom("nets"))))
        return draw(binary(field("client.ip"), op, container, COMPARE))
    if kind == 5:
        op = draw(st.sampled_from(["in", "not in"]))
        container = draw(st.one_of(windows(), st.just(atom("hours"))))
        return draw(binary(field("now"), op, container, COMPARE))
    if kind == 6:
        op = draw(st.sampled_from(["<", "<=", ">", ">="]))
        bound = atom(draw(st.sampled_from(["5", "-1", "100.5", "90s", "1h30m"])))
        return draw(binary(field("params.b"), op, bound, COMPARE))
    if kind == 7:
        argument = draw(st.sampled_from(["params.a", "params.b", "stream.name"]))
        return Src(("has", "(", *field(argument).tokens, ")"), POSTFIX)
    if kind == 8:
        return atom(draw(st.sampled_from(["true", "false", "flag"] if flag else ["true"])))
    return draw(binary(field("client.ip"), "==", atom('"10.1.2.3"'), COMPARE))


@st.composite
def conditions(draw: st.DrawFn, depth: int = 3, flag: bool = True) -> Src:
    """A condition: tests combined with `and`, `or` and `not`, up to ``depth`` deep."""
    kind = draw(st.integers(0, 4)) if depth else 0
    if kind == 0:
        return draw(comparisons(flag))
    inner = conditions(depth - 1, flag)
    if kind == 1:
        return Src(("not", *draw(grouped(draw(inner), NOT))), NOT)
    op, precedence = draw(st.sampled_from([("or", OR), ("and", AND)]))
    return draw(binary(draw(inner), op, draw(inner), precedence))


@st.composite
def response_data(draw: st.DrawFn) -> tuple[str, ...]:
    pairs: list[tuple[str, ...]] = []
    if draw(st.booleans()):
        key = draw(st.sampled_from(["rename", '"rename"']))
        pairs.append((key, ":", *draw(string_values()).tokens))
    if draw(st.booleans()):
        pairs.append(("tags", ":", *draw(lists_of(st.sampled_from(STRINGS))).tokens))
    if draw(st.booleans()):
        inner = draw(string_values()).tokens
        pairs.append(("meta", ":", "{", '"the owner"', ":", *inner, ",", "n", ":", "1", "}"))
    tokens: list[str] = ["{"]
    for index, pair in enumerate(pairs):
        tokens += [","] * bool(index) + list(pair)
    return (*tokens, "}")


SELECTORS = {
    "on": ["publish", "play"],
    "from": ["va", "vb"],
    "app": ["live", "test", '"my app"', '"live"'],
}


@st.composite
def rules(draw: st.DrawFn, name: str) -> tuple[str, ...]:
    tokens: list[str] = ["rule", name, "{"]
    for kind in draw(st.lists(st.sampled_from(list(SELECTORS)), max_size=4)):
        words = draw(st.lists(st.sampled_from(SELECTORS[kind]), min_size=1, max_size=2))
        tokens.append(kind)
        for index, word in enumerate(words):
            tokens += [","] * bool(index) + [word]
    if draw(st.booleans()):
        tokens.append("allow")
        if draw(st.booleans()):
            tokens += ["with", *draw(response_data())]
    else:
        tokens.append("deny")
        if draw(st.booleans()):
            tokens.append(draw(st.sampled_from(['"go away"', r'"no \"way\""'])))
    if draw(st.integers(0, 4)):
        tokens += ["if", *draw(conditions()).tokens]
    return (*tokens, "}")


@st.composite
def policies(draw: st.DrawFn) -> str:
    """Policy text: fixed `let`s (so rules can use them), random rules, random layout."""
    items: list[tuple[str, ...]] = [
        ("let", "names", "=", *draw(lists_of(st.sampled_from(STRINGS))).tokens),
        ("let", "nets", "=", *draw(lists_of(st.sampled_from(ADDRESSES))).tokens),
        ("let", "hours", "=", *draw(windows()).tokens),
        ("let", "flag", "=", *draw(conditions(1, flag=False)).tokens),
    ]
    count = draw(st.integers(1, 5))
    items += [draw(rules(f"r{i}")) for i in range(count)]
    return layout([t for item in items for t in item], draw(st.randoms(use_true_random=False)))


def layout(tokens: list[str], rng: random.Random) -> str:
    """Tokens joined by random blanks and numbered comments."""
    out: list[str] = []
    for index, token in enumerate(tokens):
        out.append(token)
        roll = rng.random()
        if roll < 0.06:
            out.append(f"  # c{index}\n")
        elif roll < 0.09:
            out.append(f"\n\n# c{index}\n\n")
        elif roll < 0.3:
            out.append(rng.choice(["\n", "\n  ", "\n\n", "\t"]))
        else:
            out.append(rng.choice([" ", " ", "  "]))
    return "".join(out)


class GeneratedVendor(Vendor):
    """A minimal vendor so generated rules can use `from` and response data."""

    __test__ = False
    name = "va"
    actions = frozenset({"publish", "play"})
    response_fields: ClassVar[Mapping[str, ResponseField]] = {
        "rename": ResponseField("string"),
        "tags": ResponseField("list"),
        "meta": ResponseField("object"),
    }

    async def parse(self, request: Request, route: str) -> Event:
        raise MalformedRequest("not served")

    def render(self, decision: Decision, event: Event) -> Response:
        return Response()

    def render_malformed(self, error: MalformedRequest, route: str) -> Response:
        return Response(status_code=400)


class OtherGeneratedVendor(GeneratedVendor):
    __test__ = False
    name = "vb"


VENDORS: Mapping[str, Vendor] = {"va": GeneratedVendor(), "vb": OtherGeneratedVendor()}
START = dt.datetime(2026, 3, 26, tzinfo=dt.UTC).timestamp()

events = st.builds(
    lambda vendor, action, app, stream, params, ip, time: Event(
        vendor=vendor,
        action=action,
        app=app,
        stream=stream,
        params=params,
        client_ip=ip,
        time=time,
    ),
    st.sampled_from(["va", "vb"]),
    st.sampled_from(["publish", "play"]),
    st.sampled_from(["live", "test", "my app", ""]),
    st.sampled_from(["", "a", "ab", "b", "A"]),
    st.dictionaries(
        st.sampled_from(["a", "b"]), st.sampled_from(["a", "ab", "b", "", "A", "5", "120", "x"])
    ),
    st.sampled_from(["", "10.1.2.3", "192.168.1.1", "2001:db8::1", "::1", "garbage"]),
    st.floats(START, START + 10 * 86400).map(round),
)


def compiled(text: str) -> Any:
    return compile_sources([("p.policy", text, Path())], vendors=VENDORS, functions={}, env={})


def comments_of(text: str) -> list[str]:
    return sorted(c.text.rstrip() for c in parse_policy(text, "p").comments)


GENERATED = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@GENERATED
@given(policies(), st.lists(events, min_size=5, max_size=15))
def test_formatting_generated_policies_keeps_meaning_and_comments(
    source: str, sample: list[Event]
) -> None:
    formatted = format_source(source)
    # Idempotent.
    assert format_source(formatted) == formatted
    # The same tree, and every comment.
    assert shape(parse_policy(formatted, "p")) == shape(parse_policy(source, "p"))
    assert comments_of(formatted) == comments_of(source)
    # Tidy text.
    assert formatted.endswith("\n") and not formatted.endswith("\n\n")
    assert "\n\n\n" not in formatted and "\t" not in formatted
    assert all(line == line.rstrip() for line in formatted.split("\n"))
    # The same decisions, explanations included.
    original, reformatted = compiled(source), compiled(formatted)
    state = FixedState()
    for event in sample:
        assert reformatted.decide(event, state, explain=True) == original.decide(
            event, state, explain=True
        )


# Syntax-only generation: any expression the grammar accepts, meaningful or not, so every
# operator meets every other one (and addresses, numbers and windows meet postfix operators).

LEAVES = [
    "a",
    "on",
    "from",
    "in",
    '"s"',
    "1",
    "-2.5",
    "30s",
    "10.0.0.1",
    "::1",
    "10.0.0.0/8",
    "true",
    "false",
]


@st.composite
def expressions(draw: st.DrawFn, depth: int = 4) -> Src:
    kind = draw(st.integers(0, 9)) if depth else 0
    if kind == 0:
        leaf = draw(st.integers(0, 3))
        if leaf == 0:
            return draw(windows())
        return atom(*draw(st.sampled_from([*LEAVES, "[ ]", "{ }"])).split())
    inner = expressions(depth - 1)
    if kind <= 4:
        op, precedence = draw(
            st.sampled_from(
                [
                    ("or", OR),
                    ("and", AND),
                    *((op, COMPARE) for op in ["==", "<=", "in", "not in", "startswith"]),
                    ("+", ADD),
                ]
            )
        )
        return draw(binary(draw(inner), op, draw(inner), precedence))
    if kind == 5:
        return Src(("not", *draw(grouped(draw(inner), NOT))), NOT)
    if kind == 6:
        target = draw(grouped(draw(inner), POSTFIX))
        return Src((*target, ".", draw(st.sampled_from(["x", "not", "rule"]))), POSTFIX)
    if kind == 7:
        target = draw(grouped(draw(inner), POSTFIX))
        return Src((*target, "[", *draw(inner).tokens, "]"), POSTFIX)
    if kind == 8:
        target = draw(grouped(draw(inner), POSTFIX))
        arguments = draw(st.lists(inner, max_size=3))
        return Src((*target, "(", *_joined([a.tokens for a in arguments]), ")"), POSTFIX)
    if draw(st.booleans()):
        return atom("[", *_joined([x.tokens for x in draw(st.lists(inner, max_size=3))]), "]")
    keys = st.sampled_from(["k", '"k-2"', "not", '"k"'])
    pairs = draw(st.lists(st.tuples(keys, inner), max_size=2, unique_by=lambda p: p[0]))
    return atom("{", *_joined([(k, ":", *v.tokens) for k, v in pairs]), "}")


def _joined(parts: list[tuple[str, ...]]) -> list[str]:
    out: list[str] = []
    for index, part in enumerate(parts):
        out += [","] * bool(index) + list(part)
    return out


@settings(max_examples=300, deadline=None)
@given(expressions(), st.randoms(use_true_random=False))
def test_formatting_any_expression_keeps_its_tree(expression: Src, rng: random.Random) -> None:
    source = layout(["let", "x", "=", *expression.tokens], rng)
    formatted = format_source(source)
    assert format_source(formatted) == formatted
    assert shape(parse_policy(formatted, "p")) == shape(parse_policy(source, "p"))
    assert comments_of(formatted) == comments_of(source)
