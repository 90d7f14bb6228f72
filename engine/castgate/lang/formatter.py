"""Policy text to canonical form: what ``castgate fmt`` prints.

The formatter parses a file and prints the syntax tree again, so the output depends only on what
the policy says and on its comments, never on how it was laid out. Formatting is idempotent and
never changes meaning: the printed policy parses to the same tree, up to redundant parentheses,
merged selectors and the quoting of keys and selector words.

Canonical form
--------------

Layout

- Top-level items (``let`` and ``rule``) are separated by exactly one blank line, except that
  ``let`` lines written on consecutive lines with no comment between them stay a block. The
  file ends with exactly one newline; a file with nothing in it formats to nothing.
- ``let name = expr`` is one line (unless it is too long, below).
- A rule is its header ``rule name {``, one selector line, the effect line and ``}``, with a
  two-space indent inside the braces::

      rule ladder {
        on publish, update from nginx_rtmp app live
        allow with { manifestID: stream.name } if params.key in keys and now in showtime
      }

  Selectors come in the order ``on``, ``from``, ``app``; repeated selectors of one kind are
  merged into one (``on publish`` and ``on play`` become ``on publish, play``), their words in
  the order written. A rule without selectors has no selector line. When the selector line would
  be longer than 100 columns, each kind gets a line of its own instead.
- One space around binary operators and after commas and colons; ``not in`` is written with a
  space; object literals have a space inside their braces (``{ a: 1 }``), lists and calls do not
  (``[1, 2]``, ``f(x)``); empty ones are ``{}``, ``[]`` and ``f()``. Keywords are lowercase.

Long lines

- A line is broken only when it would be longer than 100 columns (comments are not counted).
  Breaking proceeds from the outside in and from left to right: a construct is only broken when
  it cannot fit on the rest of its line.
- The top-level ``and``/``or`` chain of an ``if`` condition or a ``let`` value is broken one
  operand per line; continuation lines are indented four spaces more than the line the
  expression starts on and begin with the operator::

        allow if params.key in keys
            and now in showtime
            and client.ip in studio

  Only the outermost chain breaks; ``and`` inside an ``or`` operand, or a chain in parentheses,
  stays on one line.
- A list, object or call argument list that does not fit is broken one entry per line, indented
  two spaces more than the line it opens on, with the closing bracket on a line of its own. No
  trailing comma is written (the grammar accepts none). Nested literals indent further.
- Lines that cannot be broken by these rules stay long.

Parentheses

- Parentheses are written only where precedence needs them. From loosest to tightest:
  ``or``, ``and``, ``not``, comparisons (``== != < <= > >= in not in matches startswith endswith
  contains``, which do not chain), ``+`` (left-associative), postfix (``.name``, ``[key]``,
  ``(args)``). So ``(a or b) and c`` and ``a + (b + c)`` keep theirs and ``(a and b) or c``
  becomes ``a and b or c``.
- ``a or (b or c)`` and ``a and (b and c)`` lose their parentheses: a chain of one operator means
  the same in any grouping.
- One exception for readability: the operand of ``not`` is parenthesised unless it is a name,
  literal, postfix expression or another ``not``. ``not a == b`` (which already means
  ``not (a == b)``) is printed ``not (a == b)``, and ``not (x in list)`` keeps its parentheses.
- An address followed by ``.field`` is parenthesised, since ``10.0.0.1.x`` would not read back.

Literals and names

- Strings, numbers, durations, addresses, times of day and dates are printed exactly as written
  (escapes, ``1h30m``, ``::1`` and ``06:00`` stay as they are).
- Object keys and selector words (``app "live"``) are written bare when they are a valid name
  (``[A-Za-z_][A-Za-z0-9_]*``) and quoted, as originally written, otherwise.
- Time windows: ``weekdays mon..fri, sun 06:00..23:30 "Europe/Berlin"``,
  ``daily 22:00..06:00 "UTC"``, ``dates 2026-12-24..2026-12-26 "UTC"``.

Comments

Comments are never lost; they move to the nearest place that keeps them next to what they were
written beside. A comment's text is kept, without trailing whitespace.

- Comments before an item stay directly before it. Among those comments and between the last of
  them and the item, a blank line is kept (as one) where the source had at least one; other blank
  lines go. Comments after the last item stay at the end of the file the same way.
- A comment at the end of the last line of a ``let``, of the ``rule name {`` line, of a selector,
  of the effect or of the closing ``}`` stays at the end of that line, after two spaces.
- Other comments inside a rule go on their own line, indented, before the line they preceded;
  comments after the effect stay before the closing ``}``. (With one line per selector kind, a
  comment before ``from`` moves with the ``from`` line when selectors are reordered.)
- Comments inside a multi-line expression move to the line above the ``let`` or effect line.
- When merging selectors brings more than one end-of-line comment to one line, they all go on
  lines of their own above it.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import TypeAlias

from castgate.lang import ast
from castgate.lang.parser import parse_policy

#: Lines are broken when they would be longer than this.
WIDTH = 100
#: Indent inside a rule and of the entries of a broken list or object.
INDENT = 2
#: Extra indent of the continuation lines of a broken ``and``/``or`` chain.
CONTINUATION = 4

_SELECTOR_ORDER = ("on", "from", "app")
#: A place in the source: 1-based line and column.
Pos: TypeAlias = tuple[int, int]
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_STRING = re.compile(r'"([^"\\\n]|\\["\\/bfnrt]|\\u[0-9A-Fa-f]{4})*"')


def format_source(source: str, path: str = "<policy>") -> str:
    """``source`` in canonical form. Raises :class:`~castgate.lang.errors.PolicyError` when it
    does not parse."""
    return _Formatter(parse_policy(source, path)).format()


# Layout documents -------------------------------------------------------------------------------
# A small Wadler/Prettier-style printer: a group is printed flat when it fits on the rest of its
# line (measured up to the next place the line could break), otherwise its line breaks open.


@dataclass(frozen=True, slots=True)
class _Line:
    """A line break inside a group; ``flat`` is printed instead when the group stays flat."""

    flat: str


@dataclass(frozen=True, slots=True)
class _Cat:
    parts: tuple[Doc, ...]


@dataclass(frozen=True, slots=True)
class _Nest:
    """Lines broken inside ``parts`` are indented ``indent`` more."""

    indent: int
    parts: tuple[Doc, ...]


@dataclass(frozen=True, slots=True)
class _Group:
    parts: tuple[Doc, ...]


Doc: TypeAlias = "str | _Line | _Cat | _Nest | _Group"

_SPACE = _Line(" ")
_SOFT = _Line("")


def _cat(*parts: Doc) -> _Cat:
    return _Cat(parts)


def _render(doc: Doc, indent: int) -> list[str]:
    """The lines of ``doc`` printed at ``indent``, indentation included."""
    lines = [" " * indent]
    column = indent
    stack: list[tuple[int, bool, Doc]] = [(indent, True, doc)]
    while stack:
        level, broken, item = stack.pop()
        if isinstance(item, str):
            lines[-1] += item
            column += len(item)
        elif isinstance(item, _Line):
            if broken:
                lines.append(" " * level)
                column = level
            else:
                lines[-1] += item.flat
                column += len(item.flat)
        elif isinstance(item, _Cat):
            stack.extend((level, broken, part) for part in reversed(item.parts))
        elif isinstance(item, _Nest):
            stack.extend((level + item.indent, broken, part) for part in reversed(item.parts))
        else:
            flat = not broken or _fits(item, stack, WIDTH - column)
            stack.extend((level, not flat, part) for part in reversed(item.parts))
    return lines


def _fits(group: _Group, rest: list[tuple[int, bool, Doc]], room: int) -> bool:
    """Whether ``group`` printed flat, and what follows it up to the next line break, fit."""
    todo: list[tuple[bool, Doc]] = [(False, group)]
    following = len(rest)
    while room >= 0:
        if not todo:
            if following == 0:
                return True
            following -= 1
            _, broken, item = rest[following]
            todo.append((broken, item))
            continue
        broken, item = todo.pop()
        if isinstance(item, str):
            room -= len(item)
        elif isinstance(item, _Line):
            if broken:
                return True
            room -= len(item.flat)
        else:
            todo.extend((broken, part) for part in reversed(item.parts))
    return False


# Expressions ------------------------------------------------------------------------------------

_OR, _AND, _NOT, _COMPARE, _ADD, _POSTFIX, _ATOM = range(1, 8)
_OPERATORS = {"not_in": "not in"}


def _precedence(node: ast.Expr) -> int:
    match node:
        case ast.Logical(op="or"):
            return _OR
        case ast.Logical():
            return _AND
        case ast.Not():
            return _NOT
        case ast.Compare():
            return _COMPARE
        case ast.Add():
            return _ADD
        case ast.Attr() | ast.Index() | ast.Call():
            return _POSTFIX
    return _ATOM


def _chain(node: ast.Expr, op: str) -> list[ast.Expr]:
    """The operands of a chain of ``op``, whatever its grouping: ``a or (b or c)`` is a, b, c."""
    if isinstance(node, ast.Logical) and node.op == op:
        return [*_chain(node.left, op), *_chain(node.right, op)]
    return [node]


def _bracketed(open_: str, items: list[Doc], close: str, padding: _Line) -> Doc:
    if not items:
        return open_ + close
    inner: list[Doc] = [padding]
    for index, item in enumerate(items):
        if index:
            inner += [",", _SPACE]
        inner.append(item)
    return _Group((open_, _Nest(INDENT, tuple(inner)), padding, close))


def _window(node: ast.Window) -> str:
    words = [node.kind]
    spans = [_span_text(d.first, d.last) for d in node.days]
    spans += [_span_text(d.first, d.last) for d in node.dates]
    if spans:
        words.append(", ".join(spans))
    if node.clock is not None:
        words.append(_span_text(node.clock.start, node.clock.end))
    words.append(node.zone.text)
    return " ".join(words)


def _span_text(first: str, last: str | None) -> str:
    return first if last is None else f"{first}..{last}"


class _Printer:
    """Statements and expressions to layout documents. It reads the source only for the text of
    quoted keys and selector words, which the syntax tree keeps decoded."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.line_starts = [0, *(i + 1 for i, char in enumerate(source) if char == "\n")]

    def offset(self, line: int, column: int) -> int:
        return self.line_starts[line - 1] + column - 1

    def position(self, offset: int) -> Pos:
        line = bisect_right(self.line_starts, offset)
        return line, offset - self.line_starts[line - 1] + 1

    def quoted(self, value: str, span: ast.Span) -> str:
        """``value``, which is not a name, as the string literal it was written as at ``span``."""
        match = _STRING.match(self.source, self.offset(span.line, span.column))
        return match.group() if match is not None else json.dumps(value, ensure_ascii=False)

    # statements

    def let(self, let: ast.Let) -> Doc:
        return _cat(f"let {let.name} = ", self.top(let.value))

    def effect(self, effect: ast.Effect) -> Doc:
        parts: list[Doc] = [effect.kind]
        if effect.reason is not None:
            parts.append(" " + effect.reason.text)
        if effect.data is not None:
            parts += [" with ", self.object(effect.data)]
        if effect.condition is not None:
            parts += [" if ", self.top(effect.condition)]
        return _Cat(tuple(parts))

    def selector(self, kind: str, words: list[ast.Word]) -> str:
        return f"{kind} " + ", ".join(
            w.text if _NAME.fullmatch(w.text) else self.quoted(w.text, w.span) for w in words
        )

    # expressions

    def top(self, node: ast.Expr) -> Doc:
        """A whole ``if`` condition or ``let`` value: its ``and``/``or`` chain may break."""
        if not isinstance(node, ast.Logical):
            return self.expression(node)
        first, *others = _chain(node, node.op)
        tightest = _AND if node.op == "or" else _NOT
        rest: list[Doc] = []
        for operand in others:
            rest += [_SPACE, f"{node.op} ", self.operand(operand, tightest)]
        return _Group((self.operand(first, tightest), _Nest(CONTINUATION, tuple(rest))))

    def operand(self, node: ast.Expr, tightest: int) -> Doc:
        """``node`` where an expression binding at least as tight as ``tightest`` is needed."""
        doc = self.expression(node)
        return _cat("(", doc, ")") if _precedence(node) < tightest else doc

    def expression(self, node: ast.Expr) -> Doc:
        match node:
            case ast.Logical(op=op):
                tightest = _AND if op == "or" else _NOT
                parts: list[Doc] = []
                for operand in _chain(node, op):
                    if parts:
                        parts.append(f" {op} ")
                    parts.append(self.operand(operand, tightest))
                return _Cat(tuple(parts))
            case ast.Not(operand=operand):
                # Stricter than precedence needs: `not (a == b)`, never `not a == b`.
                if isinstance(operand, ast.Not):
                    return _cat("not ", self.expression(operand))
                return _cat("not ", self.operand(operand, _POSTFIX))
            case ast.Compare(op=op, left=left, right=right):
                return _cat(
                    self.operand(left, _ADD),
                    f" {_OPERATORS.get(op, op)} ",
                    self.operand(right, _ADD),
                )
            case ast.Add(left=left, right=right):
                return _cat(self.operand(left, _ADD), " + ", self.operand(right, _POSTFIX))
            case ast.Attr(target=target, name=name):
                # `(10.0.0.1).x`: without them the address would read back as other tokens.
                tightest = _ATOM + 1 if isinstance(target, ast.Address) else _POSTFIX
                return _cat(self.operand(target, tightest), ".", name)
            case ast.Index(target=target, key=key):
                return _cat(self.operand(target, _POSTFIX), "[", self.expression(key), "]")
            case ast.Call(function=function, args=args):
                arguments = [self.expression(a) for a in args]
                return _cat(
                    self.operand(function, _POSTFIX), _bracketed("(", arguments, ")", _SOFT)
                )
            case ast.String(text=text) | ast.Number(text=text) | ast.Duration(text=text):
                return text
            case ast.Address(text=text):
                return text
            case ast.Name(ident=ident):
                return ident
            case ast.Bool(value=value):
                return "true" if value else "false"
            case ast.ListExpr(items=items):
                return _bracketed("[", [self.expression(i) for i in items], "]", _SOFT)
            case ast.ObjectExpr():
                return self.object(node)
            case ast.Window():
                return _window(node)
        raise AssertionError(f"unhandled node {node!r}")

    def object(self, node: ast.ObjectExpr) -> Doc:
        pairs: list[Doc] = [
            _cat(
                p.key if _NAME.fullmatch(p.key) else self.quoted(p.key, p.span),  # key opens pair
                ": ",
                self.expression(p.value),
            )
            for p in node.pairs
        ]
        return _bracketed("{", pairs, "}", _SPACE)


