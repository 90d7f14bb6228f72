"""Checked policies to Python closures, and rule conditions to Python source.

Every expression becomes a function ``(event, state) -> value`` made once at load; a decision only
calls them. The common shapes (a field against a constant, membership in a constant set) get
closures of their own so the hot path does no dispatch on node kinds at request time.

A rule's condition can also be written out as one Python expression (:class:`_Source`), which the
policy set compiles, with the other rules an event can meet, into one function
(:mod:`castgate.lang.policyset`): a call per node of the closure tree costs more than the test it
makes. Each shape the source writes has the closure's semantics step for step; any other shape
calls its closure.
"""

from __future__ import annotations

import ipaddress
import operator
from bisect import bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Any

from castgate.events import Decision, Effect, Event
from castgate.lang import ast, regexes
from castgate.lang.addresses import AddressKey, IpSet, address_key, parse_address
from castgate.lang.builtins import DECIMAL, Builtin
from castgate.lang.checker import (
    NOT_CONSTANT,
    OPEN_FIELDS,
    CheckedPolicy,
    CheckedRule,
    FieldRef,
    FunctionRef,
    LetRef,
)
from castgate.lang.functions import (
    DependencyError,
    PolicyFunction,
    call_with_deadline,
    skipping_calls_out,
)
from castgate.lang.types import Type
from castgate.lang.values import MISSING, Secret
from castgate.lang.windows import TimeWindow
from castgate.state import SessionView

Fn = Callable[[Event, SessionView], Any]

#: A set with more members makes no guard: testing it is one set lookup already, and every index
#: entry the rule's run is collapsed into would copy the set into a dict of its own (a 100,000-key
#: ``lines()`` file, once per app).
_GUARD_MOST_VALUES = 64


@dataclass(frozen=True, slots=True)
class Guard:
    """What a rule's condition tests before anything else: the event field ``field`` is one of
    ``values``. The policy set answers a run of rules guarded on one field with a single dict
    lookup (:mod:`castgate.lang.policyset`).

    Exact only for text: when ``read`` gives a ``str`` outside ``values`` the condition is false
    and evaluates nothing that could raise; when it gives *missing*, the condition is false too.
    Any other value (the number ``5`` equals ``"5"`` under vendor data's loose equality, a list,
    an object) must be decided by the condition itself."""

    field: tuple[str, ...]
    read: Fn
    values: frozenset[str]


@dataclass(frozen=True, slots=True)
class CompiledRule:
    name: str
    file: str
    line: int
    kind: str  # "allow" | "deny"
    reason: str
    actions: frozenset[str] | None
    vendors: frozenset[str] | None
    apps: frozenset[str] | None
    condition: Fn | None
    #: Builds the response data for an allow; ``None`` when the rule carries none.
    response: Fn | None
    #: The decision this rule makes when it needs nothing from the event (denies, constant data).
    decision: Decision | None
    guard: Guard | None = None
    #: Writes the condition as a Python expression over ``e`` and ``s`` (see :class:`Names`);
    #: ``None`` for a rule made without one, whose condition is called as a closure.
    source: Callable[[Names], str] | None = None


def compile_rules(checked: CheckedPolicy) -> list[CompiledRule]:
    compiler = _Compiler(checked)
    return [compiler.rule(rule) for rule in checked.rules]


