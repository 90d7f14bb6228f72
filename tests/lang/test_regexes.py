"""``matches`` answers as RE2 does, whichever engine runs it: RE2, or Python's ``re`` for a pattern
proven to mean the same there and to run without backtracking."""

from __future__ import annotations

import re
import re._constants as sre_constants
import re._parser as sre_parser
from typing import Any

import pytest
import re2
from hypothesis import given, settings
from hypothesis import strategies as st

from castgate.lang.regexes import Pattern, ascii_equivalent, compile_pattern, finder


@pytest.mark.parametrize(
    ("pattern", "method", "written"),
    [
        ("^[a-z0-9_-]{1,64}$", "match", r"[\x2d0-9_a-z]{1,64}+\Z"),
        ("^cam[0-9]+$", "match", r"cam[0-9]++\Z"),
        ("cam[0-9]", "search", "cam[0-9]"),
        (r"\.m3u8$", "search", r"\x2em3u8\Z"),
        # RE2's \d, \w and \s are ASCII, and its \s has no \v
        (r"^\d\w\s", "match", r"[0-9][0-9A-Z_a-z][\x09-\x0a\x0c-\x0d\x20]"),
        # . takes anything but a newline; a negated class takes newlines too
        ("^.[^/]$", "match", r"[\x00-\x09\x0b-\U0010ffff][\x00-\x2e0-\U0010ffff]\Z"),
        (r"^v1\.[A-Za-z0-9]{13,}$", "match", r"v1\x2e[0-9A-Za-z]{13,}+\Z"),
        ("^[a-z]+[0-9]*X?$", "match", r"[a-z]++[0-9]*+X?+\Z"),
        ("^a+?b", "match", "a++b"),  # lazy or greedy: whether a match exists is the same
        ("x{2}[ab]{0,3}", "search", "x{2}[a-b]{0,3}+"),
        (r"\\$", "search", r"\x5c\Z"),  # an escaped backslash, then the end anchor
        ("$", "search", r"\Z"),
        ("", "search", ""),
    ],
)
def test_patterns_in_the_proven_subset_are_written_for_re(
    pattern: str, method: str, written: str
) -> None:
    matcher = ascii_equivalent(pattern)
    assert matcher is not None
    assert matcher.__name__ == method
    assert matcher.__self__.pattern == written  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "pattern",
    [
        # backtracking could take exponential or polynomial time
        "^(a+)+$",
        "^a*a*a*a*b$",
        "^[a-z]*[a-z0-9]*$",
        "^.*x$",
        "^a?a?a?aaa$",
        # an unanchored pattern is tried at every position: each try must be bounded
        "cam[0-9]+",
        "a*?b",
        "[a-z]{40}[0-9]{25}",  # 65 characters an attempt
        "." * 65,
        # syntax outside the subset, or read differently by the two engines
        "^(cam|mic)$",
        "a|b",
        "(?i)cam",
        r"\bcam",
        r"\x41",
        r"\pL",
        "[[:alpha:]]",
        "[]a]",
        "[a-c-e]",
        r"[\d-z]",
        "a{,3}",
        "a{01}",  # RE2 reads braces around a count with a leading zero as text
        "a{1,02}",
        "a{2,01}",
        "^a{1٣}$",  # ... or with a digit that is not ASCII
        "a{2",
        "x]",
        "a^b",
        "a$b",
        r"[^\d\D]",
    ],
)
def test_other_patterns_are_left_to_re2(pattern: str) -> None:
    re2.compile(pattern)  # each one is valid RE2
    assert ascii_equivalent(pattern) is None


_ATOMS = [
    "a", "b", "-", "_", ".", r"\.", r"\-", r"\n", r"\d", r"\D", r"\w", r"\s", r"\S",
    "[a-c]", "[^b]", "[a-]", "[-b0-9]", r"[\d_]", r"[^\s]", r"[\.a]",
    "(a|b)", "[[:alpha:]]", r"\x41", "]", "{",
]  # fmt: skip
_QUANTIFIERS = [
    "", "", "", "?", "*", "+", "{2}", "{1,3}", "{2,}", "*?", "+?", "{,2}", "{01}", "{0}",
    "{2,01}", "{٣}", "{1,٣}",
]  # fmt: skip
_patterns = st.builds(
    lambda start, parts, end: start + "".join(parts) + end,
    st.sampled_from(["", "^"]),
    st.lists(st.tuples(st.sampled_from(_ATOMS), st.sampled_from(_QUANTIFIERS)).map("".join),
             max_size=5),
    st.sampled_from(["", "$"]),
)  # fmt: skip
_texts = st.lists(st.text(alphabet="ab-_.09xA \n\t\x0b", max_size=10), min_size=1, max_size=20)


def _re2_finds(pattern: str, text: str) -> bool:
    return re2.search(pattern, text) is not None


@settings(max_examples=400, deadline=None)
@given(_patterns, _texts)
def test_re_answers_as_re2_does_on_ascii_text(pattern: str, texts: list[str]) -> None:
    try:
        re2.compile(pattern)
    except re2.error:
        return
    matcher = ascii_equivalent(pattern)
    if matcher is None:
        return
    for text in texts:
        assert (matcher(text) is not None) is _re2_finds(pattern, text), (pattern, text)


@settings(max_examples=400, deadline=None)
@given(_patterns)
def test_nothing_re_runs_can_backtrack_into_a_quantifier(pattern: str) -> None:
    matcher = ascii_equivalent(pattern)
    if matcher is not None:
        _assert_no_backtracking(sre_parser.parse(matcher.__self__.pattern).data)  # type: ignore[attr-defined]


def _assert_no_backtracking(items: list[tuple[Any, Any]]) -> None:
    for op, value in items:
        if op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
            low, high, inner = value
            assert low == high, f"{op} {value}"
            _assert_no_backtracking(inner.data)
        elif op in (sre_constants.BRANCH, sre_constants.SUBPATTERN):
            raise AssertionError(f"{op} in a pattern for re")


def test_a_pattern_anchored_at_the_end_refuses_a_trailing_newline() -> None:
    # re's `$` would also match before a final newline; RE2's means the end of the text
    found = finder(compile_pattern("^[a-z]+$"))
    assert found("cam")
    assert not found("cam\n")


def test_non_ascii_text_is_searched_by_re2() -> None:
    asked: list[str] = []

    def spy(text: str) -> re.Match[str] | None:
        asked.append(text)
        return None

    found = finder(Pattern("é", re2.compile("é"), spy))
    assert found("café")  # by RE2: the spy would have said no
    assert asked == []
    assert not found("cafe")
    assert asked == ["cafe"]


def test_the_same_pattern_compiled_has_both_engines() -> None:
    pattern = compile_pattern("^[a-z]{2}$")
    assert pattern.ascii() is not None
    assert pattern.regex.search("ab") is not None
    assert compile_pattern("^(a|b)$").ascii() is None
    with pytest.raises(re2.error):
        compile_pattern("(a)\\1")