# Comments ---------------------------------------------------------------------------------------


def _start(span: ast.Span) -> Pos:
    return span.line, span.column


def _end(span: ast.Span) -> Pos:
    return span.end_line, span.end_column


def _at(comment: ast.Comment) -> Pos:
    return comment.span.line, comment.span.column


def _text(comment: ast.Comment) -> str:
    return comment.text.rstrip()


@dataclass(eq=False)
class _Slot:
    """Comments printed with one printed line: on lines of their own before it, or at its end."""

    leading: list[ast.Comment] = field(default_factory=list)
    trailing: list[ast.Comment] = field(default_factory=list)

    def settle(self) -> None:
        """One comment can end a line: with more, they all go on lines of their own before it."""
        if len(self.trailing) > 1:
            self.leading = sorted([*self.leading, *self.trailing], key=_at)
            self.trailing = []

    def before(self, indent: int) -> list[str]:
        return [" " * indent + _text(c) for c in self.leading]

    def end(self, line: str) -> str:
        return line + "".join("  " + _text(c) for c in self.trailing)


def _place(comment: ast.Comment, spans: list[tuple[Pos, Pos]]) -> tuple[int, bool] | None:
    """Where a comment goes among constructs at ``spans`` (sorted ``(start, end)`` pairs):
    ``(index, True)`` to trail construct ``index`` (it is on the construct's last line), or
    ``(index, False)`` to lead it (it is inside it, or between it and the one before). ``None``
    when it comes after them all on a line of its own."""
    where = _at(comment)
    index = bisect_right(spans, where, key=lambda span: span[0]) - 1
    if index >= 0:
        end = spans[index][1]
        if where < end:
            return index, False
        if end[0] == where[0]:
            return index, True
    if index + 1 < len(spans):
        return index + 1, False
    return None