class _Compiler:
    def __init__(self, checked: CheckedPolicy) -> None:
        self.notes = checked.notes
        self.lets: dict[ast.Let, Fn] = {}

    def rule(self, rule: CheckedRule) -> CompiledRule:
        condition = self.condition(rule.condition) if rule.condition is not None else None
        response = None
        decision = None
        if rule.kind == "deny":
            decision = Decision(Effect.DENY, rule.reason, rule.name)
        elif rule.data is None:
            decision = Decision(Effect.ALLOW, rule.reason, rule.name)
        else:
            constant = self.notes.const(rule.data)
            if constant is not NOT_CONSTANT:
                decision = Decision(Effect.ALLOW, rule.reason, rule.name, _json(constant))
            else:
                response = self.expr(rule.data)
        return CompiledRule(
            rule.name,
            rule.file,
            rule.line,
            rule.kind,
            rule.reason,
            rule.actions,
            rule.vendors,
            rule.apps,
            condition,
            response,
            decision,
            self.guard(rule.condition) if rule.condition is not None else None,
            partial(self.source, rule.condition) if rule.condition is not None else None,
        )

    def source(self, node: ast.Expr, names: Names) -> str:
        return _Source(self, names).condition(node, 0)

    def guard(self, node: ast.Expr) -> Guard | None:
        """The :class:`Guard` ``node`` starts with, if any. Only shapes whose compiled closures
        compare text exactly (``_equal_constant``, ``_equal``, ``_param_in``, ``_in_hashed``);
        ``!=``, ``not in`` and negations are true for most values, so they narrow nothing."""
        match node:
            case ast.Logical(op="and", left=left):
                # `and` evaluates its left side first and stops there when it is false, so a
                # guard on the left decides for the whole; one on the right would come after
                # a left side that may raise, which skipping the rule must not hide.
                return self.guard(left)
            case ast.Logical(left=left, right=right):
                # Two guards on one field: where both are false, so is the `or`, and neither raised.
                either, other = self.guard(left), self.guard(right)
                if either is None or other is None or either.field != other.field:
                    return None
                values = either.values | other.values
                return replace(either, values=values) if len(values) <= _GUARD_MOST_VALUES else None
            case ast.Compare(op="==", left=left, right=right):
                for tested, constant in ((left, right), (right, left)):
                    value = self.notes.const(constant)
                    if type(value) is str:
                        return self.field_guard(tested, frozenset((value,)))
            case ast.Compare(op="in", left=left):
                container = self.notes.prepared.get(node, self.notes.const(node.right))
                if (
                    isinstance(container, frozenset | dict)
                    and len(container) <= _GUARD_MOST_VALUES
                    and all(type(value) is str for value in container)
                ):
                    return self.field_guard(left, frozenset(container))
        return None

    def field_guard(self, node: ast.Expr, values: frozenset[str]) -> Guard | None:
        """A guard when ``node`` is an event field read as text: not ``client.ip`` (compared as
        an address, ``::ffff:10.0.0.1`` equals ``10.0.0.1``), ``client.port`` or ``now``, nor
        ``params`` or ``raw`` as a whole."""
        path = self.field_path(node)
        if path is None:
            return None
        text_field = self.notes.types[node] is Type.STRING
        if not text_field and not (path[0] in OPEN_FIELDS and len(path) > 1):
            return None
        return Guard(path, _field(path), values)

    def expr(self, node: ast.Expr) -> Fn:
        constant = self.notes.const(node)
        if constant is not NOT_CONSTANT:
            return _constant(_json(constant) if isinstance(node, ast.ObjectExpr) else constant)
        match node:
            case ast.Name() | ast.Attr() if node in self.notes.refs:
                return self.reference(node)
            case ast.Attr(target=target, name=name):
                return _attribute(self.expr(target), name)
            case ast.Index(target=target, key=key):
                return _index(self.expr(target), self.expr(key))
            case ast.Call():
                return self.call(node)
            case ast.ListExpr(items=items):
                return _list([self.expr(i) for i in items])
            case ast.ObjectExpr(pairs=pairs):
                return _object([(p.key, self.expr(p.value)) for p in pairs])
            case ast.Not(operand=operand):
                inner = self.condition(operand)
                return lambda e, s: not inner(e, s)
            case ast.Logical(op="and", left=left, right=right):
                a, b = self.condition(left), self.condition(right)
                if _makes_bool(left) and _makes_bool(right):
                    return lambda e, s: a(e, s) and b(e, s)
                return lambda e, s: bool(a(e, s)) and bool(b(e, s))
            case ast.Logical(left=left, right=right):
                a, b = self.condition(left), self.condition(right)
                if _makes_bool(left) and _makes_bool(right):
                    return lambda e, s: a(e, s) or b(e, s)
                return lambda e, s: bool(a(e, s)) or bool(b(e, s))
            case ast.Compare():
                return self.compare(node)
            case ast.Add(left=left, right=right):
                return _add(self.expr(left), self.expr(right), self.notes.types[node])
        raise AssertionError(f"cannot compile {node!r}")

    def condition(self, node: ast.Expr) -> Fn:
        """``node`` as a condition. Vendor data (type any) holds only when it is boolean true:
        the text ``"false"`` or a non-empty list is not a yes."""
        test = self.expr(node)
        if self.notes.types[node] is Type.ANY:
            return lambda e, s: test(e, s) is True
        return test

    def reference(self, node: ast.Name | ast.Attr) -> Fn:
        ref = self.notes.refs[node]
        if isinstance(ref, LetRef):
            if ref.let not in self.lets:
                self.lets[ref.let] = self.expr(ref.let.value)
            return self.lets[ref.let]
        assert isinstance(ref, FieldRef)
        return _field(ref.path)

    def call(self, node: ast.Call) -> Fn:
        ref = self.notes.refs[node]
        assert isinstance(ref, FunctionRef)
        function = ref.function
        args = [self.expr(a) for a in node.args]
        if isinstance(function, Builtin):
            return _builtin_call(function.impl, args, function.takes_missing)
        return _plugin_call(function, args)

    def compare(self, node: ast.Compare) -> Fn:
        op = node.op
        if op == "not_in":
            positive = self.membership(node)
            return lambda e, s: not positive(e, s)
        if op == "in":
            return self.membership(node)
        left = self.expr(node.left)
        if op == "matches":
            found = regexes.finder(self.notes.prepared[node])
            return lambda e, s: isinstance(v := left(e, s), str) and found(v)
        right_const = self.notes.const(node.right)
        types = {self.notes.types[node.left], self.notes.types[node.right]}
        if op in ("==", "!="):
            if types == {Type.IP, Type.STRING} or (
                Type.IP in types
                and isinstance(right_const, ipaddress.IPv4Network | ipaddress.IPv6Network)
            ):
                equal = _address_equal(left, self.expr(node.right))
            elif isinstance(right_const, str) and self.notes.types[node.left] is Type.STRING:
                equal = _equal_constant(left, right_const)
            else:
                equal = _equal(left, self.expr(node.right))
            if op == "==":
                return equal
            return lambda e, s: not equal(e, s)
        right = self.expr(node.right)
        if op in _ORDERINGS:
            return _ordered(_ORDERINGS[op], left, right)
        method = _TEXT_TESTS[op]
        constant = self.notes.const(node.right)
        if isinstance(constant, str):
            return _text_test_constant(method, left, constant)
        return _text_test(method, left, right)

    def membership(self, node: ast.Compare) -> Fn:
        left = self.expr(node.left)
        container = self.notes.prepared.get(node, self.notes.const(node.right))
        if isinstance(container, ipaddress.IPv4Network | ipaddress.IPv6Network):
            container = IpSet([container])
        if isinstance(container, IpSet):
            if self.field_path(node.left) == ("client", "ip"):
                return _client_ip_in(container)
            return _in_ip_set(left, container)
        if isinstance(container, TimeWindow):
            if self.is_now(node.left):
                contains = container.contains
                return lambda e, s: contains(e.time)
            return lambda e, s: container.__contains__(left(e, s))
        if isinstance(container, frozenset | dict):
            path = self.field_path(node.left)
            if path is not None and len(path) == 2 and path[0] == "params":
                return _param_in(path[1], container)
            return _in_hashed(left, container)
        if container is not NOT_CONSTANT:
            return _in_dynamic(left, _constant(container))
        return _in_dynamic(left, self.expr(node.right))

    def field_path(self, node: ast.Expr) -> tuple[str, ...] | None:
        ref = self.notes.refs.get(node)
        return ref.path if isinstance(ref, FieldRef) else None

    def is_now(self, node: ast.Expr) -> bool:
        ref = self.notes.refs.get(node)
        return isinstance(ref, FieldRef) and ref.path == ("now",)


