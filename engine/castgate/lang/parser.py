"""Text to syntax tree: the fast hand-written parser of :mod:`castgate.lang.fast_parser` for text
that parses cleanly, and otherwise the Lark LALR parser (the reference, ``grammar.lark``), a
transformer that only builds nodes, and the mapping of every Lark error onto a
:class:`~castgate.lang.errors.Diagnostic`."""

from __future__ import annotations

import re
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)
from lark.tree import Meta

from castgate.lang import ast
from castgate.lang.errors import Code, Diagnostic, PolicyError, did_you_mean
from castgate.lang.fast_parser import (
    MAX_NUMBER,
    duration_seconds,
    nested_beyond,
    number_value,
    parse_fast,
    string_value,
)

__all__ = ["MAX_NESTING", "duration_seconds", "parse_policy"]

_comments: ContextVar[list[Token]] = ContextVar("castgate_policy_comments")


def _collect_comment(token: Token) -> Token:
    _comments.get().append(token)
    return token


@cache
def _lark() -> Lark:
    # Built on first use, not at import: importing castgate must stay cheap.
    grammar = files("castgate.lang").joinpath("grammar.lark").read_text(encoding="utf-8")
    return Lark(
        grammar,
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=True,
        lexer_callbacks={"COMMENT": _collect_comment},
    )


#: How deeply expressions may nest. Real policies stay far below; the checker and compiler walk
#: trees recursively, so a bound here keeps them within Python's recursion limit.
MAX_NESTING = 100


def parse_policy(source: str, path: str) -> ast.PolicyFile:
    """Parse one policy file. Raises :class:`PolicyError` with every syntax error found."""
    fast = parse_fast(source, MAX_NESTING)
    if fast is not None:
        items, comments = fast
        return ast.PolicyFile(path=path, source=source, items=items, comments=comments)
    # Something is wrong (or unusual): Lark parses it again, and its errors are the ones reported.
    items, comments, errors = _parse_items(source, path)
    for item in items:
        too_deep = nested_beyond(item, MAX_NESTING)
        if too_deep is not None:
            errors.append(
                Diagnostic(
                    Code.SYNTAX,
                    f"an expression is nested more than {MAX_NESTING} levels deep",
                    path,
                    too_deep.line,
                    too_deep.column,
                    _line_of(source, too_deep.line),
                    hint="split it into named parts with `let`",
                )
            )
    if errors:
        raise PolicyError(errors)
    return ast.PolicyFile(path=path, source=source, items=items, comments=comments)


def _parse_items(
    source: str, path: str
) -> tuple[tuple[ast.Let | ast.Rule, ...], tuple[ast.Comment, ...], list[Diagnostic]]:
    try:
        items, comments = _parse_text(source)
    except _BadLiterals as bad:
        # The whole text parsed: every literal the tree builder refused is already known.
        return (), (), [problem.diagnostic(source, path) for problem in bad.problems]
    except (UnexpectedInput, _TooDeep) as first:
        # Report every broken statement, not only the first: parse each top-level statement on
        # its own. Statements start at a line whose first word is `rule` or `let`.
        return (), (), _errors_per_statement(source, path, first)
    return items, comments, []


class _TooDeep(Exception):  # noqa: N818 - named for what it reports, like Lark's errors
    """An expression nested beyond what the tree builder can walk, reported like a syntax error."""

    def __init__(self, text: str) -> None:
        super().__init__("expression nested too deeply")
        self.line = text.count("\n", 0, len(text) - len(text.lstrip())) + 1
        self.column = 1


@dataclass(frozen=True, slots=True)
class _Problem:
    """A literal the grammar accepts but that has no value: where it is and what is wrong."""

    code: Code
    message: str
    line: int
    column: int
    width: int
    hint: str = ""

    def diagnostic(self, source: str, path: str) -> Diagnostic:
        source_line = _line_of(source, self.line)
        return Diagnostic(
            self.code,
            self.message,
            path,
            self.line,
            self.column,
            source_line,
            width=self.width,
            hint=self.hint,
        )


class _BadLiterals(Exception):  # noqa: N818 - named for what it reports, like Lark's errors
    """Literals the tree builder could not turn into values: a control character in a string, a
    number too large; raised once the whole text is built, with every such literal in it."""

    def __init__(self, problems: list[_Problem]) -> None:
        super().__init__(f"{len(problems)} bad literal(s)")
        self.problems = problems


