"""How ``matches`` runs: RE2 defines what a pattern means; Python's ``re`` runs the simple ones.

Patterns are RE2 (linear time, whatever the text). But a call into google-re2 costs about
0.5 us (the text encoded to UTF-8, the call through pybind11, a list of spans built), while
Python's ``re`` answers a simple pattern in about 0.1 us: on the publish path of a typical policy
the regex was the largest cost left. So :func:`ascii_equivalent` rewrites a pattern for ``re``
when it can prove two things, and :func:`finder` uses that for ASCII text; anything else (a
pattern outside the proven shape, a text with any non-ASCII character) goes to RE2.

1. *Same meaning.* Only a small subset of the syntax is accepted, where both engines agree:
   literals, ``.``, classes of literals and ranges, ``\\d \\w \\s`` (and negations; ASCII, as in
   RE2), quantifiers, ``^`` first and ``$`` last. Each atom becomes an explicit code point set,
   written out for ``re`` range by range, so no escape or class is left for ``re`` to read its own
   way; RE2's ``$`` (end of text) becomes ``\\Z``, not ``$`` (which ``re`` also lets match before a
   final newline).
2. *No catastrophic backtracking.* Every quantifier that can repeat a variable number of times
   must be followed by something that cannot start with a character it takes (up to and
   including the first atom that must match at least once). Then giving characters back can
   never lead to a match, so the quantifier is made possessive and ``re`` never backtracks into
   it: one attempt is linear in the text. An unanchored pattern is attempted at every position,
   so it is accepted only if one attempt is bounded (every quantifier has an upper bound, at
   most :data:`_MOST_CHARACTERS_PER_ATTEMPT` characters in all).

Differential tests (``tests/lang/test_regexes.py``) hold the two engines to the same answers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import Any

import re2

#: An ASCII-equivalent matcher: ``re.Pattern.match`` or ``.search``.
Matcher = Callable[[str], "re.Match[str] | None"]

#: Characters an unanchored pattern may take in one attempt: ``re`` tries each start position,
#: so a text of n characters costs up to n times this many steps. At 256, a pattern of 256 dots
#: and a letter took 40-80 ms on 50,000 characters, where RE2 takes 1-2 ms.
_MOST_CHARACTERS_PER_ATTEMPT = 64

_MAX_CODE_POINT = 0x10FFFF
#: A set of code points as sorted, disjoint, non-adjacent inclusive ranges.
_Ranges = tuple[tuple[int, int], ...]
_DIGITS: _Ranges = ((0x30, 0x39),)
_WORD: _Ranges = ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A))
_SPACE: _Ranges = ((0x09, 0x0A), (0x0C, 0x0D), (0x20, 0x20))  # RE2's \s: no \v
_PERL_CLASSES = {"d": _DIGITS, "w": _WORD, "s": _SPACE}
_CONTROL_ESCAPES = {"a": 0x07, "f": 0x0C, "t": 0x09, "n": 0x0A, "r": 0x0D, "v": 0x0B}
_SIMPLE_QUANTIFIERS = {"?": (0, 1), "*": (0, None), "+": (1, None)}
_UNKNOWN = object()
#: ``{n}``, ``{n,}``, ``{n,m}`` as RE2 reads them: ASCII digits (``\d`` here would take any
#: Unicode digit, and ``int`` reads those), no leading zero (RE2 reads ``{01}`` as literal text).
_REPETITION = re.compile(r"\{(0|[1-9][0-9]*)(,(0|[1-9][0-9]*)?)?\}")


class _OutsideSubsetError(Exception):
    """The pattern is outside the subset proven to mean the same in both engines."""


class Pattern:
    """A ``matches`` pattern: RE2's, compiled when the policy loads; ``re``'s, when first used."""

    __slots__ = ("_ascii", "regex", "text")

    def __init__(self, text: str, regex: Any, ascii_matcher: object = _UNKNOWN) -> None:
        self.text = text
        #: The ``re2.compile`` result: what the pattern means, and how non-ASCII text is searched.
        self.regex = regex
        self._ascii = ascii_matcher

    def ascii(self) -> Matcher | None:
        """How ASCII text is searched, if :func:`ascii_equivalent` found a way; else ``None``.
        Made on first use: ``re.compile`` takes about 0.1 ms a pattern, which would add about
        0.15 s to loading 10,000 rules, most of whose patterns no event may ever reach."""
        if self._ascii is _UNKNOWN:
            self._ascii = ascii_equivalent(self.text)
        return self._ascii  # type: ignore[return-value]


def compile_pattern(text: str) -> Pattern:
    """Compile an RE2 pattern; raises ``re2.error`` if RE2 refuses it."""
    return Pattern(text, re2.compile(text, _re2_options()))


@cache
def _re2_options() -> re2.Options:
    # Errors are reported as diagnostics; RE2's own logging would repeat them on stderr.
    options = re2.Options()
    options.log_errors = False
    return options


def finder(pattern: Pattern) -> Callable[[str], bool]:
    """Whether ``pattern`` matches anywhere in a text."""
    program, unanchored = re2_program(pattern.regex)
    search = pattern.regex.search
    fast: Any = _UNKNOWN  # pattern.ascii(), asked on the first call, not when the policy loads

    def found(text: str) -> bool:
        nonlocal fast
        if fast is _UNKNOWN:
            fast = pattern.ascii()
        if fast is not None and text.isascii():
            return fast(text) is not None
        if program is None:  # another google-re2 layout: the public, slow way
            return search(text) is not None
        data = text.encode("utf-8")
        return bool(program.Match(unanchored, data, 0, len(data))[0][0] != -1)

    return found


def re2_program(regex: Any) -> tuple[Any, Any]:
    """The RE2 object under ``regex`` and the flag for an unanchored match, if google-re2 has the
    layout known here; else ``(None, None)``. Its ``Match`` answers without building a match
    object: google-re2's ``search`` runs a Python generator, decodes spans and builds a
    ``_Match`` per call (about 3 us); the object underneath answers in about 0.5 us."""
    program = getattr(regex, "_regexp", None)
    anchors = getattr(re2, "_Anchor", None)
    if program is None or anchors is None:
        return None, None
    return program, anchors.UNANCHORED


def ascii_equivalent(pattern: str) -> Matcher | None:
    """A ``re`` matcher that answers as RE2 does for ``pattern`` on every ASCII text, in time
    linear in the text, or ``None`` if that cannot be shown (the module docstring says how).
    ``pattern`` must be one RE2 accepted."""
    try:
        starts, atoms, ends = _Reader(pattern).read()
        _require_no_backtracking(starts, atoms)
    except _OutsideSubsetError:
        return None
    written = "".join(_written(ranges, low, high) for ranges, low, high in atoms)
    try:
        compiled = re.compile(written + r"\Z" if ends else written)
    except re.error:  # a reading this module got wrong: RE2 still answers, only slower
        return None
    return compiled.match if starts else compiled.search


# An atom: the code points it takes, and how many times (high None: no limit).
_Atom = tuple[_Ranges, int, "int | None"]


class _Reader:
    """Reads the supported subset of RE2 syntax into atoms; raises :class:`_OutsideSubsetError` at
    anything else (groups, alternation, flags, assertions, POSIX classes, ``\\x``, ``\\p``)."""

    def __init__(self, pattern: str) -> None:
        self.text = pattern
        self.at = 0

    def read(self) -> tuple[bool, list[_Atom], bool]:
        """Whether the pattern starts with ``^``, its atoms, whether it ends with ``$``."""
        text = self.text
        starts = text.startswith("^")
        ends = text.endswith("$") and not _escaped(text, len(text) - 1)
        self.at = 1 if starts else 0
        stop = len(text) - 1 if ends else len(text)
        atoms: list[_Atom] = []
        while self.at < stop:
            ranges = self.atom()
            if not ranges:
                raise _OutsideSubsetError("a class that takes nothing")
            low, high = self.quantifier(stop)
            atoms.append((ranges, low, high))
        return starts, atoms, ends

    def atom(self) -> _Ranges:
        char = self.text[self.at]
        self.at += 1
        if char == "[":
            return self.char_class()
        if char == ".":
            return _complement(((0x0A, 0x0A),))
        if char == "\\":
            return self.escape()
        if char in "^$|?*+(){}]":
            raise _OutsideSubsetError(char)
        return ((ord(char), ord(char)),)

    def quantifier(self, stop: int) -> tuple[int, int | None]:
        text = self.text
        if self.at >= stop:
            return 1, 1
        char = text[self.at]
        if char in _SIMPLE_QUANTIFIERS:
            low, high = _SIMPLE_QUANTIFIERS[char]
            self.at += 1
        elif char == "{":
            found = _REPETITION.match(text, self.at, stop)
            if found is None:  # RE2 reads such a brace as a literal, re not always
                raise _OutsideSubsetError(char)
            low = int(found[1])
            high = low if found[2] is None else int(found[3]) if found[3] else None
            if high is not None and high < low:
                raise _OutsideSubsetError("a repetition RE2 refuses")
            self.at = found.end()
        else:
            return 1, 1
        if self.at < stop and text[self.at] == "?":
            self.at += 1  # lazy: whether a match exists does not depend on it
        if self.at < stop and text[self.at] in "?*+{":
            raise _OutsideSubsetError("repeated quantifier")
        return low, high

    def escape(self) -> _Ranges:
        if self.at >= len(self.text):
            raise _OutsideSubsetError("trailing backslash")
        char = self.text[self.at]
        self.at += 1
        if char in _PERL_CLASSES:
            return _PERL_CLASSES[char]
        if char in "DWS":
            return _complement(_PERL_CLASSES[char.lower()])
        if char in _CONTROL_ESCAPES:
            code = _CONTROL_ESCAPES[char]
            return ((code, code),)
        if char.isascii() and not char.isalnum():
            return ((ord(char), ord(char)),)
        raise _OutsideSubsetError(f"\\{char}")

    def char_class(self) -> _Ranges:
        text = self.text
        negated = text.startswith("^", self.at)
        if negated:
            self.at += 1
        if text.startswith("]", self.at):
            raise _OutsideSubsetError("] first in a class")
        ranges: list[tuple[int, int]] = []
        while True:
            if self.at >= len(text):
                raise _OutsideSubsetError("unclosed class")
            char = text[self.at]
            if char == "]":
                self.at += 1
                break
            if char == "[":
                raise _OutsideSubsetError("[ in a class")
            first = self.class_item()
            if text.startswith("-", self.at) and not text.startswith("-]", self.at):
                self.at += 1
                last = self.class_item()
                if len(first) != 1 or len(last) != 1 or first[0][0] != first[0][1]:
                    raise _OutsideSubsetError("range of a class")
                if last[0][0] != last[0][1] or text.startswith("-", self.at):
                    raise _OutsideSubsetError("range of a class")
                ranges.append((first[0][0], last[0][0]))
            else:
                ranges.extend(first)
        merged = _merged(ranges)
        return _complement(merged) if negated else merged

    def class_item(self) -> _Ranges:
        if self.at >= len(self.text):
            raise _OutsideSubsetError("unclosed class")
        char = self.text[self.at]
        self.at += 1
        if char == "\\":
            return self.escape()
        if char in "[]":
            raise _OutsideSubsetError(char)
        return ((ord(char), ord(char)),)


def _escaped(text: str, index: int) -> bool:
    """Whether ``text[index]`` follows an odd number of backslashes."""
    slashes = 0
    while index - slashes - 1 >= 0 and text[index - slashes - 1] == "\\":
        slashes += 1
    return slashes % 2 == 1


def _require_no_backtracking(starts: bool, atoms: list[_Atom]) -> None:
    for i, (ranges, low, high) in enumerate(atoms):
        if low == high:
            continue
        for following, following_low, _ in atoms[i + 1 :]:
            if _overlap(ranges, following):
                raise _OutsideSubsetError("a quantifier could give back what follows it needs")
            if following_low > 0:
                break
    if starts:
        return
    characters = 0
    for _, _, high in atoms:
        if high is None:
            raise _OutsideSubsetError("unbounded quantifier in an unanchored pattern")
        characters += high
    if characters > _MOST_CHARACTERS_PER_ATTEMPT:
        raise _OutsideSubsetError("unanchored pattern consumes too much per attempt")


def _merged(ranges: list[tuple[int, int]]) -> _Ranges:
    out: list[tuple[int, int]] = []
    for first, last in sorted(ranges):
        if out and first <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], last))
        else:
            out.append((first, last))
    return tuple(out)


def _complement(ranges: _Ranges) -> _Ranges:
    out: list[tuple[int, int]] = []
    start = 0
    for first, last in ranges:
        if first > start:
            out.append((start, first - 1))
        start = last + 1
    if start <= _MAX_CODE_POINT:
        out.append((start, _MAX_CODE_POINT))
    return tuple(out)


def _overlap(a: _Ranges, b: _Ranges) -> bool:
    return any(
        x_first <= y_last and y_first <= x_last for x_first, x_last in a for y_first, y_last in b
    )


def _written(ranges: _Ranges, low: int, high: int | None) -> str:
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
        atom = _char(ranges[0][0])
    else:
        atom = (
            "[" + "".join(_char(a) if a == b else f"{_char(a)}-{_char(b)}" for a, b in ranges) + "]"
        )
    if low == high:
        return atom if low == 1 else f"{atom}{{{low}}}"
    # Possessive: _require_no_backtracking showed that giving characters back never helps.
    if high is None:
        return atom + {0: "*+", 1: "++"}.get(low, f"{{{low},}}+")
    return atom + ("?+" if (low, high) == (0, 1) else f"{{{low},{high}}}+")


def _char(code: int) -> str:
    char = chr(code)
    if char.isascii() and (char.isalnum() or char == "_"):
        return char
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"