# Source -----------------------------------------------------------------------------------------

#: The value a local in :attr:`Names.once` holds until it is first computed.
UNSET: Any = object()
#: The conversion a ``now in <window>`` test writes out, once per zone and decision.
_local_time = datetime.fromtimestamp
#: Nesting beyond which a subexpression calls its closure: Python refuses source nested 200
#: parentheses deep, and a long chain of ``and`` nests one level per operand.
_DEEPEST_SOURCE = 40


class Names:
    """What generated source refers to besides the event ``e`` and the state ``s``: every constant,
    set, regex and function under a name made here. Text from a policy never becomes source, so
    no policy can write code; it only reaches the source as a value behind one of these names."""

    __slots__ = ("_by_id", "_temps", "once", "values")

    def __init__(self) -> None:
        self.values: dict[str, Any] = {
            "_M": MISSING,
            "_UNSET": UNSET,
            "_parse_address": parse_address,
        }
        self._by_id: dict[int, str] = {}
        self._temps = 0
        #: Locals the source computes at most once per decision, which the function it goes into
        #: must start at ``_UNSET``: ``_ck``, the client address key, for every ``client.ip in``
        #: test (parsing the address is most of each test's cost); the event's time in a zone,
        #: for every ``now in`` test of a window in that zone (so is converting the time).
        self.once: list[str] = []

    def of(self, value: Any) -> str:
        """The name ``value`` goes by; one object, one name (``values`` keeps it alive)."""
        name = self._by_id.get(id(value))
        if name is None:
            name = f"_k{len(self.values)}"
            self.values[name] = value
            self._by_id[id(value)] = name
        return name

    def computed_once(self, name: str) -> str:
        """``name``, now in :attr:`once`."""
        if name not in self.once:
            self.once.append(name)
        return name

    def temp(self) -> str:
        """A fresh local for one intermediate value."""
        self._temps += 1
        return f"_t{self._temps}"