def _parse_text(text: str) -> tuple[tuple[ast.Let | ast.Rule, ...], tuple[ast.Comment, ...]]:
    collected: list[Token] = []
    token = _comments.set(collected)
    try:
        tree = _lark().parse(text)
        builder = _Builder(visit_tokens=False)
        items = tuple(builder.transform(tree).children)
    except (RecursionError, VisitError) as err:
        if isinstance(err, VisitError) and not isinstance(err.orig_exc, RecursionError):
            raise
        raise _TooDeep(text) from None
    finally:
        _comments.reset(token)
    if builder.problems:
        raise _BadLiterals(builder.problems)
    comments = tuple(ast.Comment(_token_span(t), str(t)) for t in collected)
    return items, comments


_STATEMENT_START = re.compile(r"^[ \t]*(rule|let)\b", re.MULTILINE)


def _errors_per_statement(
    source: str, path: str, first: UnexpectedInput | _TooDeep
) -> list[Diagnostic]:
    starts = [m.start() for m in _STATEMENT_START.finditer(source)]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    errors: list[Diagnostic] = []
    for begin, end in zip(starts, [*starts[1:], len(source)], strict=True):
        # Padding with the newlines before the chunk keeps Lark's line numbers absolute.
        chunk = "\n" * source.count("\n", 0, begin) + source[begin:end]
        try:
            _parse_text(chunk)
        except _BadLiterals as bad:
            errors.extend(problem.diagnostic(source, path) for problem in bad.problems)
        except (UnexpectedInput, _TooDeep) as err:
            errors.append(_diagnostic(err, source, path))
    return errors or [_diagnostic(first, source, path)]


# Lark errors -> diagnostics ---------------------------------------------------------------------

_TERMINAL_DESCRIPTIONS = {
    "NAME": "a name",
    "STRING": 'a "string"',
    "NUMBER": "a number",
    "DURATION": "a duration like 30s or 2h",
    "ADDRESS": "an IP address or CIDR block",
    "DAY": "a weekday (mon, tue, wed, thu, fri, sat, sun)",
    "CLOCK": "a time of day like 06:00",
    "DATE": "a date like 2026-12-24",
    "$END": "the end of the file",
}


def _describe(terminal: str) -> str:
    if terminal in _TERMINAL_DESCRIPTIONS:
        return _TERMINAL_DESCRIPTIONS[terminal]
    try:
        return f"`{_lark().get_terminal(terminal).pattern.value}`"
    except KeyError:
        return terminal


def _keyword(terminal: str) -> str | None:
    try:
        pattern = _lark().get_terminal(terminal).pattern
    except KeyError:
        return None
    value = pattern.value
    if pattern.type == "str" and value.isidentifier():
        return str(value)
    return None


def _diagnostic(err: UnexpectedInput | _TooDeep, source: str, path: str) -> Diagnostic:
    line, column = max(err.line, 1), max(err.column, 1)
    source_line = _line_of(source, line)
    if isinstance(err, UnexpectedCharacters):
        # Read the character from the line: pos_in_stream counts in the padded statement chunk.
        char = source_line[column - 1 : column]
        hint = ""
        if char == "'":
            hint = "strings are written in double quotes"
        elif char in "&|!":
            hint = "use `and`, `or` and `not`"
        elif char == '"':
            return Diagnostic(
                Code.BAD_STRING,
                "unterminated or malformed string",
                path,
                line,
                column,
                source_line,
                hint='close the string on the same line; escapes are \\" \\\\ \\n \\t \\uXXXX',
            )
        expected = sorted({_describe(t) for t in err.allowed or ()})
        # A control character or an odd space is named by its code: printed, it would not show.
        shown = f"`{char}`" if char.isprintable() else f"U+{ord(char):04X}" if char else "``"
        message = f"unexpected character {shown}"
        if expected:
            message += "; expected " + _one_of(expected)
        return Diagnostic(Code.SYNTAX, message, path, line, column, source_line, hint=hint)
    if isinstance(err, UnexpectedEOF) or (
        isinstance(err, UnexpectedToken) and err.token.type == "$END"
    ):
        expected_names = sorted(getattr(err, "expected", ()) or ())
        expected = sorted({_describe(t) for t in expected_names})
        # Point just past the last character written, not at the trailing blank line.
        end_line = source.rstrip().count("\n") + 1
        return Diagnostic(
            Code.UNEXPECTED_END,
            "the file ends in the middle of a statement"
            + (f"; expected {_one_of(expected)}" if expected else ""),
            path,
            end_line,
            len(_line_of(source, end_line).rstrip()) + 1,
            _line_of(source, end_line),
            hint="is a `}` or `)` missing?",
        )
    if isinstance(err, _TooDeep):
        return Diagnostic(
            Code.SYNTAX,
            "an expression is nested too deeply",
            path,
            line,
            column,
            source_line,
            hint="split it into named parts with `let`",
        )
    assert isinstance(err, UnexpectedToken)
    token = err.token
    expected_names = sorted(err.expected or ())
    expected = sorted({_describe(t) for t in expected_names})
    hint = ""
    if token.type == "NAME":
        keywords = [k for k in (_keyword(t) for t in expected_names) if k]
        hint = did_you_mean(str(token), keywords)
    if not hint and str(token) == "=" and any(_keyword_value(t) == "==" for t in expected_names):
        hint = "compare with `==`; a single `=` only appears in `let name = ...`"
    if not hint and str(token) in {"&&", "||", "!"}:
        hint = "use `and`, `or` and `not`"
    return Diagnostic(
        Code.SYNTAX,
        f"unexpected `{token}`; expected {_one_of(expected)}",
        path,
        line,
        column,
        source_line,
        width=max(1, len(str(token))),
        hint=hint,
    )


