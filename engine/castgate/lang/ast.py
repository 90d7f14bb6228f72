"""Policy syntax trees. Nodes only record what was written and where; meaning is the checker's."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Span:
    """Where a node was written: 1-based line and column of its first and last character."""

    line: int
    column: int
    end_line: int
    end_column: int

    @property
    def width(self) -> int:
        return self.end_column - self.column if self.end_line == self.line else 1


@dataclass(frozen=True, slots=True, eq=False)
class Node:
    span: Span


# Expressions ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Name(Node):
    ident: str


@dataclass(frozen=True, slots=True, eq=False)
class Attr(Node):
    target: Expr
    name: str
    name_span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Index(Node):
    target: Expr
    key: Expr


@dataclass(frozen=True, slots=True, eq=False)
class Call(Node):
    function: Expr
    args: tuple[Expr, ...]


@dataclass(frozen=True, slots=True, eq=False)
class String(Node):
    value: str
    #: The literal as written, quotes and escapes included; the formatter keeps it.
    text: str


@dataclass(frozen=True, slots=True, eq=False)
class Number(Node):
    value: int | float
    text: str


@dataclass(frozen=True, slots=True, eq=False)
class Duration(Node):
    seconds: float
    text: str


@dataclass(frozen=True, slots=True, eq=False)
class Address(Node):
    """An IPv4 or IPv6 address or CIDR block written bare: ``10.0.0.0/8``, ``2001:db8::/32``."""

    text: str


@dataclass(frozen=True, slots=True, eq=False)
class Bool(Node):
    value: bool


@dataclass(frozen=True, slots=True, eq=False)
class ListExpr(Node):
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True, eq=False)
class Pair(Node):
    key: str
    value: Expr


@dataclass(frozen=True, slots=True, eq=False)
class ObjectExpr(Node):
    pairs: tuple[Pair, ...]


@dataclass(frozen=True, slots=True, eq=False)
class Not(Node):
    operand: Expr


@dataclass(frozen=True, slots=True, eq=False)
class Logical(Node):
    op: str  # "and" | "or"
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True, eq=False)
class Compare(Node):
    #: One of ``== != < <= > >= in not_in matches startswith endswith contains``.
    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True, eq=False)
class Add(Node):
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True, eq=False)
class DaySpan(Node):
    first: str
    last: str | None


@dataclass(frozen=True, slots=True, eq=False)
class ClockSpan(Node):
    start: str
    end: str


@dataclass(frozen=True, slots=True, eq=False)
class DateSpan(Node):
    first: str
    last: str | None


@dataclass(frozen=True, slots=True, eq=False)
class Window(Node):
    """A time window literal; ``kind`` is ``weekdays``, ``daily`` or ``dates``."""

    kind: str
    days: tuple[DaySpan, ...]
    dates: tuple[DateSpan, ...]
    clock: ClockSpan | None
    zone: String


Expr = (
    Name
    | Attr
    | Index
    | Call
    | String
    | Number
    | Duration
    | Address
    | Bool
    | ListExpr
    | ObjectExpr
    | Not
    | Logical
    | Compare
    | Add
    | Window
)

# Statements -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Word(Node):
    """A name in a selector (``on publish``, ``from livepeer``, ``app live``)."""

    text: str


@dataclass(frozen=True, slots=True, eq=False)
class Selector(Node):
    kind: str  # "on" | "from" | "app"
    words: tuple[Word, ...]


@dataclass(frozen=True, slots=True, eq=False)
class Effect(Node):
    kind: str  # "allow" | "deny"
    reason: String | None
    data: ObjectExpr | None
    condition: Expr | None


@dataclass(frozen=True, slots=True, eq=False)
class Let(Node):
    name: str
    name_span: Span
    value: Expr


@dataclass(frozen=True, slots=True, eq=False)
class Rule(Node):
    name: str
    name_span: Span
    selectors: tuple[Selector, ...]
    effect: Effect


@dataclass(frozen=True, slots=True, eq=False)
class Comment(Node):
    text: str


@dataclass(frozen=True, slots=True, eq=False)
class PolicyFile:
    path: str
    source: str
    items: tuple[Let | Rule, ...]
    comments: tuple[Comment, ...]