class _Source:
    """A condition as one Python expression over ``e`` and ``s``. Each shape written here does what
    :class:`_Compiler`'s closure for it does, step by step and in the same order, so it returns the
    same value and raises the same errors; every other shape calls that closure."""

    def __init__(self, compiler: _Compiler, names: Names) -> None:
        self.compiler = compiler
        self.notes = compiler.notes
        self.names = names

    def closure(self, fn: Fn) -> str:
        return f"{self.names.of(fn)}(e, s)"

    def condition(self, node: ast.Expr, depth: int) -> str:
        if depth > _DEEPEST_SOURCE:
            return self.closure(self.compiler.condition(node))
        test = self.expr(node, depth)
        if self.notes.types[node] is Type.ANY:
            return f"({test} is True)"
        return test

    def expr(self, node: ast.Expr, depth: int) -> str:
        if depth > _DEEPEST_SOURCE:
            return self.closure(self.compiler.expr(node))
        constant = self.notes.const(node)
        if constant is not NOT_CONSTANT:
            return self.names.of(_json(constant) if isinstance(node, ast.ObjectExpr) else constant)
        depth += 1
        match node:
            case ast.Name() | ast.Attr() if node in self.notes.refs:
                ref = self.notes.refs[node]
                if isinstance(ref, LetRef):
                    return self.expr(ref.let.value, depth)
                assert isinstance(ref, FieldRef)
                return self.field(ref.path)
            case ast.Call():
                return self.call(node, depth)
            case ast.Not(operand=operand):
                return f"(not {self.condition(operand, depth)})"
            case ast.Logical(op=op, left=left, right=right):
                a, b = self.condition(left, depth), self.condition(right, depth)
                if not (_makes_bool(left) and _makes_bool(right)):
                    a, b = f"bool({a})", f"bool({b})"
                return f"({a} and {b})" if op == "and" else f"({a} or {b})"
            case ast.Compare():
                return self.compare(node, depth)
        return self.closure(self.compiler.expr(node))

    def field(self, path: tuple[str, ...]) -> str:
        head, dotted = path[0], ".".join(path)
        if head in ("params", "raw"):
            mapping = "e.params" if head == "params" else "e.raw"
            if len(path) == 1:
                return mapping
            if len(path) == 2:
                t = self.names.temp()
                key = self.names.of(path[1])
                return f'(_M if ({t} := {mapping}.get({key})) is None or {t} == "" else {t})'
        elif dotted == "now":
            return "e.time"
        elif dotted == "client.port":
            t = self.names.temp()
            return f"(_M if ({t} := e.client_port) is None else {t})"
        elif dotted in _EVENT_ATTRIBUTES:
            return f"(e.{_EVENT_ATTRIBUTES[dotted]} or _M)"
        return self.closure(_field(path))

    def call(self, node: ast.Call, depth: int) -> str:
        ref = self.notes.refs[node]
        assert isinstance(ref, FunctionRef)
        function = ref.function
        if not isinstance(function, Builtin) or len(node.args) != 1:
            return self.closure(self.compiler.call(node))
        impl = self.names.of(function.impl)
        argument = self.expr(node.args[0], depth)
        if function.takes_missing:
            return f"{impl}(e, s, {argument})"
        t = self.names.temp()
        return f"(_M if ({t} := {argument}) is _M else {impl}(e, s, {t}))"

    def compare(self, node: ast.Compare, depth: int) -> str:
        op, of = node.op, self.names.of
        if op == "not_in":
            return f"(not {self.membership(node, depth)})"
        if op == "in":
            return self.membership(node, depth)
        if op == "matches":
            return self.match(node, depth)
        right_const = self.notes.const(node.right)
        left_type = self.notes.types[node.left]
        if op in ("==", "!="):
            if Type.IP in (left_type, self.notes.types[node.right]):
                # compared as addresses (or, for an address against vendor data, loosely): rare
                # enough to keep the closure
                return self.closure(self.compiler.compare(node))
            left = self.expr(node.left, depth)
            if isinstance(right_const, str) and left_type is Type.STRING:
                equal = f"({left} == {of(right_const)})"
            else:
                equal = f"{of(_loosely_equal)}({left}, {self.expr(node.right, depth)})"
            return equal if op == "==" else f"(not {equal})"
        if op in _ORDERINGS:
            left, right = self.expr(node.left, depth), self.expr(node.right, depth)
            return f"{of(_ordered_values)}({of(_ORDERINGS[op])}, {left}, {right})"
        if isinstance(right_const, str):
            t = self.names.temp()
            method = of(_TEXT_TESTS[op])
            left = self.expr(node.left, depth)
            return f"(isinstance({t} := {left}, str) and {method}({t}, {of(right_const)}))"
        return self.closure(self.compiler.compare(node))

    def match(self, node: ast.Compare, depth: int) -> str:
        """``node.left matches node.right``, as :func:`regexes.finder` answers it, written out:
        the call was a fifth of the test's cost."""
        of, pattern = self.names.of, self.notes.prepared[node]
        t = self.names.temp()
        left = self.expr(node.left, depth)
        program, unanchored = regexes.re2_program(pattern.regex)
        if program is None:
            return f"(isinstance({t} := {left}, str) and {of(regexes.finder(pattern))}({t}))"
        data = self.names.temp()
        by_re2 = (
            f'({data} := {t}.encode("utf-8")) is not None'
            f" and {of(program.Match)}({of(unanchored)}, {data}, 0, len({data}))[0][0] != -1"
        )
        fast = pattern.ascii()
        if fast is None:
            return f"(isinstance({t} := {left}, str) and {by_re2})"
        return (
            f"(isinstance({t} := {left}, str)"
            f" and ({of(fast)}({t}) is not None if {t}.isascii() else ({by_re2})))"
        )

    def membership(self, node: ast.Compare, depth: int) -> str:
        """``node.left in node.right``, as :meth:`_Compiler.membership`."""
        of = self.names.of
        container = self.notes.prepared.get(node, self.notes.const(node.right))
        if isinstance(container, ipaddress.IPv4Network | ipaddress.IPv6Network):
            container = IpSet([container])
        path = self.compiler.field_path(node.left)
        if isinstance(container, IpSet):
            if path == ("client", "ip"):
                self.names.computed_once("_ck")
                # _client_key and contains_key, written out
                t, i = self.names.temp(), self.names.temp()
                key = (
                    f"((_ck := _parse_address({t}) if ({t} := e.client_ip) and isinstance({t}, str)"
                    " else None) if _ck is _UNSET else _ck)"
                )
                starts, ends = of(container.starts), of(container.ends)
                return (
                    f"({key} is not None and ({i} := {of(bisect_right)}({starts}, _ck)) > 0"
                    f" and _ck <= {ends}[{i} - 1])"
                )
            t, key = self.names.temp(), self.names.temp()
            left, contains = self.expr(node.left, depth), of(container.contains_key)
            return (
                f"(isinstance({t} := {left}, str)"
                f" and ({key} := {of(address_key)}({t})) is not None and {contains}({key}))"
            )
        if isinstance(container, TimeWindow) and self.compiler.is_now(node.left):
            zone = of(container.zone)
            local = self.names.computed_once(f"_l{zone}")
            return (
                f"{of(container.contains_local)}({local} if {local} is not _UNSET"
                f" else ({local} := {of(_local_time)}(e.time, {zone})))"
            )
        if isinstance(container, frozenset | dict) and path is not None:
            t, hashed = self.names.temp(), of(container)
            if len(path) == 2 and path[0] == "params":
                return (
                    f"({of(_param_value_in)}({t}, {hashed})"
                    f" if type({t} := e.params.get({of(path[1])})) is not str"
                    f' else ({t} != "" and {t} in {hashed}))'
                )
            if ".".join(path) in _EVENT_ATTRIBUTES:
                # an attribute read cannot raise, so nothing escapes the closure's `try` here
                left = self.field(path)
                return (
                    f"({t} in {hashed} if type({t} := {left}) is str"
                    f" else {of(_value_in_hashed)}({t}, {hashed}))"
                )
        return self.closure(self.compiler.membership(node))