def _spaced(comments: list[ast.Comment], after: int | None, before: int | None) -> list[str]:
    """Comments on lines of their own, keeping one blank line where the source had any between
    them, after source line ``after`` and before source line ``before``."""
    lines: list[str] = []
    previous = after
    for comment in comments:
        if previous is not None and comment.span.line - previous > 1:
            lines.append("")
        lines.append(_text(comment))
        previous = comment.span.line
    if before is not None and previous is not None and before - previous > 1:
        lines.append("")
    return lines


# Files ------------------------------------------------------------------------------------------


class _Formatter:
    def __init__(self, policy: ast.PolicyFile) -> None:
        self.policy = policy
        self.printer = _Printer(policy.source)

    def format(self) -> str:
        items = self.policy.items
        spans = [(_start(item.span), _end(item.span)) for item in items]
        slots = [_Slot() for _ in items]
        inside: list[list[ast.Comment]] = [[] for _ in items]
        braces = [
            self.opening_brace(item) if isinstance(item, ast.Rule) else None for item in items
        ]
        at_end: list[ast.Comment] = []
        for comment in self.policy.comments:
            placed = _place(comment, spans)
            if placed is None:
                at_end.append(comment)
                continue
            index, trails = placed
            brace = braces[index]
            if trails:
                slots[index].trailing.append(comment)
            elif brace is not None and brace < _at(comment):
                inside[index].append(comment)  # placed among the rule's lines
            else:
                slots[index].leading.append(comment)

        out: list[str] = []
        for index, item in enumerate(items):
            slot = slots[index]
            if out and not _grouped_lets(items[index - 1], item, self.policy):
                out.append("")
            out.extend(_spaced(slot.leading, None, item.span.line))
            if isinstance(item, ast.Let):
                lines = _render(self.printer.let(item), 0)
            else:
                brace = braces[index]
                assert brace is not None
                lines = self.rule(item, brace, inside[index])
            lines[-1] = slot.end(lines[-1])
            out.extend(lines)
        last_line = items[-1].span.end_line if items else None
        out.extend(_spaced(at_end, last_line, None))
        return "\n".join(out) + "\n" if out else ""

    def opening_brace(self, rule: ast.Rule) -> Pos:
        """Where the ``{`` of ``rule`` is: the first thing after its name that is no comment."""
        source = self.printer.source
        offset = self.printer.offset(rule.name_span.end_line, rule.name_span.end_column)
        while offset < len(source):
            if source[offset].isspace():
                offset += 1
            elif source[offset] == "#":
                newline = source.find("\n", offset)
                offset = len(source) if newline < 0 else newline
            else:
                break
        return self.printer.position(offset)

    def rule(self, rule: ast.Rule, brace: Pos, comments: list[ast.Comment]) -> list[str]:
        constructs: list[ast.Selector | ast.Effect] = [*rule.selectors, rule.effect]
        spans = [(_start(c.span), _end(c.span)) for c in constructs]
        slots = [_Slot() for _ in constructs]
        header, closing = _Slot(), _Slot()
        for comment in comments:
            placed = _place(comment, spans)
            if placed is None:
                closing.leading.append(comment)
            elif placed[1]:
                slots[placed[0]].trailing.append(comment)
            elif _at(comment) < spans[0][0] and comment.span.line == brace[0]:
                header.trailing.append(comment)
            else:
                slots[placed[0]].leading.append(comment)

        pad = " " * INDENT
        lines = [header.end(f"rule {rule.name} {{")]
        kinds = [
            [i for i, s in enumerate(rule.selectors) if s.kind == kind] for kind in _SELECTOR_ORDER
        ]
        texts = [
            self.printer.selector(kind, [w for i in chosen for w in rule.selectors[i].words])
            for kind, chosen in zip(_SELECTOR_ORDER, kinds, strict=True)
            if chosen
        ]
        groups = [[i for chosen in kinds for i in chosen]] if texts else []
        if len(pad + " ".join(texts)) > WIDTH:
            groups = [chosen for chosen in kinds if chosen]
        else:
            texts = [" ".join(texts)] if texts else []
        for text, group in zip(texts, groups, strict=True):
            merged = _Slot(
                sorted((c for i in group for c in slots[i].leading), key=_at),
                sorted((c for i in group for c in slots[i].trailing), key=_at),
            )
            merged.settle()
            lines.extend(merged.before(INDENT))
            lines.append(merged.end(pad + text))
        effect = slots[-1]
        effect.settle()
        lines.extend(effect.before(INDENT))
        body = _render(self.printer.effect(rule.effect), INDENT)
        body[-1] = effect.end(body[-1])
        lines.extend(body)
        lines.extend(closing.before(INDENT))
        lines.append("}")
        return lines


def _grouped_lets(
    before: ast.Let | ast.Rule, item: ast.Let | ast.Rule, policy: ast.PolicyFile
) -> bool:
    """Whether ``item`` continues a block of ``let`` lines: both are lets, on adjacent lines, with
    no comment above or inside ``item`` (those would be printed above it, splitting the block)."""
    if not (isinstance(before, ast.Let) and isinstance(item, ast.Let)):
        return False
    if item.span.line != before.span.end_line + 1:
        return False
    return not any(before.span.end_line < c.span.line < item.span.end_line for c in policy.comments)