def _keyword_value(terminal: str) -> str:
    try:
        return str(_lark().get_terminal(terminal).pattern.value)
    except KeyError:
        return ""


def _one_of(options: list[str]) -> str:
    if len(options) == 1:
        return options[0]
    if len(options) > 8:
        return ", ".join(options[:8]) + ", ..."
    return "one of " + ", ".join(options)


def _line_of(source: str, line: int) -> str:
    lines = source.split("\n")
    return lines[line - 1] if 0 < line <= len(lines) else ""


# Tree -> AST ------------------------------------------------------------------------------------


def _span(meta: Meta) -> ast.Span:
    return ast.Span(meta.line, meta.column, meta.end_line, meta.end_column)


def _token_span(token: Token) -> ast.Span:
    return ast.Span(
        token.line or 1,
        token.column or 1,
        token.end_line or token.line or 1,
        token.end_column or token.column or 1,
    )


# What a string may hold only escaped, and how to write it instead.
_SHORT_ESCAPES = {"\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
# The pieces of a STRING token after its opening quote: an escape (a \u one with the low half of
# a surrogate pair after it, if there is one) or a character.
_STRING_PIECE = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}(?:\\u[dD][c-fC-F][0-9a-fA-F]{2})?|\\u[0-9a-fA-F]{4}|\\.|.",
    re.DOTALL,
)
_NUMBER_LIMIT_HINT = (
    f"a number, or a duration in seconds, is at most about {MAX_NUMBER:.1e}".replace("e+", "e")
    + " (309 digits)"
)


def _string_problem(token: Token) -> _Problem:
    """Why ``string_value`` refuses ``token``, pointing at the character or escape."""
    text = str(token)
    line, column = token.line or 1, token.column or 1
    for piece in _STRING_PIECE.finditer(text, 1, len(text) - 1):
        at, escape = column + piece.start(), piece.group()
        if len(escape) == 1 and (ord(escape) < 0x20 or 0x7F <= ord(escape) <= 0x9F):
            spelled = _SHORT_ESCAPES.get(escape, f"\\u{ord(escape):04x}")
            return _Problem(
                Code.BAD_STRING,
                f"control character U+{ord(escape):04X} in a string: write {spelled}",
                line,
                at,
                1,
            )
        if len(escape) in (1, 6) and _is_surrogate(escape):
            shown = escape if len(escape) == 6 else f"U+{ord(escape):04X}"
            return _Problem(
                Code.BAD_STRING,
                f"lone surrogate `{shown}` in a string: it is half of a pair and no character",
                line,
                at,
                len(escape),
                hint="a character past U+FFFF is written as itself or as a pair of escapes, "
                "like `\\ud83d\\ude00`",
            )
    # Not reached for a token of the grammar's STRING: nothing else makes JSON refuse one.
    return _Problem(Code.BAD_STRING, "malformed string", line, column, len(text))