# Closure makers ---------------------------------------------------------------------------------
# Each returns a small function; keeping them at module level keeps each closure's cell set minimal.


def _constant(value: Any) -> Fn:
    return lambda e, s: value


def _present(value: Any) -> Any:
    return MISSING if value is None or value == "" else value


def _field(path: tuple[str, ...]) -> Fn:
    head = path[0]
    if head in ("params", "raw"):
        if len(path) == 1:
            return (lambda e, s: e.params) if head == "params" else (lambda e, s: e.raw)
        key = path[1]
        if len(path) == 2:
            if head == "params":

                def param(e: Event, s: SessionView) -> Any:
                    value = e.params.get(key)
                    return MISSING if value is None or value == "" else value

                return param
            return lambda e, s: _present(e.raw.get(key))
        outer = _field(path[:2])
        rest = path[2:]

        def nested(e: Event, s: SessionView) -> Any:
            value = outer(e, s)
            for part in rest:
                if not isinstance(value, Mapping):
                    return MISSING
                value = _present(value.get(part))
            return value

        return nested
    dotted = ".".join(path)
    if dotted == "now":
        return lambda e, s: e.time
    if dotted == "client.port":
        return lambda e, s: MISSING if e.client_port is None else e.client_port
    getter = operator.attrgetter(_EVENT_ATTRIBUTES[dotted])
    return lambda e, s: getter(e) or MISSING


