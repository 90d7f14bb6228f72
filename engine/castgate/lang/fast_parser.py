"""The fast path from policy text to syntax tree: a hand-written lexer and recursive-descent parser.

Lark's LALR parser with positions took 2.4 s for the 10,000 rules (213,000 tokens) of the compile
benchmark, and the nesting check over its tree another 0.3 s; this parser builds the very same tree,
spans and comments included, in about 0.4 s, for policies that parse cleanly. It never reports an
error: on anything it does not expect it declines (returns ``None``), and
:mod:`castgate.lang.parser` parses the text again with Lark, which stays the reference
(``grammar.lark``) and alone says what is wrong. ``tests/lang/test_fast_parser.py`` holds the two
to the same trees.

Lark's contextual lexer decides what a word is by what the grammar accepts at that point: ``on``
is a keyword after ``{`` and a field name after ``.``; after a complete operand, where no name is
allowed, it even splits ``lety`` into ``let y``. This lexer reads whole words and the parser gives a
word the meaning Lark would where the grammar allows a name, and declines where it would not (so
the splitting is left to Lark).
"""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import fields, is_dataclass
from typing import Final

from castgate.lang import ast

#: The terminals of ``grammar.lark`` as Lark compiles them; a test holds them equal.
TERMINALS: Final = {
    "ADDRESS": (
        r"(?:(?=[0-9A-Fa-f:]*::?[0-9A-Fa-f])([0-9A-Fa-f]{0,4}:){2,7}"
        r"([0-9A-Fa-f]{0,4}|[0-9]{1,3}(\.[0-9]{1,3}){3})(\/[0-9]{1,3})?(?![0-9A-Za-z_.:])"
        r"|[0-9]{1,3}(\.[0-9]{1,3}){3}(\/[0-9]{1,3})?(?![0-9A-Za-z_.:])"
        r"|::(\/[0-9]{1,3})?(?![0-9A-Za-z_.:]))"
    ),
    "DURATION": r"([0-9]+(ms|s|m|h|d))+(?![0-9A-Za-z_])",
    "NUMBER": r"-?[0-9]+(\.[0-9]+)?(?![0-9A-Za-z_])",
    "NAME": r"[A-Za-z_][A-Za-z0-9_]*",
    "STRING": r'"([^"\\\n]|\\["\\\/bfnrt]|\\u[0-9A-Fa-f]{4})*"',
    "DAY": r"(?:mon|tue|wed|thu|fri|sat|sun)",
    "CLOCK": r"[0-2][0-9]:[0-5][0-9](:[0-5][0-9])?",
    "DATE": r"[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-2][0-9]:[0-5][0-9](:[0-5][0-9])?)?",
    "WS": r"(?:[ \t\x0c\r\n])+",
    "COMMENT": r"#[^\n]*",
}

#: The grammar's punctuation, longest first as Lark tries it; a test holds it equal to Lark's.
PUNCTUATION: Final = (
    "..",
    "==",
    "!=",
    "<=",
    ">=",
    "=",
    "<",
    ">",
    "+",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ",",
    ".",
    ":",
)

# Spaces before a token are skipped in the same match. A newline or comment, with all the layout
# after it, is a match of its own (LAYOUT), so only tokens after one pay for counting lines. All of
# it possessive: a token that fails to match never backtracks into the layout.
_SPACES = r"[ \t\x0c\r]*+"
_LAYOUT = rf"(?:\n|{TERMINALS['COMMENT']})(?:{TERMINALS['WS']}|{TERMINALS['COMMENT']})*+"
# A string without escapes, control characters or surrogates is its own value: no json.loads.
_PLAIN_STRING = r'"[^"\\\x00-\x1f\x7f-\x9f\ud800-\udfff]*"'


def _token_pattern(*terminals: tuple[str, str]) -> re.Pattern[str]:
    alternatives = "|".join(f"(?P<{name}>{pattern})" for name, pattern in terminals)
    return re.compile(f"{_SPACES}(?:(?P<LAYOUT>{_LAYOUT})|{alternatives}|(?P<END>\\Z))")


def _punctuation(marks: tuple[str, ...]) -> str:
    return "|".join(re.escape(mark) for mark in marks)