def _is_surrogate(piece: str) -> bool:
    code = int(piece[2:], 16) if len(piece) == 6 else ord(piece)
    return 0xD800 <= code <= 0xDFFF


def _too_large(token: Token, what: str) -> _Problem:
    text = str(token)
    if what == "duration":
        message = "duration literal too large"
    else:
        digits = len(text.lstrip("-").partition(".")[0])
        message = (
            f"number literal too large: {digits} digits before the point"
            if "." in text
            else f"integer literal too long: {digits} digits"
        )
    return _Problem(
        Code.NUMBER_TOO_LARGE,
        message,
        token.line or 1,
        token.column or 1,
        len(text),
        hint=_NUMBER_LIMIT_HINT,
    )


@v_args(meta=True)
class _Builder(Transformer[Token, Any]):
    """Builds :mod:`castgate.lang.ast` nodes. It decides nothing: no checks, no folding. A literal
    that has no value (a control character in a string, a number too large) is noted in
    ``problems``, a stand-in value built in its place, and the caller raises."""

    def __init__(self, visit_tokens: bool = True) -> None:
        super().__init__(visit_tokens)
        self.problems: list[_Problem] = []

    def _text(self, token: Token) -> str:
        try:
            return string_value(str(token))
        except ValueError:
            self.problems.append(_string_problem(token))
            return ""

    def _string(self, token: Token) -> ast.String:
        return ast.String(_token_span(token), self._text(token), str(token))

    # statements

    def let_stmt(self, meta: Meta, children: list[Any]) -> ast.Let:
        name, value = children
        return ast.Let(_span(meta), str(name), _token_span(name), value)

    def rule_stmt(self, meta: Meta, children: list[Any]) -> ast.Rule:
        name, *selectors, effect = children
        return ast.Rule(_span(meta), str(name), _token_span(name), tuple(selectors), effect)

    def _selector(self, kind: str, meta: Meta, words: list[Token]) -> ast.Selector:
        return ast.Selector(
            _span(meta),
            kind,
            tuple(
                ast.Word(_token_span(w), self._text(w) if w.type == "STRING" else str(w))
                for w in words
            ),
        )

    def on_actions(self, meta: Meta, children: list[Token]) -> ast.Selector:
        return self._selector("on", meta, children)

    def from_vendors(self, meta: Meta, children: list[Token]) -> ast.Selector:
        return self._selector("from", meta, children)

    def in_apps(self, meta: Meta, children: list[Token]) -> ast.Selector:
        return self._selector("app", meta, children)

    def allow(self, meta: Meta, children: list[Any]) -> ast.Effect:
        data, condition = children
        return ast.Effect(_span(meta), "allow", None, data, condition)

    def deny(self, meta: Meta, children: list[Any]) -> ast.Effect:
        reason, condition = children
        said = self._string(reason) if reason is not None else None
        return ast.Effect(_span(meta), "deny", said, None, condition)

    def with_data(self, meta: Meta, children: list[Any]) -> ast.ObjectExpr:
        return children[0]  # type: ignore[no-any-return]

    def condition(self, meta: Meta, children: list[Any]) -> Any:
        return children[0]

    # expressions

    def _binary(self, meta: Meta, children: list[Any], op: str) -> ast.Compare:
        left, right = children
        return ast.Compare(_span(meta), op, left, right)

    def eq(self, meta: Meta, c: list[Any]) -> ast.Compare:
        return self._binary(meta, c, "==")

    def ne(self, meta: Meta, c: list[Any]) -> ast.Compare:
        return self._binary(meta, c, "!=")

    def lt(self, meta: Meta, c: list[Any]) -> ast.Compare:
        return self._binary(meta, c, "<")

    def le(self, meta: Meta, c: list[Any]) -> ast.Compare:
        return self._binary(meta, c, "<=")

    def gt(self, meta: Meta, c: list[Any]) -> ast.Compare:
        return self._binary(meta, c, ">")

    def ge(self, meta: Meta, c: list[Any]) -> ast.Compare:
        return self._binary(meta, c, ">=")

    def in_(self, meta: Meta, c: list[Any]) -> ast.Compare:
        return self._binary(meta, c, "in")

    def not_in(self, meta: Meta, c: list[Any]) -> ast.Compare:
        return self._binary(meta, c, "not_in")

    def matches(self, meta: Meta, c: list[Any]) -> ast.Compare:
        return self._binary(meta, c, "matches")

    def startswith(self, meta: Meta, c: list[Any]) -> ast.Compare:
        return self._binary(meta, c, "startswith")

    def endswith(self, meta: Meta, c: list[Any]) -> ast.Compare:
        return self._binary(meta, c, "endswith")

    def contains(self, meta: Meta, c: list[Any]) -> ast.Compare:
        return self._binary(meta, c, "contains")

    def or_(self, meta: Meta, c: list[Any]) -> ast.Logical:
        return ast.Logical(_span(meta), "or", c[0], c[1])

    def and_(self, meta: Meta, c: list[Any]) -> ast.Logical:
        return ast.Logical(_span(meta), "and", c[0], c[1])

    def not_(self, meta: Meta, c: list[Any]) -> ast.Not:
        return ast.Not(_span(meta), c[0])

    def add(self, meta: Meta, c: list[Any]) -> ast.Add:
        return ast.Add(_span(meta), c[0], c[1])

    def attr(self, meta: Meta, c: list[Any]) -> ast.Attr:
        target, name = c
        return ast.Attr(_span(meta), target, str(name), _token_span(name))

    def index(self, meta: Meta, c: list[Any]) -> ast.Index:
        return ast.Index(_span(meta), c[0], c[1])

    def call(self, meta: Meta, c: list[Any]) -> ast.Call:
        function, *args = c
        return ast.Call(_span(meta), function, tuple(a for a in args if a is not None))

    def name(self, meta: Meta, c: list[Token]) -> ast.Name:
        return ast.Name(_span(meta), str(c[0]))

    def string(self, meta: Meta, c: list[Token]) -> ast.String:
        return self._string(c[0])

    def number(self, meta: Meta, c: list[Token]) -> ast.Number:
        text = str(c[0])
        try:
            value = number_value(text)
        except ValueError:
            self.problems.append(_too_large(c[0], "number"))
            value = 0
        return ast.Number(_span(meta), value, text)

    def duration(self, meta: Meta, c: list[Token]) -> ast.Duration:
        try:
            seconds = duration_seconds(str(c[0]))
        except ValueError:
            self.problems.append(_too_large(c[0], "duration"))
            seconds = 0.0
        return ast.Duration(_span(meta), seconds, str(c[0]))

    def address(self, meta: Meta, c: list[Token]) -> ast.Address:
        return ast.Address(_span(meta), str(c[0]))

    def true(self, meta: Meta, c: list[Any]) -> ast.Bool:
        return ast.Bool(_span(meta), True)

    def false(self, meta: Meta, c: list[Any]) -> ast.Bool:
        return ast.Bool(_span(meta), False)

    def list_(self, meta: Meta, c: list[Any]) -> ast.ListExpr:
        return ast.ListExpr(_span(meta), tuple(x for x in c if x is not None))

    def obj(self, meta: Meta, c: list[Any]) -> ast.ObjectExpr:
        return ast.ObjectExpr(_span(meta), tuple(p for p in c if p is not None))

    def pair(self, meta: Meta, c: list[Any]) -> ast.Pair:
        key, value = c
        text = self._text(key) if key.type == "STRING" else str(key)
        return ast.Pair(_span(meta), text, value)

    # time windows

    def weekly_window(self, meta: Meta, c: list[Any]) -> ast.Window:
        *days, clock, zone = c
        return ast.Window(_span(meta), "weekdays", tuple(days), (), clock, self._string(zone))

    def daily_window(self, meta: Meta, c: list[Any]) -> ast.Window:
        clock, zone = c
        return ast.Window(_span(meta), "daily", (), (), clock, self._string(zone))

    def dated_window(self, meta: Meta, c: list[Any]) -> ast.Window:
        *dates, clock, zone = c
        return ast.Window(_span(meta), "dates", (), tuple(dates), clock, self._string(zone))

    def day_span(self, meta: Meta, c: list[Token | None]) -> ast.DaySpan:
        first, last = c
        return ast.DaySpan(_span(meta), str(first), str(last) if last is not None else None)

    def time_span(self, meta: Meta, c: list[Token]) -> ast.ClockSpan:
        return ast.ClockSpan(_span(meta), str(c[0]), str(c[1]))

    def date_span(self, meta: Meta, c: list[Token | None]) -> ast.DateSpan:
        first, last = c
        return ast.DateSpan(_span(meta), str(first), str(last) if last is not None else None)
