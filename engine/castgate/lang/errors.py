"""Policy diagnostics: one error type, stable codes, and a caret under the spot.

Every problem the toolchain reports, from a stray character to a vendor that cannot render a
response key, becomes a :class:`Diagnostic`. Codes are stable: tools and documentation refer to
them, so a code is never reused for a different problem.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Code(StrEnum):
    # E1xx: the text is not a policy
    SYNTAX = "E101"
    UNEXPECTED_END = "E102"
    BAD_STRING = "E103"
    # E2xx: names
    UNKNOWN_NAME = "E201"
    UNKNOWN_FUNCTION = "E202"
    UNKNOWN_FIELD = "E203"
    UNKNOWN_ACTION = "E204"
    UNKNOWN_VENDOR = "E205"
    DUPLICATE_RULE = "E206"
    DUPLICATE_LET = "E207"
    DUPLICATE_KEY = "E208"
    # E3xx: types and values
    TYPE_MISMATCH = "E301"
    ARGUMENT_COUNT = "E302"
    NOT_CONSTANT = "E303"
    BAD_REGEX = "E304"
    BAD_ADDRESS = "E305"
    UNKNOWN_ZONE = "E306"
    BAD_TIME = "E307"
    SECRET_MISUSE = "E308"
    NUMBER_TOO_LARGE = "E309"
    # E4xx: files and the environment
    FILE_UNREADABLE = "E401"
    PATH_ESCAPES = "E402"
    ENV_UNSET = "E403"
    BAD_LIST_LINE = "E404"
    NO_POLICIES = "E405"
    # E5xx: response data
    UNRENDERABLE_KEY = "E501"
    BAD_RESPONSE = "E502"


#: Control characters as their pictures (U+2400...); the C1 controls, which have none, and
#: surrogates (no characters) as U+FFFD.
_VISIBLE = (
    {code: 0x2400 + code for code in range(0x20)}
    | {0x7F: 0x2421}
    | dict.fromkeys(range(0x80, 0xA0), 0xFFFD)
    | dict.fromkeys(range(0xD800, 0xE000), 0xFFFD)
)


#: The most columns of a source line a diagnostic shows.
_SHOWN_COLUMNS = 120


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem, anchored at ``file:line:column`` (1-based) with the source line it is on."""

    code: Code
    message: str
    file: str
    line: int
    column: int
    source_line: str = ""
    #: How many characters the caret underline spans (at least one).
    width: int = 1
    hint: str = ""

    @property
    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.file, self.line, self.column, self.code.value)

    def render(self) -> str:
        """``file:line:col: code: message``, the source line, a caret under the spot, a hint."""
        head = f"{self.file}:{self.line}:{self.column}: {self.code.value}: {self.message}"
        # Messages quote policy text (a zone name, a pattern): its control characters too must
        # not act on the terminal.
        lines = [head.translate(_VISIBLE)]
        if self.source_line:
            # A tab is one column wide, as it counts; other control characters show as their
            # pictures, one column wide too, rather than acting on the terminal.
            text = self.source_line.rstrip("\r\n").expandtabs(1).translate(_VISIBLE)
            width = max(1, min(self.width, len(text) - self.column + 1))
            start = self.column - 1
            if len(text) > _SHOWN_COLUMNS:
                # A long line (a 5,000-digit number, generated rules) is shown around the spot.
                first = 0
                if start >= _SHOWN_COLUMNS // 2:
                    first = min(start - _SHOWN_COLUMNS // 3, len(text) - _SHOWN_COLUMNS)
                last = first + _SHOWN_COLUMNS
                text = ("…" if first else "") + text[first:last] + ("…" if last < len(text) else "")
                start = start - first + (1 if first else 0)
                width = min(width, last - (self.column - 1))
            gutter = f"{self.line:>4} | "
            lines.append(f"{gutter}{text}")
            caret = " " * (len(gutter) - 2) + "| " + " " * start
            lines.append(caret + "^" * max(1, width))
        if self.hint:
            lines.append(f"     = {self.hint}")
        return "\n".join(lines)


class PolicyError(Exception):
    """A policy set that does not compile. ``diagnostics`` holds every problem found, sorted."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = sorted(diagnostics, key=lambda d: d.sort_key)
        count = len(self.diagnostics)
        super().__init__(f"{count} error{'s' if count != 1 else ''} in policy")

    def report(self) -> str:
        """Every diagnostic rendered, then a count, as ``castgate check`` prints it."""
        parts = [d.render() for d in self.diagnostics]
        parts.append(str(self))
        return "\n\n".join(parts)


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """A ``did you mean`` hint for ``word`` among ``candidates``; ``""`` when none is close."""
    names = sorted(set(candidates) - {word})
    close = difflib.get_close_matches(word, names, n=3, cutoff=0.6)
    if not close and len(word) >= 3:
        close = [n for n in names if n.lower() == word.lower()][:1]
    if not close:
        return ""
    quoted = " or ".join(f"`{c}`" for c in close)
    return f"did you mean {quoted}?"