#: The fields that are text attributes of the event, ``""`` when the vendor sent none.
_EVENT_ATTRIBUTES = {
    "vendor": "vendor",
    "action": "action",
    "app": "app",
    "node": "node",
    "role": "role",
    "stream.name": "stream",
    "client.ip": "client_ip",
    "session.id": "session_id",
}


def _attribute(target: Fn, name: str) -> Fn:
    def attribute(e: Event, s: SessionView) -> Any:
        value = target(e, s)
        return _present(value.get(name)) if isinstance(value, Mapping) else MISSING

    return attribute


def _index(target: Fn, key: Fn) -> Fn:
    def index(e: Event, s: SessionView) -> Any:
        container, k = target(e, s), key(e, s)
        if isinstance(container, Mapping) and isinstance(k, str):
            return _present(container.get(k))
        if isinstance(container, list | tuple) and isinstance(k, int) and not isinstance(k, bool):
            return _present(container[k]) if -len(container) <= k < len(container) else MISSING
        return MISSING

    return index


def _list(items: list[Fn]) -> Fn:
    def build(e: Event, s: SessionView) -> Any:
        values = [item(e, s) for item in items]
        return [v for v in values if v is not MISSING]

    return build


def _object(pairs: list[tuple[str, Fn]]) -> Fn:
    def build(e: Event, s: SessionView) -> Any:
        result = {}
        for key, value_of in pairs:
            value = value_of(e, s)
            if value is not MISSING:
                result[key] = _json(value)
        return result

    return build


