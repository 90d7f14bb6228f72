"""The fast parser (castgate.lang.fast_parser) against the Lark parser, the reference.

For text Lark parses, the fast parser must build the same tree, every span and comment included,
and must not hand the text back to Lark (a silent fallback would only be slow, so it is counted
and must be zero); for text Lark rejects, it must decline, so that every error report is Lark's.
Checked on every policy in the repository, on policies generated from the grammar and on broken
ones.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import re
import sys
from collections.abc import Callable, Iterator
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml
from benchmark_scripts import load_benchmark
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from castgate.lang import ast, parser
from castgate.lang.errors import PolicyError
from castgate.lang.fast_parser import PUNCTUATION, TERMINALS, parse_fast
from castgate.lang.parser import MAX_NESTING, parse_policy

ROOT = Path(__file__).resolve().parents[2]
#: The largest integer a number literal may be: the largest float, 309 digits.
LARGEST = int(sys.float_info.max)


def tree(node: Any) -> Any:
    """Everything a node holds, spans included, as nested tuples that compare by value."""
    if isinstance(node, tuple):
        return tuple(tree(item) for item in node)
    if isinstance(node, ast.Node):
        fields = dataclasses.fields(node)
        return (type(node).__name__, *(tree(getattr(node, f.name)) for f in fields))
    return node


def lark_tree(source: str) -> Any:
    """The items and comments the Lark parser builds, as :func:`tree`s; raises on bad text."""
    return tree(parser._parse_text(source))


def fast_tree(source: str) -> Any:
    parsed = parse_fast(source, MAX_NESTING)
    return None if parsed is None else tree(parsed)


def outcome(source: str) -> tuple[str, Any]:
    """What ``parse_policy`` gives: the tree, or every diagnostic and the rendered report."""
    try:
        policy = parse_policy(source, "p.policy")
    except PolicyError as err:
        return "error", (err.diagnostics, err.report())
    return "tree", tree((policy.items, policy.comments))


def lark_outcome(source: str) -> tuple[str, Any]:
    with mock.patch.object(parser, "parse_fast", return_value=None):
        return outcome(source)


def assert_same_as_lark(source: str) -> None:
    """Lark parses ``source``, and the fast parser builds the very same tree."""
    expected = lark_tree(source)
    assert fast_tree(source) == expected


# The grammar the fast parser encodes by hand --------------------------------------------------

#: The grammar's keywords, as the fast parser knows them.
KEYWORDS = {
    *("let", "rule", "on", "from", "app", "allow", "deny", "with", "if"),
    *("or", "and", "not", "in", "matches", "startswith", "endswith", "contains"),
    *("true", "false", "weekdays", "daily", "dates"),
}
#: sha256 of grammar.lark as fast_parser.py encodes it.
GRAMMAR_DIGEST = "4635f8dd1ae6cc04f52d57f309fd47f2494ad383fc414069228b8d81f8bc44cf"


def test_the_grammar_is_the_one_the_fast_parser_encodes() -> None:
    grammar = (ROOT / "engine" / "castgate" / "lang" / "grammar.lark").read_bytes()
    assert hashlib.sha256(grammar).hexdigest() == GRAMMAR_DIGEST, (
        "grammar.lark changed: change castgate/lang/fast_parser.py to parse the same language, "
        "teach the policy generator in this file the change, then update GRAMMAR_DIGEST"
    )


def test_terminals_are_the_grammars() -> None:
    terminals = {t.name: t for t in parser._lark().terminals}
    # Lark spells some escapes as the characters themselves: the same regular expression.
    spelled = str.maketrans({"\n": r"\n", "\t": r"\t", "\x0c": r"\x0c", "\r": r"\r"})
    patterns = {name: t.pattern.to_regexp().translate(spelled) for name, t in terminals.items()}
    assert {name: patterns[name] for name in TERMINALS} == TERMINALS
    literals = {t.pattern.value for t in terminals.values() if t.pattern.type == "str"}
    assert {word for word in literals if word.isidentifier()} == KEYWORDS
    assert {mark for mark in literals if not mark.isidentifier()} == set(PUNCTUATION)
    assert set(terminals) - set(TERMINALS) == {
        name for name, t in terminals.items() if t.pattern.type == "str"
    }
    # The fast lexer tries ADDRESS, then DURATION, then the rest, as Lark's priorities say.
    assert {name: t.priority for name, t in terminals.items() if t.priority} == {
        "ADDRESS": 3,
        "DURATION": 2,
    }
    assert sorted(PUNCTUATION, key=len, reverse=True) == list(PUNCTUATION)


# Every policy in the repository -----------------------------------------------------------------


def _doc_blocks(info: str) -> Iterator[tuple[str, str]]:
    fence = re.compile(rf"^```{info}[ \t]*\n(?P<body>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
    for doc in sorted((ROOT / "docs").rglob("*.md")):
        text = doc.read_text(encoding="utf-8")
        for block in fence.finditer(text):
            line = text.count("\n", 0, block.start()) + 1
            yield f"{doc.relative_to(ROOT)}:{line}", block["body"]


@cache
def repository_policies() -> list[tuple[str, str]]:
    """(where, text) of every policy written down in the repository."""
    found = []
    tops = [ROOT / top for top in ("policies", "benchmarks", "tests", "examples")]
    for path in sorted(p for top in tops for p in top.rglob("*.policy")):
        found.append((str(path.relative_to(ROOT)), path.read_text(encoding="utf-8")))
    for path in sorted((ROOT / "tests" / "lang" / "formatter").glob("*.expected")):
        found.append((str(path.relative_to(ROOT)), path.read_text(encoding="utf-8")))
    for path in sorted(p for top in tops for p in top.rglob("*.test.yaml")):
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(spec, dict) and isinstance(spec.get("policy"), str):
            found.append((str(path.relative_to(ROOT)), spec["policy"]))
    found.extend(_doc_blocks("policy"))
    found.extend(_doc_blocks("policy-error"))
    bench = load_benchmark("decision_speed")
    rng = random.Random(7)
    shapes = "\n".join(bench.compile_rule_text(i, rng) for i in range(60))
    found.append(("benchmarks/decision_speed.py compile_rule_text", shapes))
    for extra in ("other", "same"):
        text, _, _ = bench.generated_rules(60, extra, rng)
        found.append((f"benchmarks/decision_speed.py generated_rules {extra}", text))
    return found


def test_the_repository_has_policies_of_every_kind() -> None:
    where = " ".join(name for name, _ in repository_policies())
    for kind in ("policies/", "benchmarks/policies/", "tests/", ".test.yaml", "docs/", "bench"):
        assert kind in where, kind
    assert len(repository_policies()) > 60


def test_every_policy_in_the_repository_parses_the_same() -> None:
    fallbacks, mismatches, accepted_broken = [], [], []
    for where, text in repository_policies():
        try:
            expected = lark_tree(text)
        except Exception:
            if fast_tree(text) is not None:
                accepted_broken.append(where)
            assert outcome(text) == lark_outcome(text), where
            continue
        got = fast_tree(text)
        if got is None:
            fallbacks.append(where)
        elif got != expected:
            mismatches.append(where)
    assert not fallbacks, f"the fast parser handed valid policies to Lark: {fallbacks}"
    assert not mismatches, f"different trees: {mismatches}"
    assert not accepted_broken, f"the fast parser accepted what Lark rejects: {accepted_broken}"


# Policies generated from the grammar --------------------------------------------------------------

# Names that are keywords elsewhere, or look like the start of an IPv6 address (`ab:cd::1`).
PLAIN_NAMES = ["x", "params", "key", "_a1", "a", "ab", "cafe", "f00", "Mon", "DAILY", "monday"]
#: Words that start an operand as keywords, so they are never a name there.
OPERAND_KEYWORDS = {"not", "true", "false", "weekdays", "daily", "dates"}
ANY_NAME = st.sampled_from(PLAIN_NAMES + sorted(KEYWORDS))
OPERAND_NAME = st.sampled_from(PLAIN_NAMES + sorted(KEYWORDS - OPERAND_KEYWORDS))

STRING_PIECES = [
    "a", "Z", "09", " ", "#", "'", "é", "✓", "𝄞", "..", "{", "//",
    r"\"", r"\\", r"\/", r"\b", r"\f", r"\n", r"\r", r"\t", r"\u00e9", r"\uD83D\uDE00", r"\u0000",
]  # fmt: skip
STRINGS = st.lists(st.sampled_from(STRING_PIECES), max_size=5).map(lambda p: '"' + "".join(p) + '"')
NUMBERS = st.sampled_from(["0", "42", "-1", "3.14", "-0.5", "007", "1.0"])
DURATIONS = st.sampled_from(["30s", "1h30m", "500ms", "2d", "1m1s", "0s"])
ADDRESSES = st.sampled_from(
    [
        *("10.0.0.0/8", "192.168.1.1", "0.0.0.0", "255.255.255.255/32", "::", "::1", "::/0"),
        *("fe80::1", "2001:db8::/32", "2001:db8:0:0:0:0:0:1", "::ffff:10.1.2.3", "a::b"),
        *("1:2:3:4:5:6:7:8", "ab:cd::ef/64", "1::2"),
    ]
)
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
CLOCKS = st.sampled_from(["06:00", "23:30", "00:00", "24:00", "12:34:56"])
DATES = st.sampled_from(["2026-12-24", "2026-01-01", "2026-11-21T10:00", "2026-11-21T10:00:08"])
COMPARISONS = ["==", "!=", "<", "<=", ">", ">=", "in", "not in", "matches", "startswith"]
COMPARISONS += ["endswith", "contains"]

# How tightly an expression binds, as in the grammar: `or` loosest, a postfix expression tightest.
OR, AND, NOT, COMPARISON, SUM, POSTFIX = range(1, 7)


@dataclasses.dataclass(frozen=True)
class Piece:
    tokens: tuple[str, ...]
    binds: int


def bound(piece: Piece, tightest: int) -> tuple[str, ...]:
    """``piece`` where an operand binding at least as tightly as ``tightest`` is needed."""
    return piece.tokens if piece.binds >= tightest else ("(", *piece.tokens, ")")


def commas(parts: list[tuple[str, ...]]) -> tuple[str, ...]:
    return tuple(token for i, part in enumerate(parts) for token in ((",",) if i else ()) + part)


@st.composite
def windows(draw: st.DrawFn) -> tuple[str, ...]:
    kind = draw(st.sampled_from(["weekdays", "daily", "dates"]))
    clock = (draw(CLOCKS), "..", draw(CLOCKS))
    zone = (draw(STRINGS),)
    if kind == "daily":
        return ("daily", *clock, *zone)
    if kind == "weekdays":
        spans = st.lists(
            st.one_of(
                st.sampled_from(DAYS).map(lambda d: (d,)),
                st.tuples(st.sampled_from(DAYS), st.just(".."), st.sampled_from(DAYS)),
            ),
            min_size=1,
            max_size=3,
        )
    else:
        spans = st.lists(
            st.one_of(DATES.map(lambda d: (d,)), st.tuples(DATES, st.just(".."), DATES)),
            min_size=1,
            max_size=3,
        )
    timed = clock if draw(st.booleans()) else ()
    return (kind, *commas(draw(spans)), *timed, *zone)


@st.composite
def atoms(draw: st.DrawFn, depth: int) -> Piece:
    kind = draw(st.integers(0, 11 if depth > 0 else 7))
    if kind == 0:
        return Piece((draw(OPERAND_NAME),), POSTFIX)
    if kind == 1:
        return Piece((draw(STRINGS),), POSTFIX)
    if kind == 2:
        return Piece((draw(NUMBERS),), POSTFIX)
    if kind == 3:
        return Piece((draw(DURATIONS),), POSTFIX)
    if kind == 4:
        return Piece((draw(ADDRESSES),), POSTFIX)
    if kind == 5:
        return Piece((draw(st.sampled_from(["true", "false"])),), POSTFIX)
    if kind == 6:
        return Piece(draw(windows()), POSTFIX)
    if kind == 7:
        return Piece(("[", "]") if draw(st.booleans()) else ("{", "}"), POSTFIX)
    if kind == 8:
        items = draw(st.lists(expressions(depth - 1), min_size=1, max_size=3))
        return Piece(("[", *commas([i.tokens for i in items]), "]"), POSTFIX)
    if kind == 9:
        return Piece(draw(objects(depth - 1)), POSTFIX)
    if kind == 10:
        inner = draw(expressions(depth - 1))
        return Piece(("(", *inner.tokens, ")"), POSTFIX)
    # Redundant parentheses around an operand.
    inner = draw(atoms(depth - 1))
    return Piece(("(", "(", *inner.tokens, ")", ")"), POSTFIX)


@st.composite
def objects(draw: st.DrawFn, depth: int) -> tuple[str, ...]:
    keys = st.one_of(ANY_NAME, STRINGS)
    pairs = draw(st.lists(st.tuples(keys, expressions(depth)), min_size=1, max_size=3))
    return ("{", *commas([(key, ":", *value.tokens) for key, value in pairs]), "}")


@st.composite
def expressions(draw: st.DrawFn, depth: int = 3) -> Piece:
    if depth <= 0:
        return draw(atoms(0))
    kind = draw(st.integers(0, 9))
    if kind <= 2:
        return draw(atoms(depth))
    if kind == 3:
        target = draw(expressions(depth - 1))
        step = draw(st.integers(0, 2))
        if step == 0:
            suffix: tuple[str, ...] = (".", draw(ANY_NAME))
        elif step == 1:
            suffix = ("[", *draw(expressions(depth - 1)).tokens, "]")
        else:
            args = draw(st.lists(expressions(depth - 1), max_size=3))
            suffix = ("(", *commas([a.tokens for a in args]), ")")
        return Piece((*bound(target, POSTFIX), *suffix), POSTFIX)
    left, right = draw(expressions(depth - 1)), draw(expressions(depth - 1))
    if kind == 4:
        return Piece((*bound(left, OR), "or", *bound(right, AND)), OR)
    if kind == 5:
        return Piece((*bound(left, AND), "and", *bound(right, NOT)), AND)
    if kind == 6:
        return Piece(("not", *bound(left, NOT)), NOT)
    if kind == 7:
        op = draw(st.sampled_from(COMPARISONS))
        # Right of a comparison `not` is no keyword: it names a field.
        right_tokens = ("not",) if draw(st.integers(0, 9)) == 0 else bound(right, SUM)
        return Piece((*bound(left, SUM), *op.split(), *right_tokens), COMPARISON)
    if kind == 8:
        return Piece((*bound(left, SUM), "+", *bound(right, POSTFIX)), SUM)
    return Piece(("(", *left.tokens, ")"), POSTFIX)


@st.composite
def statements(draw: st.DrawFn) -> tuple[str, ...]:
    if draw(st.booleans()):
        return ("let", draw(ANY_NAME), "=", *draw(expressions()).tokens)
    selectors: list[str] = []
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["on", "from", "app"]))
        word = st.one_of(ANY_NAME, STRINGS) if kind == "app" else ANY_NAME
        selectors += [kind, *commas([(w,) for w in draw(st.lists(word, min_size=1, max_size=3))])]
    condition = ("if", *draw(expressions()).tokens) if draw(st.booleans()) else ()
    if draw(st.booleans()):
        data = ("with", *draw(objects(2))) if draw(st.booleans()) else ()
        effect = ("allow", *data, *condition)
    else:
        reason = (draw(STRINGS),) if draw(st.booleans()) else ()
        effect = ("deny", *reason, *condition)
    return ("rule", draw(ANY_NAME), "{", *selectors, *effect, "}")


COMMENT_TEXT = st.text(st.characters(blacklist_characters="\n", blacklist_categories=["Cs"]))
LAYOUT = st.one_of(
    st.sampled_from([" ", "  ", "\t", "\n", "\r\n", "\f", " \n\n  ", "\n\t\t", "#\n", "# c\r\n"]),
    COMMENT_TEXT.map(lambda text: f"  #{text}\n"),
)
_WORDY = re.compile(r"[A-Za-z0-9_]")
_ADDRESS = re.compile(TERMINALS["ADDRESS"])
_CLOCK = re.compile(TERMINALS["CLOCK"])


def needs_space(left: str, right: str) -> bool:
    """Whether writing ``left`` and ``right`` together would change how the text reads."""
    if left in DAYS and _CLOCK.fullmatch(right):
        return False  # `fri06:00` reads as a day and a time: worth generating
    if _WORDY.match(left[-1]) and _WORDY.match(right[0]):
        return True
    # An address must not run on into a name, a dot or a colon.
    return bool(_ADDRESS.fullmatch(left)) and bool(re.match(r"[0-9A-Za-z_.:]", right))


@st.composite
def laid_out(draw: st.DrawFn, tokens: tuple[str, ...]) -> str:
    """``tokens`` as text, with random whitespace and comments (or nothing) between them."""
    gaps = draw(
        st.lists(st.one_of(st.just(""), LAYOUT), min_size=len(tokens) + 1, max_size=len(tokens) + 1)
    )
    for i, (left, right) in enumerate(pairwise(tokens), start=1):
        if not gaps[i] and needs_space(left, right):
            gaps[i] = " "
    return "".join(gap + token for gap, token in zip(gaps, (*tokens, ""), strict=True))


policy_tokens = st.lists(statements(), max_size=4).map(
    lambda s: tuple(t for item in s for t in item)
)
policies = policy_tokens.flatmap(laid_out)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policies)
def test_generated_policies_parse_the_same(source: str) -> None:
    try:
        expected = lark_tree(source)
    except Exception as err:
        raise AssertionError(f"the generator wrote a policy Lark rejects: {err}") from err
    got = fast_tree(source)
    assert got is not None, "the fast parser handed a valid policy to Lark"
    assert got == expected


# Broken text: every report is Lark's ------------------------------------------------------------


def mutated(tokens: tuple[str, ...], rng: random.Random) -> tuple[str, ...]:
    fragments = ["(", ")", "[", "]", "{", "}", ",", ":", ".", "..", "=", "==", "not", "in", "if"]
    fragments += ["and", "let", "rule", "allow", '"s"', "1", "::1", "30s", "mon", "06:00", "#"]
    fragments += ["'q'", "&&", "!", "@", "\\", '"', "-", "1e5", "\t"]
    fragments += ['"a\tb"', '"\\ud800"', "1" + "0" * 400, "1" + "0" * 400 + "d"]
    at = rng.randrange(len(tokens) + 1)
    kind = rng.randrange(4)
    if kind == 0 and tokens:
        return tokens[: max(0, at - 1)] + tokens[at:]
    if kind == 1 and len(tokens) > 1:
        at = min(at, len(tokens) - 2)
        return (*tokens[:at], tokens[at + 1], tokens[at], *tokens[at + 2 :])
    if kind == 2 and tokens:
        return tokens[:at] + tokens[at - 1 : at] + tokens[at:]
    return (*tokens[:at], rng.choice(fragments), *tokens[at:])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy_tokens, st.randoms(use_true_random=False))
def test_broken_policies_report_exactly_what_lark_reports(
    tokens: tuple[str, ...], rng: random.Random
) -> None:
    source = " ".join(mutated(tokens, rng))
    assert_fast_path_changes_nothing(source)


def assert_fast_path_changes_nothing(source: str) -> None:
    fast = fast_tree(source)
    if fast is not None:
        assert fast == lark_tree(source), "the fast parser built another tree"
    assert outcome(source) == lark_outcome(source)


SOUP = [
    *sorted(KEYWORDS), *PUNCTUATION, "x", "a", "publish", "params.key", '"s"', "'q'", "10.0.0.0/8",
    "::1", "ab:cd::1", "30s", "1h30m", "42", "-1.5", "mon", "fri", "06:00", "2026-12-24", '"UTC"',
    "#c\n", "\n", "\\", '"', "@", "&&", "-", "lety", "onpublish", "notin",
]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(SOUP), max_size=40), st.sampled_from(["", " "]))
def test_token_soup_parses_as_lark_parses_it(words: list[str], glue: str) -> None:
    assert_fast_path_changes_nothing(glue.join(words))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_arbitrary_text_parses_as_lark_parses_it(text: str) -> None:
    assert_fast_path_changes_nothing(text)


@pytest.mark.parametrize(
    "source",
    [
        "rule r { on play alow }",
        "rule r { on play allow if x = 1 }",
        "rule r { on play allow if x == 'a' }",
        "rule r { on play allow if a && b }",
        "rule r { on play allow if a == b == c }",
        "rule r { on play allow if not }",
        "rule r { on play allow if a not b }",
        "rule r { on play allow if (a }",
        "rule r { on play allow if [a, ] }",
        "rule r { on play allow if f(a,) }",
        "rule r { on play allow with { a: 1, } }",
        "rule r { on play allow with x }",
        "rule r { on play allow if x.1 }",
        "rule r { on play allow if 1.2.3.4.5 }",
        "rule r { on play allow if 30sx }",
        "rule r { on play deny 'no' }",
        "rule r { on play }",
        "rule r { on play allow",
        'rule r { on play allow if weekdays monday "UTC" }',
        'rule r { on play allow if daily 06:00 "UTC" }',
        'rule r { on play allow if dates 2026-12-24 06:00 "UTC" }',
        "rule r { on play allow if weekdays mon..fri 06:00..07:00 }",
        'let x = "unterminated\nlet y = 1',
        "let x = 1\nlet = 2\nrule r { allow if }\n",
        "let x = a\nlety = 1",
        "let x = a int",
        "rule r { onplay allow }",
        "rule r { on play allowed }",
        "let x = { a: 1 } let y = x.",
        "let x = 1 +",
        "let x = -",
        "\ufefflet x = 1",
        "let x = 1\u00a0",
        'let x = "a\\x"',
    ],
)
def test_broken_or_odd_text_is_lark_s_to_report(source: str) -> None:
    assert_fast_path_changes_nothing(source)


@pytest.mark.parametrize(
    ("source", "code"),
    [
        ('let x = "a\tb"', "E103"),
        ('rule r { app "\x01" deny "\x1f" }', "E103"),
        ('let x = {"\x00": 1}', "E103"),
        ('let x = daily 06:00..07:00 "U\tTC"', "E103"),
        ('let x = "\\ud800"', "E103"),
        ('let x = "\ud800"', "E103"),
        ("let x = 1" + "0" * 5000, "E309"),
        ("let x = 1" + "0" * 400, "E309"),
        ("let x = -1" + "0" * 400 + ".5", "E309"),
        ("let x = 1" + "0" * 400 + "s", "E309"),
        ("let x = 1" + "0" * 5000 + "ms", "E309"),
    ],
    ids=[
        "tab in a string",
        "control characters in an app and a reason",
        "control character in a key",
        "tab in a zone",
        "lone surrogate escape",
        "lone surrogate",
        "long integer",
        "integer past the float range",
        "number past the float range",
        "duration past the float range",
        "long duration",
    ],
)
def test_literals_lark_s_tree_builder_fails_on_are_left_to_lark(source: str, code: str) -> None:
    # Literals the grammar reads but that hold no value: a raw control character in a string
    # (json.loads refuses it), a lone surrogate (no character: it cannot be encoded, printed or
    # matched), a number or a duration in seconds past the largest float (int() also reads no more
    # than 4,300 digits). The fast parser declines them; Lark's tree builder reports them as policy
    # errors (E103, E309) at the spot, as the only report.
    assert fast_tree(source) is None
    kind, found = outcome(source)
    assert kind == "error"
    diagnostics, report = found
    assert {d.code.value for d in diagnostics} == {code}, report
    assert outcome(source) == lark_outcome(source)


# Corners where Lark's contextual lexer reads differently ------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        'rule r { on on, from from from, app app app, "a b" allow if from.on == in and on }',
        "let weekdays = params.weekdays.daily.dates.true.not",
        "let x = a == not",
        "let x = a + not",
        "let x = not not a",
        "let x = not a == b and not c",
        'let x = {a:b::1, ab:cd::ef, f:::1, "k":::1, dead: beef}',
        "let x = [::, ::1, ::/0, 1::2, fe80::1, ::ffff:1.2.3.4, 10.0.0.0/8]",
        "let x = 1.x + 1.5.y + 30s.z",
        'let x = weekdays mon..fri06:00..07:00 "UTC"',
        'let x = weekdays fri"UTC"',
        'let x = dates 2026-12-24T10:00..2026-12-26,2027-01-01 00:00..24:00 "Europe/Berlin"',
        'let x = weekdays # a\n mon # b\n .. # c\n fri "UTC" # d\n . zone',
        "let x=-1\nlet y=a<=-2",
        "let x = (((a))).b",
        "let x = ((a) == (b))",
        "rule r{allow}rule s{deny}",
        "# only a comment",
        "",
        "\n\n   \n",
        "let x = 1 # no newline at the end",
        "let x = 1\r\n# crlf\r\nlet y = 2\r\n",
        'let x = "é✓𝄞" + "\\u00e9\\uD83D\\uDE00\\"\\\\\\/"',
        'let x = "\\\\ud800" + "\\u0000\\u007f\\u0085"',
        f"let x = [{LARGEST}, -{LARGEST}, {LARGEST}.0, 1.{LARGEST}]",
        f"let x = 1{'0' * 303}d + 9{'0' * 306}s9{'0' * 306}s",
    ],
)
def test_contextual_corners_parse_the_same(source: str) -> None:
    assert_same_as_lark(source)


def test_a_keyword_glued_to_a_name_is_left_to_lark() -> None:
    # After an operand Lark allows no name, so it reads `lety` as `let y`: the fast parser declines.
    source = "let x = a\nlety = 1"
    assert fast_tree(source) is None
    assert outcome(source) == lark_outcome(source)
    assert outcome(source)[0] == "tree"


# Nesting ------------------------------------------------------------------------------------------

DEEP: list[Callable[[int], str]] = [
    lambda n: "let x = " + "[" * n + "]" * n,
    lambda n: "let x = " + "(" * n + "a" + ")" * n,
    lambda n: "let x = " + "not " * n + "a",
    lambda n: "let x = " + " or ".join(["a"] * (n + 1)),
    lambda n: "let x = " + " + ".join(["a"] * (n + 1)),
    lambda n: "let x = a" + ".b" * n,
    lambda n: "let x = " + "{k: " * n + "1" + "}" * n,
    lambda n: "rule r { allow if " + "f(" * n + ")" * n + " }",
]


@pytest.mark.parametrize("shape", DEEP, ids=range(len(DEEP)))
def test_nesting_within_the_limit_parses_the_same(shape: Callable[[int], str]) -> None:
    for depth in (1, 10, 40):
        assert_same_as_lark(shape(depth))


@pytest.mark.parametrize("shape", DEEP, ids=range(len(DEEP)))
@pytest.mark.parametrize("depth", [MAX_NESTING - 2, MAX_NESTING - 1, MAX_NESTING, MAX_NESTING + 1])
def test_nesting_at_the_limit_is_reported_as_lark_reports_it(
    shape: Callable[[int], str], depth: int
) -> None:
    assert_fast_path_changes_nothing(shape(depth))


@pytest.mark.parametrize("shape", DEEP, ids=range(len(DEEP)))
def test_very_deep_nesting_is_left_to_lark_without_recursing(shape: Callable[[int], str]) -> None:
    assert parse_fast(shape(100_000), MAX_NESTING) is None