# In the order Lark tries them where several could match: by priority (ADDRESS, then DURATION),
# then longest first.
_TOKENS = _token_pattern(
    ("ADDRESS", TERMINALS["ADDRESS"]),
    ("DURATION", TERMINALS["DURATION"]),
    ("NUMBER", TERMINALS["NUMBER"]),
    ("NAME", TERMINALS["NAME"]),
    ("PLAIN_STRING", _PLAIN_STRING),
    ("STRING", TERMINALS["STRING"]),
    ("PUNCTUATION", _punctuation(PUNCTUATION)),
)
# Inside a time window, between its keyword and its zone, where Lark expects nothing else.
_WINDOW_TOKENS = _token_pattern(
    ("DATE", TERMINALS["DATE"]),
    ("CLOCK", TERMINALS["CLOCK"]),
    ("DAY", TERMINALS["DAY"]),
    ("PLAIN_STRING", _PLAIN_STRING),
    ("STRING", TERMINALS["STRING"]),
    ("PUNCTUATION", _punctuation(("..", ","))),
)
_NAME = re.compile(TERMINALS["NAME"])
_COLON = re.compile(":")
_COMMENT = re.compile(TERMINALS["COMMENT"])

_STRINGS = frozenset({"PLAIN_STRING", "STRING"})
#: Words that start an operand as keywords; every other word there is a name.
_ATOM_KEYWORDS = frozenset({"true", "false", "weekdays", "daily", "dates"})

# How tightly operators bind, loosest first; an operand alone is a postfix expression.
_OR, _AND, _NOT, _COMPARISON, _SUM, _POSTFIX = range(1, 7)
#: operator -> (how tightly it binds, how tightly its left operand must bind, its name in the tree).
#: Comparisons do not chain (``a == b == c`` is an error), so their left side must bind tighter.
_COMPARISONS = ("==", "!=", "<", "<=", ">", ">=", "in", "matches", "startswith", "endswith")
_BINARY: Final = {
    "or": (_OR, _OR, "or"),
    "and": (_AND, _AND, "and"),
    **{op: (_COMPARISON, _SUM, op) for op in (*_COMPARISONS, "contains")},
    "not": (_COMPARISON, _SUM, "not_in"),  # `not in`
    "+": (_SUM, _SUM, "+"),
}

_DURATION_PART = re.compile(r"([0-9]+)(ms|s|m|h|d)")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
#: The largest number or number of seconds a literal may hold: the largest finite float.
MAX_NUMBER: Final = sys.float_info.max
_SURROGATE = re.compile("[\ud800-\udfff]")
# DEL and the C1 controls: JSON takes them raw, but in a policy they would be invisible.
_RAW_INVISIBLE = re.compile("[\x7f-\x9f]")


def duration_seconds(text: str) -> float:
    """Seconds in a duration literal such as ``1h30m`` or ``500ms``. Raises :class:`ValueError`
    if they are more than :data:`MAX_NUMBER`."""
    try:
        seconds = sum(int(n) * _SECONDS[unit] for n, unit in _DURATION_PART.findall(text))
    except (OverflowError, ValueError):  # an amount past the float range, or past what int() reads
        raise ValueError(f"duration too large: {text}") from None
    if not math.isfinite(seconds):  # finite amounts whose sum is not
        raise ValueError(f"duration too large: {text}")
    return seconds


def number_value(text: str) -> int | float:
    """The value of a NUMBER literal. Raises :class:`ValueError` if it is larger than
    :data:`MAX_NUMBER` (``int()`` itself refuses more than 4,300 digits)."""
    value: int | float = float(text) if "." in text else int(text)
    if not -MAX_NUMBER <= value <= MAX_NUMBER:
        raise ValueError(f"number too large: {text}")
    return value


def string_value(text: str) -> str:
    """The value of a STRING literal (quotes included). Raises :class:`ValueError` for a raw
    control character (C0, which JSON refuses too, DEL or C1: escaped, they are accepted), and
    for a lone surrogate (``"\\ud800"``), which is half of a UTF-16 pair and no character: it
    cannot be encoded, printed or matched."""
    if _RAW_INVISIBLE.search(text):
        raise ValueError(f"a raw control character: {text!r}")
    value = json.loads(text)
    if not isinstance(value, str) or _SURROGATE.search(value):
        raise ValueError(f"not a string of characters: {text}")
    return value