def _add(left: Fn, right: Fn, result: Type) -> Fn:
    """``+`` as its checked type says: a number sum reads numeric text as numbers (``"5" + 1``
    is 6), a string join writes numbers as text; for vendor data on both sides, text joins."""

    def add(e: Event, s: SessionView) -> Any:
        a, b = left(e, s), right(e, s)
        if result in (Type.NUMBER, Type.DURATION):
            a, b = _number_of(a), _number_of(b)
        if a is MISSING or b is MISSING or isinstance(a, bool) or isinstance(b, bool):
            return MISSING
        if isinstance(a, str) or isinstance(b, str):
            return f"{_text(a)}{_text(b)}"
        if isinstance(a, int | float) and isinstance(b, int | float):
            return a + b
        return MISSING

    return add


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _builtin_call(impl: Callable[..., Any], args: list[Fn], takes_missing: bool) -> Fn:
    if len(args) == 1:
        (only,) = args
        if takes_missing:
            return lambda e, s: impl(e, s, only(e, s))

        def call_one(e: Event, s: SessionView) -> Any:
            value = only(e, s)
            return MISSING if value is MISSING else impl(e, s, value)

        return call_one

    def call(e: Event, s: SessionView) -> Any:
        values = [a(e, s) for a in args]
        if not takes_missing and any(v is MISSING for v in values):
            return MISSING
        return impl(e, s, *values)

    return call


def _plugin_call(function: PolicyFunction, args: list[Fn]) -> Fn:
    impl = function.impl
    name = function.name
    calls_out = function.deadline is not None

    def call(e: Event, s: SessionView) -> Any:
        values = [a(e, s) for a in args]
        if any(v is MISSING for v in values):
            return MISSING
        if calls_out and skipping_calls_out():
            return MISSING
        try:
            result = call_with_deadline(function, values) if calls_out else impl(*values)
        except DependencyError:
            raise
        except Exception as error:
            # Only the type: a plugin's message may quote its arguments (tokens, keys), and the
            # rule's failure reason is logged and sent back to some vendors.
            raise FunctionError(f"{name}() raised {type(error).__name__}") from None
        return MISSING if result is None else result

    return call


class FunctionError(Exception):
    """A plugin's policy function raised; the rule that called it fails."""


def _number_of(value: Any) -> Any:
    """Vendor data arrives as text: ``"5"`` compares as 5 against a number. Only plain decimal
    text counts: ``"1e3"``, ``"inf"``, ``"1_000"`` and ``" 5"`` are not numbers."""
    if isinstance(value, str):
        return float(value) if DECIMAL.fullmatch(value) else MISSING
    return value


def _loosely_equal(a: Any, b: Any) -> bool:
    if a is MISSING or b is MISSING:
        return False
    # Constant lists are tuples; vendor data has lists. They compare by their items.
    if isinstance(a, tuple):
        a = list(a)
    if isinstance(b, tuple):
        b = list(b)
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, str):
        return bool(a == _number_of(b))
    if isinstance(b, int | float) and isinstance(a, str):
        return bool(b == _number_of(a))
    return bool(a == b)


def _equal_constant(left: Fn, constant: str) -> Fn:
    return lambda e, s: left(e, s) == constant


def _equal(left: Fn, right: Fn) -> Fn:
    return lambda e, s: _loosely_equal(left(e, s), right(e, s))


def _address_equal(left: Fn, right: Fn) -> Fn:
    def equal(e: Event, s: SessionView) -> bool:
        a, b = _address_of(left(e, s)), _address_of(right(e, s))
        return a is not None and a == b

    return equal


def _address_of(value: Any) -> Any:
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        value = str(value.network_address)
    return address_key(value) if isinstance(value, str) else None


_TEXT_TESTS: dict[str, Callable[[str, str], bool]] = {
    "startswith": str.startswith,
    "endswith": str.endswith,
    "contains": str.__contains__,
}

_ORDERINGS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _ordered(compare: Callable[[Any, Any], bool], left: Fn, right: Fn) -> Fn:
    return lambda e, s: _ordered_values(compare, left(e, s), right(e, s))


def _ordered_values(compare: Callable[[Any, Any], bool], a: Any, b: Any) -> bool:
    if a is MISSING or b is MISSING:
        return False
    if isinstance(a, str) != isinstance(b, str):
        a, b = _number_of(a), _number_of(b)
        if a is MISSING or b is MISSING:
            return False
    try:
        return compare(a, b)
    except TypeError:
        return False


def _text_test(method: Callable[[str, str], bool], left: Fn, right: Fn) -> Fn:
    def test(e: Event, s: SessionView) -> bool:
        a, b = left(e, s), right(e, s)
        return isinstance(a, str) and isinstance(b, str) and method(a, b)

    return test


def _in_ip_set(left: Fn, ip_set: IpSet) -> Fn:
    contains_key = ip_set.contains_key

    def contains(e: Event, s: SessionView) -> bool:
        value = left(e, s)
        if not isinstance(value, str):
            return False
        key = address_key(value)
        return key is not None and contains_key(key)

    return contains


def _makes_bool(node: ast.Expr) -> bool:
    """Whether the closure for ``node`` always returns ``True`` or ``False`` (never *missing* or
    another value), so ``and``/``or`` need not convert."""
    return isinstance(node, ast.Compare | ast.Logical | ast.Not)


def _text_test_constant(method: Callable[[str, str], bool], left: Fn, constant: str) -> Fn:
    return lambda e, s: isinstance(a := left(e, s), str) and method(a, constant)


def _client_ip_in(ip_set: IpSet) -> Fn:
    contains_key = ip_set.contains_key

    def contains(e: Event, s: SessionView) -> bool:
        key = _client_key(e.client_ip)
        return key is not None and contains_key(key)

    return contains


def _client_key(text: Any) -> AddressKey | None:
    return address_key(text) if text and isinstance(text, str) else None


def _param_in(name: str, container: frozenset[Any] | dict[str, Any]) -> Fn:
    return lambda e, s: _param_value_in(e.params.get(name), container)


def _param_value_in(value: Any, container: frozenset[Any] | dict[str, Any]) -> bool:
    if value is None or value == "":
        return False
    return _value_in_hashed(value, container)


def _in_hashed(left: Fn, container: frozenset[Any] | dict[str, Any]) -> Fn:
    def contains(e: Event, s: SessionView) -> bool:
        try:
            return left(e, s) in container
        except TypeError:  # an unhashable vendor value (a list, an object) is in no set
            return False

    return contains


def _value_in_hashed(value: Any, container: frozenset[Any] | dict[str, Any]) -> bool:
    try:
        return value in container
    except TypeError:  # an unhashable vendor value (a list, an object) is in no set
        return False


def _in_dynamic(left: Fn, right: Fn) -> Fn:
    def contains(e: Event, s: SessionView) -> bool:
        value, container = left(e, s), right(e, s)
        if value is MISSING or container is MISSING or isinstance(container, str):
            return False
        if isinstance(container, list | tuple):
            return any(_loosely_equal(value, item) for item in container)
        try:
            return value in container
        except TypeError:
            return False

    return contains


def _json(value: Any) -> Any:
    """Response data as JSON-ready values: addresses as text, secrets never."""
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items() if v is not MISSING}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value if v is not MISSING]
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return str(value.network_address) if value.prefixlen == value.max_prefixlen else str(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Secret):
        raise AssertionError("the checker lets no secret into response data")
    return value