def nested_beyond(item: ast.Let | ast.Rule, limit: int) -> ast.Span | None:
    """Where ``item`` nests deeper than ``limit``, found without recursing."""
    stack: list[tuple[object, int]] = [(item, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > limit and isinstance(node, ast.Node):
            return node.span
        children = (
            node
            if isinstance(node, tuple)
            else ([getattr(node, f.name) for f in fields(node)] if is_dataclass(node) else [])
        )
        step = 0 if isinstance(node, tuple) else 1
        stack.extend(
            (child, depth + step) for child in children if isinstance(child, ast.Node | tuple)
        )
    return None


def parse_fast(
    source: str, max_nesting: int
) -> tuple[tuple[ast.Let | ast.Rule, ...], tuple[ast.Comment, ...]] | None:
    """The items and comments of ``source`` exactly as the Lark parser would build them, or
    ``None`` if the text has an error, nests deeper than ``max_nesting``, or is anything else this
    parser leaves to Lark."""
    parser = _Parser(source, max_nesting)
    try:
        items = parser.policy()
    except _Declined:
        return None
    return items, tuple(parser.comments)


class _Declined(Exception):  # noqa: N818 - not an error: the Lark parser takes over
    pass


class _Parser:
    """One pass over the text with one token of lookahead: the current token is ``kind``/``text``,
    ending at offset ``pos``, at ``line``/``column`` (the line starts at offset ``line_start``).
    Every node built so far ends where the token before it ended, at offset ``prev_pos``.

    Keywords and punctuation are recognised by their text alone: no other token is spelled like
    them (a string keeps its quotes)."""

    __slots__ = (
        "column",
        "comments",
        "kind",
        "line",
        "line_start",
        "max_nesting",
        "nesting",
        "pos",
        "prev_line",
        "prev_line_start",
        "prev_pos",
        "source",
        "text",
        "tokens",
    )

    def __init__(self, source: str, max_nesting: int) -> None:
        self.source = source
        self.max_nesting = max_nesting
        self.comments: list[ast.Comment] = []
        self.kind = ""
        self.text = ""
        self.pos = self.prev_pos = 0
        self.line = self.prev_line = 1
        self.line_start = self.prev_line_start = 0
        self.column = 1
        self.tokens = 0
        self.nesting = 0

    # tokens

    def advance(self, pattern: re.Pattern[str] = _TOKENS) -> None:
        self.prev_pos = pos = self.pos
        match = pattern.match(self.source, pos)
        if match is None:
            raise _Declined
        # Every alternative is a named group, so a match always has one.
        group: int = match.lastindex  # type: ignore[assignment]
        if group == 1:  # LAYOUT
            self.layout(*match.span(1))
            match = pattern.match(self.source, match.end())
            if match is None:
                raise _Declined
            group = match.lastindex  # type: ignore[assignment]
        start, self.pos = match.span(group)
        self.column = start - self.line_start + 1
        self.kind = match.lastgroup  # type: ignore[assignment]
        self.text = match[group]
        self.tokens += 1

    def layout(self, start: int, end: int) -> None:
        """Newlines and comments between tokens: count the lines, keep the comments."""
        source = self.source
        if source.find("#", start, end) >= 0:
            for comment in _COMMENT.finditer(source, start, end):
                at = comment.start()
                line = self.line + source.count("\n", start, at)
                column = at - source.rfind("\n", 0, at)
                text = comment.group()
                span = ast.Span(line, column, line, column + len(text))
                self.comments.append(ast.Comment(span, text))
        newlines = source.count("\n", start, end)
        if newlines:
            # Where the token before the newline ended, for the nodes that end with it.
            self.prev_line, self.prev_line_start = self.line, self.line_start
            self.line += newlines
            self.line_start = source.rfind("\n", start, end) + 1

    def token_span(self) -> ast.Span:
        return ast.Span(self.line, self.column, self.line, self.pos - self.line_start + 1)

    def span_from(self, line: int, column: int) -> ast.Span:
        """From ``line``/``column`` to the end of the last token read."""
        end = self.prev_pos
        if end >= self.line_start:
            return ast.Span(line, column, self.line, end - self.line_start + 1)
        return ast.Span(line, column, self.prev_line, end - self.prev_line_start + 1)

    def expect(self, text: str) -> None:
        if self.text != text:
            raise _Declined
        self.advance()

    def name(self) -> str:
        """The current token read as a name, where the grammar allows nothing else."""
        if self.kind == "ADDRESS":
            # Lark looks for a name only here: `{ab:cd::1}` is the key `ab` and an address.
            self.relex(_NAME, "NAME")
        if self.kind != "NAME":
            raise _Declined
        return self.text

    def relex(self, pattern: re.Pattern[str], kind: str) -> None:
        """Read the current token again as ``kind``, as Lark does where nothing else may follow."""
        match = pattern.match(self.source, self.pos - len(self.text))
        if match is None:
            raise _Declined
        self.kind = kind
        self.text = match.group()
        self.pos = match.end()

    def string_value(self) -> str:
        if self.kind == "PLAIN_STRING":
            return self.text[1:-1]
        try:
            return string_value(self.text)
        except ValueError:  # a control character or a lone surrogate: Lark's builder reports it
            raise _Declined from None

    def string(self) -> ast.String:
        return ast.String(self.token_span(), self.string_value(), self.text)

    # statements

    def policy(self) -> tuple[ast.Let | ast.Rule, ...]:
        items: list[ast.Let | ast.Rule] = []
        self.advance()
        while self.kind != "END":
            first_token = self.tokens
            item: ast.Let | ast.Rule
            if self.text == "let":
                item = self.let()
            elif self.text == "rule":
                item = self.rule()
            else:
                raise _Declined
            # Every node has a token of its own besides its children's, so an item of n tokens
            # nests at most n - 1 deep: only long ones need a look.
            long = self.tokens - first_token > self.max_nesting + 1
            if long and nested_beyond(item, self.max_nesting) is not None:
                raise _Declined
            items.append(item)
        return tuple(items)

    def let(self) -> ast.Let:
        line, column = self.line, self.column
        self.advance()
        name, name_span = self.name(), self.token_span()
        self.advance()
        self.expect("=")
        value = self.expression(_OR)
        return ast.Let(self.span_from(line, column), name, name_span, value)

    def rule(self) -> ast.Rule:
        line, column = self.line, self.column
        self.advance()
        name, name_span = self.name(), self.token_span()
        self.advance()
        self.expect("{")
        selectors = []
        while self.text in ("on", "from", "app"):
            selectors.append(self.selector())
        effect = self.effect()
        self.expect("}")
        return ast.Rule(self.span_from(line, column), name, name_span, tuple(selectors), effect)

    def selector(self) -> ast.Selector:
        line, column = self.line, self.column
        kind = self.text
        self.advance()
        words = [self.word(kind)]
        while self.text == ",":
            self.advance()
            words.append(self.word(kind))
        return ast.Selector(self.span_from(line, column), kind, tuple(words))

    def word(self, kind: str) -> ast.Word:
        text = self.string_value() if kind == "app" and self.kind in _STRINGS else self.name()
        word = ast.Word(self.token_span(), text)
        self.advance()
        return word

    def effect(self) -> ast.Effect:
        line, column = self.line, self.column
        if self.text == "allow":
            self.advance()
            data = None
            if self.text == "with":
                self.advance()
                if self.text != "{":
                    raise _Declined
                data = self.object()
            condition = self.condition()
            return ast.Effect(self.span_from(line, column), "allow", None, data, condition)
        if self.text == "deny":
            self.advance()
            reason = None
            if self.kind in _STRINGS:
                reason = self.string()
                self.advance()
            condition = self.condition()
            return ast.Effect(self.span_from(line, column), "deny", reason, None, condition)
        raise _Declined

    def condition(self) -> ast.Expr | None:
        if self.text != "if":
            return None
        self.advance()
        return self.expression(_OR)

    # expressions

    def expression(self, tightest: int) -> ast.Expr:
        """An expression of operators that bind at least as tightly as ``tightest``, by precedence
        climbing: left-associative chains in a loop, right operands one level tighter."""
        self.nesting += 1
        # Each level costs at most four Python frames; past the limit the tree is too deep anyway
        # (or wrapped in that many redundant parentheses): Lark decides.
        if self.nesting > self.max_nesting:
            raise _Declined
        line, column = self.line, self.column
        # `not` is a keyword only where the grammar allows it: elsewhere it names a field.
        left: ast.Expr
        if tightest <= _NOT and self.text == "not":
            self.advance()
            operand = self.expression(_NOT)
            left = ast.Not(self.span_from(line, column), operand)
            level = _NOT
        else:
            left = self.operand()
            level = _POSTFIX
        while True:
            operator = _BINARY.get(self.text)
            if operator is None:
                break
            binds, left_binds, op = operator
            if binds < tightest or level < left_binds:
                break
            self.advance()
            if op == "not_in":
                self.expect("in")
            right = self.expression(binds + 1)
            span = self.span_from(line, column)
            if binds == _COMPARISON:
                left = ast.Compare(span, op, left, right)
            elif binds == _SUM:
                left = ast.Add(span, left, right)
            else:
                left = ast.Logical(span, op, left, right)
            level = binds
        self.nesting -= 1
        return left

    def operand(self) -> ast.Expr:
        """An atom and the attributes, indexes and calls after it."""
        line, column = self.line, self.column
        kind, text = self.kind, self.text
        node: ast.Expr
        if kind == "NAME":
            if text in _ATOM_KEYWORDS:
                node = self.keyword_atom()
            else:
                node = ast.Name(self.token_span(), text)
                self.advance()
        elif kind in _STRINGS:
            node = self.string()
            self.advance()
        elif kind == "NUMBER":
            try:
                number = number_value(text)
            except ValueError:  # too large: Lark's tree builder reports it
                raise _Declined from None
            node = ast.Number(self.token_span(), number, text)
            self.advance()
        elif kind == "DURATION":
            try:
                seconds = duration_seconds(text)
            except ValueError:  # too large: Lark's tree builder reports it
                raise _Declined from None
            node = ast.Duration(self.token_span(), seconds, text)
            self.advance()
        elif kind == "ADDRESS":
            node = ast.Address(self.token_span(), text)
            self.advance()
        elif text == "(":
            # The parenthesised node keeps its own span; what it is part of starts at the `(`.
            self.advance()
            node = self.expression(_OR)
            self.expect(")")
        elif text == "[":
            self.advance()
            items = self.items("]")
            node = ast.ListExpr(self.span_from(line, column), items)
        elif text == "{":
            node = self.object()
        else:
            raise _Declined
        while True:
            text = self.text
            if text == ".":
                self.advance()
                name, name_span = self.name(), self.token_span()
                self.advance()
                node = ast.Attr(self.span_from(line, column), node, name, name_span)
            elif text == "[":
                self.advance()
                key = self.expression(_OR)
                self.expect("]")
                node = ast.Index(self.span_from(line, column), node, key)
            elif text == "(":
                self.advance()
                args = self.items(")")
                node = ast.Call(self.span_from(line, column), node, args)
            else:
                return node

    def items(self, closing: str) -> tuple[ast.Expr, ...]:
        """Comma-separated expressions up to and including ``closing``, after the opening mark."""
        items = []
        if self.text != closing:
            items.append(self.expression(_OR))
            while self.text == ",":
                self.advance()
                items.append(self.expression(_OR))
        self.expect(closing)
        return tuple(items)

    def object(self) -> ast.ObjectExpr:
        line, column = self.line, self.column
        self.advance()
        pairs = []
        if self.text != "}":
            pairs.append(self.pair())
            while self.text == ",":
                self.advance()
                pairs.append(self.pair())
        self.expect("}")
        return ast.ObjectExpr(self.span_from(line, column), tuple(pairs))

    def pair(self) -> ast.Pair:
        line, column = self.line, self.column
        key = self.string_value() if self.kind in _STRINGS else self.name()
        self.advance()
        if self.kind == "ADDRESS" and self.text.startswith(":"):
            # Lark looks for the colon only here: `{a:::1}` is the key `a` and the address `::1`.
            self.relex(_COLON, "PUNCTUATION")
        self.expect(":")
        value = self.expression(_OR)
        return ast.Pair(self.span_from(line, column), key, value)

    def keyword_atom(self) -> ast.Expr:
        word = self.text
        if word == "true" or word == "false":
            node = ast.Bool(self.token_span(), word == "true")
            self.advance()
            return node
        return self.window(word)

    # time windows: read with their own tokens, as Lark does (`06:00` is no number there)

    def window(self, kind: str) -> ast.Window:
        line, column = self.line, self.column
        self.advance(_WINDOW_TOKENS)
        days: tuple[ast.DaySpan, ...] = ()
        dates: tuple[ast.DateSpan, ...] = ()
        if kind == "weekdays":
            days = tuple(ast.DaySpan(*span) for span in self.window_spans("DAY"))
        elif kind == "dates":
            dates = tuple(ast.DateSpan(*span) for span in self.window_spans("DATE"))
        clock = None
        if kind == "daily" or self.kind == "CLOCK":
            clock_line, clock_column = self.line, self.column
            start = self.window_token("CLOCK")
            self.window_expect("..")
            end = self.window_token("CLOCK")
            clock = ast.ClockSpan(self.span_from(clock_line, clock_column), start, end)
        if self.kind not in _STRINGS:
            raise _Declined
        zone = self.string()
        self.advance()
        return ast.Window(self.span_from(line, column), kind, days, dates, clock, zone)

    def window_spans(self, kind: str) -> list[tuple[ast.Span, str, str | None]]:
        """``first[..last]`` spans of days or dates, separated by commas."""
        spans = []
        while True:
            line, column = self.line, self.column
            first = self.window_token(kind)
            last = None
            if self.text == "..":
                self.advance(_WINDOW_TOKENS)
                last = self.window_token(kind)
            spans.append((self.span_from(line, column), first, last))
            if self.text != ",":
                return spans
            self.advance(_WINDOW_TOKENS)

    def window_token(self, kind: str) -> str:
        if self.kind != kind:
            raise _Declined
        text = self.text
        self.advance(_WINDOW_TOKENS)
        return text

    def window_expect(self, text: str) -> None:
        if self.text != text:
            raise _Declined
        self.advance(_WINDOW_TOKENS)
