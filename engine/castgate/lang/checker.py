"""Names, types and constants: everything that can be known about a policy before any request.

The checker resolves every name (fields, ``let`` bindings, functions), assigns every expression a
static :class:`~castgate.lang.types.Type`, folds constants (literals, lists, load functions such as
``lines("keys.txt")``, regular expressions, time windows), and refuses response data a rule's
vendors cannot render. It reports every problem it finds, not just the first, and never raises for
a policy error: the compiler only ever sees a policy that checked clean.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Any

import re2

from castgate.events import ACTIONS
from castgate.lang import ast, regexes
from castgate.lang.addresses import AddressError, IpSet, parse_network
from castgate.lang.builtins import BUILTINS, Builtin, LoadContext, LoadError
from castgate.lang.errors import Code, Diagnostic, did_you_mean
from castgate.lang.functions import PolicyFunction
from castgate.lang.tokens import JWT_ALGORITHMS
from castgate.lang.types import RENDERABLE, Type
from castgate.lang.windows import DateRange, MomentRange, TimeWindow
from castgate.vendor import ResponseField, Vendor

#: Fields of the event, by dotted name. ``params.*`` and ``raw.*`` are open: any name reads.
EVENT_FIELDS: dict[str, Type] = {
    "vendor": Type.STRING,
    "action": Type.STRING,
    "app": Type.STRING,
    "node": Type.STRING,
    "role": Type.STRING,
    "now": Type.TIME,
    "stream.name": Type.STRING,
    "client.ip": Type.IP,
    "client.port": Type.NUMBER,
    "session.id": Type.STRING,
}
OPEN_FIELDS = frozenset({"params", "raw"})
_RECORDS = frozenset(name.split(".")[0] for name in EVENT_FIELDS if "." in name)

#: Response keys the core itself acts on, valid for every vendor.
CORE_RESPONSE_FIELDS: dict[str, ResponseField] = {
    "lifetime": ResponseField("duration", "end the session after this long"),
}

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_NETWORKS = (IPv4Network, IPv6Network)
_SCALARS = (str, int, float, bool)
_PLAIN = (*_SCALARS, tuple, dict)
#: What a constant list tested with `in` may hold: values, and addresses (an IP set is made).
_LISTED = (*_PLAIN, *_NETWORKS)
#: What `<`, `<=`, `>`, `>=` accept on either side.
_ORDERED = (Type.NUMBER, Type.STRING, Type.DURATION, Type.TIME, Type.ANY)


class Constant:
    """Marks "no constant value" apart from a constant ``None``."""


NOT_CONSTANT = Constant()


@dataclass(frozen=True, slots=True)
class FieldRef:
    path: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LetRef:
    let: ast.Let


@dataclass(frozen=True, slots=True)
class FunctionRef:
    function: Builtin | PolicyFunction


Ref = FieldRef | LetRef | FunctionRef


@dataclass
class Notes:
    """What the checker learned about each node, keyed by node identity."""

    types: dict[ast.Node, Type] = field(default_factory=dict)
    consts: dict[ast.Node, Any] = field(default_factory=dict)
    refs: dict[ast.Node, Ref] = field(default_factory=dict)
    #: Per-operator data made once at load: compiled regexes, sets for `in` over constant lists.
    prepared: dict[ast.Node, Any] = field(default_factory=dict)

    def const(self, node: ast.Node) -> Any:
        return self.consts.get(node, NOT_CONSTANT)


@dataclass(frozen=True, slots=True)
class CheckedRule:
    name: str
    file: str
    line: int
    kind: str  # "allow" | "deny"
    reason: str
    actions: frozenset[str] | None
    vendors: frozenset[str] | None
    apps: frozenset[str] | None
    condition: ast.Expr | None
    data: ast.ObjectExpr | None


@dataclass
class CheckedPolicy:
    rules: list[CheckedRule]
    notes: Notes
    diagnostics: list[Diagnostic]
    #: ``path:sha256`` of every data file the policies read.
    data_files: list[str]

    @property
    def calls_out(self) -> bool:
        """Whether any rule calls a function that reaches outside the process (a deadline)."""
        return any(
            isinstance(ref, FunctionRef)
            and isinstance(ref.function, PolicyFunction)
            and ref.function.deadline is not None
            for ref in self.notes.refs.values()
        )

    @property
    def reads_sessions(self) -> bool:
        """Whether any rule reads live-session state (``sessions.*``)."""
        return any(
            isinstance(ref, FunctionRef) and ref.function.name.startswith("sessions.")
            for ref in self.notes.refs.values()
        )

    @property
    def denial_windows(self) -> tuple[float, ...]:
        """The constant windows of ``sessions.denials``, smallest first: a shared state counts
        the denials within each of them up front, in the round trip that fetches the rest."""
        return tuple(
            sorted(
                {
                    float(window)
                    for node, ref in self.notes.refs.items()
                    if isinstance(ref, FunctionRef)
                    and ref.function.name == "sessions.denials"
                    and isinstance(node, ast.Call)
                    and len(node.args) == 2
                    and type(window := self.notes.const(node.args[1])) in (int, float)
                }
            )
        )


def check_policies(
    files: Iterable[tuple[ast.PolicyFile, Path]],
    *,
    vendors: Mapping[str, Vendor],
    functions: Mapping[str, PolicyFunction],
    env: Mapping[str, str],
) -> CheckedPolicy:
    """Check parsed files, each with the directory its data files must be in."""
    checker = _Checker(vendors, functions, env)
    for policy_file, policy_dir in files:
        checker.check_file(policy_file, policy_dir)
    return CheckedPolicy(checker.rules, checker.notes, checker.diagnostics, checker.data_files)


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


class _Checker:
    def __init__(
        self,
        vendors: Mapping[str, Vendor],
        functions: Mapping[str, PolicyFunction],
        env: Mapping[str, str],
    ) -> None:
        self.vendors = vendors
        self.functions: dict[str, Builtin | PolicyFunction] = {**BUILTINS, **functions}
        self.namespaces = frozenset(n.split(".")[0] for n in self.functions if "." in n)
        self.env = env
        self.notes = Notes()
        self.types = self.notes.types
        self.consts = self.notes.consts
        self.refs = self.notes.refs
        self.field_refs: dict[tuple[str, ...], FieldRef] = {}
        self.let_refs: dict[ast.Let, LetRef] = {}
        self.function_refs: dict[str, FunctionRef] = {}
        self.word_sets: dict[frozenset[str], frozenset[str]] = {}
        #: By the identity of the list, kept alive here so that the identity stays its own.
        self.sets: dict[int, tuple[tuple[Any, ...], Any]] = {}
        self.rules: list[CheckedRule] = []
        self.diagnostics: list[Diagnostic] = []
        #: The file and line each rule name was first defined at.
        self.rule_sites: dict[str, tuple[str, int]] = {}
        self.data_files: list[str] = []
        self.actions = set(ACTIONS).union(*(v.actions for v in vendors.values()))
        # Per file:
        self.file = ""
        self.source = ""
        #: ``source`` split into lines when the first error in the file needs one.
        self.source_lines: list[str] | None = None
        self.lets: dict[str, ast.Let] = {}
        self.load: LoadContext | None = None

    # Rules share one reference per field, let and function and one set per list of selector
    # words: fewer allocations while checking, and the selector sets, which compiled rules keep,
    # are a few hundred objects for the collector to scan after loading instead of 20,000.

    def field_ref(self, path: tuple[str, ...]) -> FieldRef:
        ref = self.field_refs.get(path)
        if ref is None:
            ref = self.field_refs[path] = FieldRef(path)
        return ref

    def let_ref(self, let: ast.Let) -> LetRef:
        ref = self.let_refs.get(let)
        if ref is None:
            ref = self.let_refs[let] = LetRef(let)
        return ref

    def function_ref(self, function: Builtin | PolicyFunction) -> FunctionRef:
        ref = self.function_refs.get(function.name)
        if ref is None:
            ref = self.function_refs[function.name] = FunctionRef(function)
        return ref

    def word_set(self, words: list[ast.Word]) -> frozenset[str] | None:
        if not words:
            return None
        texts = frozenset([word.text for word in words])
        return self.word_sets.setdefault(texts, texts)

    # reporting

    def error(self, code: Code, span: ast.Span, message: str, hint: str = "") -> None:
        if self.source_lines is None:
            self.source_lines = self.source.split("\n")
        source_line = (
            self.source_lines[span.line - 1] if 0 < span.line <= len(self.source_lines) else ""
        )
        self.diagnostics.append(
            Diagnostic(
                code,
                message,
                self.file,
                span.line,
                span.column,
                source_line,
                max(1, span.width),
                hint,
            )
        )

    # statements

    def check_file(self, policy_file: ast.PolicyFile, policy_dir: Path) -> None:
        self.file = policy_file.path
        self.source = policy_file.source
        self.source_lines = None
        self.lets = {}
        self.load = LoadContext(policy_dir, policy_dir, self.env, self.data_files)
        for item in policy_file.items:
            if isinstance(item, ast.Let):
                self.check_let(item)
            else:
                self.check_rule(item)

    def check_let(self, let: ast.Let) -> None:
        if let.name in self.lets:
            first = self.lets[let.name].name_span
            self.error(
                Code.DUPLICATE_LET,
                let.name_span,
                f"`{let.name}` is already defined",
                f"first defined at line {first.line}; pick another name",
            )
            return
        if let.name in EVENT_FIELDS or let.name in _RECORDS | OPEN_FIELDS | self.namespaces:
            self.error(
                Code.DUPLICATE_LET,
                let.name_span,
                f"`{let.name}` is a built-in name and cannot be redefined",
            )
            return
        self.expr(let.value)
        self.lets[let.name] = let

    def check_rule(self, rule: ast.Rule) -> None:
        first = self.rule_sites.get(rule.name)
        if first is not None:
            self.error(
                Code.DUPLICATE_RULE,
                rule.name_span,
                f"rule `{rule.name}` is already defined at {first[0]}:{first[1]}",
                "rule names are unique across all policy files; decisions name them",
            )
        else:
            self.rule_sites[rule.name] = (self.file, rule.name_span.line)
        words: dict[str, list[ast.Word]] = {"on": [], "from": [], "app": []}
        for selector in rule.selectors:
            words[selector.kind].extend(selector.words)
        for word in words["on"]:
            if word.text not in self.actions:
                self.error(
                    Code.UNKNOWN_ACTION,
                    word.span,
                    f"unknown action `{word.text}`",
                    did_you_mean(word.text, self.actions),
                )
        for word in words["from"]:
            if word.text not in self.vendors:
                hint = did_you_mean(word.text, self.vendors) or (
                    f"loaded vendors: {', '.join(sorted(self.vendors))}"
                    if self.vendors
                    else "no vendor plugins are loaded (see `castgate plugins`)"
                )
                self.error(Code.UNKNOWN_VENDOR, word.span, f"unknown vendor `{word.text}`", hint)
            else:
                vendor_actions = self.vendors[word.text].actions
                for action in words["on"]:
                    if action.text in self.actions and action.text not in vendor_actions:
                        self.error(
                            Code.UNKNOWN_ACTION,
                            action.span,
                            f"`{word.text}` never sends `{action.text}`",
                            f"it sends: {', '.join(sorted(vendor_actions))}",
                        )
        effect = rule.effect
        if effect.condition is not None:
            self.condition(effect.condition)
        vendors = self.word_set(words["from"])
        if effect.data is not None:
            self.check_response(effect.data, vendors)
        reason = (
            effect.reason.value
            if effect.reason is not None
            else f"denied by rule {rule.name}"
            if effect.kind == "deny"
            else f"allowed by rule {rule.name}"
        )
        self.rules.append(
            CheckedRule(
                name=rule.name,
                file=self.file,
                line=rule.span.line,
                kind=effect.kind,
                reason=reason,
                actions=self.word_set(words["on"]),
                vendors=vendors,
                apps=self.word_set(words["app"]),
                condition=effect.condition,
                data=effect.data,
            )
        )

    def check_response(self, data: ast.ObjectExpr, vendor_names: frozenset[str] | None) -> None:
        self.expr(data)
        applicable = [
            self.vendors[name]
            for name in sorted(vendor_names or self.vendors)
            if name in self.vendors
        ]
        for pair in data.pairs:
            value_type = self.notes.types.get(pair.value, Type.ANY)
            if value_type not in RENDERABLE:
                self.error(
                    Code.TYPE_MISMATCH,
                    pair.value.span,
                    f"a {value_type} cannot be sent in response data",
                )
                continue
            if pair.key in CORE_RESPONSE_FIELDS:
                self.check_field_type(pair, CORE_RESPONSE_FIELDS[pair.key], value_type)
                continue
            unable = [v.name for v in applicable if pair.key not in v.response_fields]
            if unable or not applicable:
                self.unrenderable(pair, unable, vendor_names is None)
                continue
            for vendor in applicable:
                self.check_field_type(pair, vendor.response_fields[pair.key], value_type)
        constant = self.notes.const(data)
        if constant is not NOT_CONSTANT:
            for vendor in applicable:
                for problem in vendor.validate_response(constant):
                    self.error(Code.BAD_RESPONSE, data.span, f"{vendor.name}: {problem}")

    def unrenderable(self, pair: ast.Pair, unable: list[str], every_vendor: bool) -> None:
        able = sorted(n for n, v in self.vendors.items() if pair.key in v.response_fields)
        if able:
            hint = f"only {', '.join(able)} can render it: add `from {able[0]}` to the rule"
        else:
            known = set(CORE_RESPONSE_FIELDS).union(
                *(v.response_fields for v in self.vendors.values())
            )
            hint = did_you_mean(pair.key, known) or "no loaded vendor can render it"
        who = ", ".join(unable) if unable else "any loaded vendor"
        scope = " (a rule without `from` applies to every vendor)" if every_vendor and able else ""
        self.error(
            Code.UNRENDERABLE_KEY,
            pair.span,
            f"`{pair.key}` cannot be rendered by {who}{scope}",
            hint,
        )

    def check_field_type(self, pair: ast.Pair, spec: ResponseField, value_type: Type) -> None:
        wanted = Type.from_name(spec.type)
        compatible = {
            Type.ANY: RENDERABLE,
            Type.STRING: {Type.STRING, Type.IP},
            Type.OBJECT: {Type.OBJECT, Type.MAP},
        }.get(wanted, {wanted})
        if value_type is not Type.ANY and value_type not in compatible:
            self.error(
                Code.TYPE_MISMATCH,
                pair.value.span,
                f"`{pair.key}` must be a {wanted}, not a {value_type}",
            )

    # expressions

    def condition(self, node: ast.Expr) -> None:
        found = self.operand(node)
        if found not in (Type.BOOL, Type.ANY):
            hint = (
                f"to test that it is present, write `has({_source_text(node)})`"
                if found in (Type.STRING, Type.NUMBER, Type.IP)
                else ""
            )
            self.error(
                Code.TYPE_MISMATCH,
                node.span,
                f"a condition must be true or false, but this is a {found}",
                hint,
            )

    def operand(self, node: ast.Expr) -> Type:
        """Type of ``node`` used as a value: secrets may not be used that way."""
        found = self.expr(node)
        if found is Type.SECRET:
            self.error(
                Code.SECRET_MISUSE,
                node.span,
                "a secret can only be passed to a token check",
                "secure_link(..., secret) and jwt(token, secret) take secrets; "
                "secrets are never compared, combined or sent",
            )
            return Type.ANY
        return found

    def expr(self, node: ast.Expr) -> Type:
        # One dictionary lookup by exact class instead of a `match` that tries each node class in
        # turn: 10,000 rules have about 70,000 expression nodes.
        handler = _HANDLERS.get(type(node))
        if handler is None:
            raise AssertionError(f"unhandled node {node!r}")
        found, constant = handler(self, node)
        self.types[node] = found
        if constant is not NOT_CONSTANT:
            self.consts[node] = constant
        return found

    def string(self, node: ast.String) -> tuple[Type, Any]:
        return Type.STRING, node.value

    def number(self, node: ast.Number) -> tuple[Type, Any]:
        return Type.NUMBER, node.value

    def duration(self, node: ast.Duration) -> tuple[Type, Any]:
        return Type.DURATION, node.seconds

    def boolean(self, node: ast.Bool) -> tuple[Type, Any]:
        return Type.BOOL, node.value

    def address(self, node: ast.Address) -> tuple[Type, Any]:
        try:
            return Type.IP, parse_network(node.text)
        except AddressError as err:
            self.error(Code.BAD_ADDRESS, node.span, str(err))
            return Type.IP, NOT_CONSTANT

    def list_expr(self, node: ast.ListExpr) -> tuple[Type, Any]:
        consts = self.consts
        values = []
        constant = True
        for item in node.items:
            self.operand(item)
            value = consts.get(item, NOT_CONSTANT)
            if value is NOT_CONSTANT:
                constant = False
            values.append(value)
        return Type.LIST, tuple(values) if constant else NOT_CONSTANT

    def object_expr(self, node: ast.ObjectExpr) -> tuple[Type, Any]:
        pairs = node.pairs
        seen: set[str] = set()
        for pair in pairs:
            if pair.key in seen:
                self.error(Code.DUPLICATE_KEY, pair.span, f"key `{pair.key}` repeats")
            seen.add(pair.key)
            self.operand(pair.value)
        entries = {p.key: self.notes.const(p.value) for p in pairs}
        if any(v is NOT_CONSTANT for v in entries.values()):
            return Type.OBJECT, NOT_CONSTANT
        return Type.OBJECT, entries

    def negation(self, node: ast.Not) -> tuple[Type, Any]:
        self.condition(node.operand)
        inner = self.consts.get(node.operand, NOT_CONSTANT)
        return Type.BOOL, (not inner) if isinstance(inner, bool) else NOT_CONSTANT

    def logical(self, node: ast.Logical) -> tuple[Type, Any]:
        self.condition(node.left)
        self.condition(node.right)
        return Type.BOOL, NOT_CONSTANT

    def time_window(self, node: ast.Window) -> tuple[Type, Any]:
        return Type.WINDOW, self.window(node)

    def name(self, node: ast.Name) -> tuple[Type, Any]:
        ident = node.ident
        if ident in self.lets:
            let = self.lets[ident]
            self.refs[node] = self.let_ref(let)
            return self.types[let.value], self.consts.get(let.value, NOT_CONSTANT)
        if ident in EVENT_FIELDS:
            self.refs[node] = self.field_ref((ident,))
            return EVENT_FIELDS[ident], NOT_CONSTANT
        if ident in OPEN_FIELDS:
            self.refs[node] = self.field_ref((ident,))
            return Type.ANY, NOT_CONSTANT
        if ident in _RECORDS:
            fields = sorted(n for n in EVENT_FIELDS if n.startswith(ident + "."))
            self.error(
                Code.UNKNOWN_FIELD,
                node.span,
                f"`{ident}` needs a field",
                f"write {' or '.join(f'`{f}`' for f in fields)}",
            )
            return Type.ANY, NOT_CONSTANT
        if ident in self.functions or ident in self.namespaces:
            self.error(
                Code.TYPE_MISMATCH,
                node.span,
                f"`{ident}` is a function; call it",
                f"write `{ident}(...)`",
            )
            return Type.ANY, NOT_CONSTANT
        known = [*self.lets, *EVENT_FIELDS, *OPEN_FIELDS, *_RECORDS]
        self.error(
            Code.UNKNOWN_NAME,
            node.span,
            f"unknown name `{ident}`",
            did_you_mean(ident, known)
            or f"define it first with `let {ident} = ...`, or use a field such as `params.{ident}`",
        )
        return Type.ANY, NOT_CONSTANT

    def attr(self, node: ast.Attr) -> tuple[Type, Any]:
        path = _dotted(node)
        if path is not None and path[0] not in self.lets:
            head = path[0]
            if head in OPEN_FIELDS:
                self.refs[node] = self.field_ref(path)
                return Type.ANY, NOT_CONSTANT
            if head in _RECORDS:
                dotted = ".".join(path)
                if dotted in EVENT_FIELDS:
                    self.refs[node] = self.field_ref(path)
                    return EVENT_FIELDS[dotted], NOT_CONSTANT
                fields = [n for n in EVENT_FIELDS if n.startswith(head + ".")]
                self.error(
                    Code.UNKNOWN_FIELD,
                    node.name_span,
                    f"unknown field `{dotted}`",
                    did_you_mean(dotted, fields) or f"{head} has: {', '.join(fields)}",
                )
                return Type.ANY, NOT_CONSTANT
            if ".".join(path) in self.functions or head in self.namespaces:
                self.error(
                    Code.TYPE_MISMATCH, node.span, f"`{'.'.join(path)}` is a function; call it"
                )
                return Type.ANY, NOT_CONSTANT
        target = self.operand(node.target)
        if target not in (Type.OBJECT, Type.MAP, Type.ANY):
            self.error(Code.TYPE_MISMATCH, node.name_span, f"a {target} has no fields")
            return Type.ANY, NOT_CONSTANT
        constant = self.notes.const(node.target)
        if isinstance(constant, dict):
            return Type.ANY, constant.get(node.name, NOT_CONSTANT)
        return Type.ANY, NOT_CONSTANT

    def index(self, node: ast.Index) -> tuple[Type, Any]:
        target = self.operand(node.target)
        key = self.operand(node.key)
        if target not in (Type.OBJECT, Type.MAP, Type.LIST, Type.ANY):
            self.error(Code.TYPE_MISMATCH, node.span, f"a {target} cannot be indexed")
        elif target is Type.LIST and key not in (Type.NUMBER, Type.ANY):
            self.error(Code.TYPE_MISMATCH, node.key.span, f"a list index is a number, not a {key}")
        elif target is not Type.LIST and key not in (Type.STRING, Type.ANY):
            self.error(Code.TYPE_MISMATCH, node.key.span, f"a key is a string, not a {key}")
        return (Type.STRING if target is Type.MAP else Type.ANY), NOT_CONSTANT

    def call(self, node: ast.Call) -> tuple[Type, Any]:
        path = _dotted(node.function)
        if path is None:
            self.error(
                Code.UNKNOWN_FUNCTION, node.function.span, "only named functions can be called"
            )
            return Type.ANY, NOT_CONSTANT
        name = ".".join(path)
        function = self.functions.get(name)
        if function is None:
            self.error(
                Code.UNKNOWN_FUNCTION,
                node.function.span,
                f"unknown function `{name}`",
                did_you_mean(name, self.functions)
                or "plugins add functions; see `castgate plugins`",
            )
            for arg in node.args:
                self.expr(arg)
            return Type.ANY, NOT_CONSTANT
        self.refs[node] = self.function_ref(function)
        if isinstance(function, Builtin):
            params, optional, returns = function.params, function.optional, function.returns
        else:
            params = tuple(Type.from_name(p) for p in function.params)
            optional, returns = 0, Type.from_name(function.returns)
        if not len(params) - optional <= len(node.args) <= len(params):
            wanted = f"{len(params) - optional} to {len(params)}" if optional else str(len(params))
            self.error(
                Code.ARGUMENT_COUNT,
                node.span,
                f"`{name}` takes {wanted} argument{'s' if wanted != '1' else ''}, "
                f"not {len(node.args)}",
            )
            return returns, NOT_CONSTANT
        for arg, wanted_type in zip(node.args, params, strict=False):
            self.argument(name, arg, wanted_type)
        if name == "jwt" and len(node.args) == 3:
            self.check_algorithms(node.args[2])
        if isinstance(function, Builtin) and function.at_load:
            return returns, self.run_at_load(function, node)
        return returns, NOT_CONSTANT

    def argument(self, function: str, arg: ast.Expr, wanted: Type) -> None:
        if wanted is Type.SECRET:
            found = self.expr(arg)
            if found is not Type.SECRET:
                self.error(
                    Code.SECRET_MISUSE,
                    arg.span,
                    f"`{function}` needs a secret here, not a {found}",
                    'write env("VARIABLE") or secret_file("key.pem"), or a let bound to one',
                )
            return
        found = self.operand(arg)
        if wanted is Type.ANY or found is Type.ANY or found is wanted:
            return
        if wanted is Type.STRING and found is Type.IP:
            return
        self.error(
            Code.TYPE_MISMATCH, arg.span, f"`{function}` needs a {wanted} here, not a {found}"
        )

    def check_algorithms(self, arg: ast.Expr) -> None:
        value = self.notes.const(arg)
        if not isinstance(value, tuple) or not value:
            self.error(
                Code.NOT_CONSTANT,
                arg.span,
                'the algorithms must be a constant list such as ["HS256"]',
            )
            return
        for algorithm in value:
            if algorithm not in JWT_ALGORITHMS:
                self.error(
                    Code.TYPE_MISMATCH,
                    arg.span,
                    f"unsupported JWT algorithm `{algorithm}`",
                    did_you_mean(str(algorithm), JWT_ALGORITHMS)
                    or f"supported: {', '.join(sorted(JWT_ALGORITHMS))}",
                )

    def run_at_load(self, function: Builtin, node: ast.Call) -> Any:
        args = [self.notes.const(a) for a in node.args]
        if any(a is NOT_CONSTANT for a in args):
            self.error(
                Code.NOT_CONSTANT,
                node.span,
                f"`{function.name}` runs when the policy loads, so its arguments must be constants",
            )
            return NOT_CONSTANT
        for arg, value, wanted in zip(node.args, args, function.params, strict=False):
            # `argument` lets vendor data (any type) and addresses pass for text; a load
            # function must get the text itself (a file name, a variable name).
            if wanted is Type.STRING and not isinstance(value, str):
                found = self.types[arg]
                if found in (Type.IP, Type.ANY):  # other types `argument` reported already
                    self.error(
                        Code.TYPE_MISMATCH,
                        arg.span,
                        f"`{function.name}` needs a string here, not a {found}",
                    )
                return NOT_CONSTANT
        assert self.load is not None
        try:
            return function.impl(self.load, *args)
        except LoadError as err:
            self.error(err.code, node.span, err.message, err.hint)
            return NOT_CONSTANT

    def add(self, node: ast.Add) -> tuple[Type, Any]:
        left, right = node.left, node.right
        a, b = self.operand(left), self.operand(right)
        known = {a, b} - {Type.ANY}
        if len(known) > 1 or (
            known and known.pop() not in (Type.STRING, Type.NUMBER, Type.DURATION)
        ):
            self.error(
                Code.TYPE_MISMATCH,
                node.span,
                f"cannot add a {a} and a {b}",
                "`+` joins two strings or adds two numbers or durations",
            )
            return Type.ANY, NOT_CONSTANT
        result = a if a is not Type.ANY else b
        x, y = self.notes.const(left), self.notes.const(right)
        if x is not NOT_CONSTANT and y is not NOT_CONSTANT:
            return result, x + y
        return result, NOT_CONSTANT

    def compare(self, node: ast.Compare) -> tuple[Type, Any]:
        op = node.op
        left, right = self.operand(node.left), self.operand(node.right)
        anywhere = Type.ANY in (left, right)
        if op in ("in", "not_in"):
            self.membership(node, left, right)
        elif op in ("==", "!="):
            address_text = (left is Type.IP and right is Type.STRING) or (
                left is Type.STRING and right is Type.IP
            )
            if not anywhere and left is not right and not address_text:
                self.error(
                    Code.TYPE_MISMATCH,
                    node.span,
                    f"comparing a {left} with a {right} is never true",
                )
            for side in (node.left, node.right):
                block = self.consts.get(side, NOT_CONSTANT)
                if isinstance(block, _NETWORKS) and (block.prefixlen < block.max_prefixlen):
                    self.error(
                        Code.TYPE_MISMATCH,
                        side.span,
                        f"an address never equals the block `{block.with_prefixlen}`",
                        f"to test membership, write `... in {block.with_prefixlen}`",
                    )
            if address_text:
                self.check_address_literal(node.right if right is Type.STRING else node.left)
        elif op in ("<", "<=", ">", ">="):
            if (
                left not in _ORDERED
                or right not in _ORDERED
                or (not anywhere and left is not right)
            ):
                self.error(
                    Code.TYPE_MISMATCH,
                    node.span,
                    f"cannot order a {left} and a {right}",
                    "order numbers with numbers, durations with durations, strings with strings",
                )
        elif op == "matches":
            if left not in (Type.STRING, Type.ANY):
                self.error(Code.TYPE_MISMATCH, node.left.span, f"cannot match a {left}")
            pattern = self.notes.const(node.right)
            if not isinstance(pattern, str):
                self.error(
                    Code.NOT_CONSTANT,
                    node.right.span,
                    "the pattern must be a constant string so it compiles once at load",
                )
            else:
                try:
                    self.notes.prepared[node] = regexes.compile_pattern(pattern)
                except re2.error as err:
                    reason = err.args[0] if err.args else ""
                    if isinstance(reason, bytes):
                        reason = reason.decode("utf-8", "replace")
                    self.error(
                        Code.BAD_REGEX,
                        node.right.span,
                        f"invalid regular expression: {reason}",
                        "patterns use RE2 syntax (no backreferences or lookaround)",
                    )
        else:  # startswith, endswith, contains
            for side, found in ((node.left, left), (node.right, right)):
                if found not in (Type.STRING, Type.ANY):
                    self.error(
                        Code.TYPE_MISMATCH, side.span, f"`{op}` works on strings, not a {found}"
                    )
        return Type.BOOL, NOT_CONSTANT

    def check_address_literal(self, node: ast.Expr) -> None:
        text = self.notes.const(node)
        if isinstance(text, str):
            try:
                parse_network(text)
            except AddressError as err:
                self.error(Code.BAD_ADDRESS, node.span, str(err))

    def membership(self, node: ast.Compare, left: Type, right: Type) -> None:
        container = self.notes.const(node.right)
        if right is Type.WINDOW:
            if left not in (Type.TIME, Type.ANY):
                self.error(
                    Code.TYPE_MISMATCH,
                    node.left.span,
                    f"a time window holds times, not a {left}",
                    "write `now in ...`",
                )
        elif right in (Type.IP, Type.IP_SET):
            if left not in (Type.IP, Type.STRING, Type.ANY):
                self.error(
                    Code.TYPE_MISMATCH, node.left.span, f"an IP set holds addresses, not a {left}"
                )
        elif right is Type.STRING_SET or right is Type.MAP:
            if left not in (Type.STRING, Type.ANY):
                self.error(
                    Code.TYPE_MISMATCH, node.left.span, f"this set holds strings, not a {left}"
                )
        elif right is Type.LIST:
            if (
                left is Type.IP
                and isinstance(container, tuple)
                and any(isinstance(x, _SCALARS) for x in container)
            ):
                self.error(
                    Code.TYPE_MISMATCH,
                    node.right.span,
                    "an address is compared with a list that holds non-addresses",
                    "write addresses bare, without quotes: [10.0.0.0/8, ::1]",
                )
        elif right is Type.STRING:
            self.error(
                Code.TYPE_MISMATCH,
                node.span,
                "`in` needs a list or set, not a string",
                "to test for a substring, write `text contains part`",
            )
        elif right not in (Type.OBJECT, Type.ANY):
            self.error(
                Code.TYPE_MISMATCH, node.right.span, f"`in` needs a list or set, not a {right}"
            )
        if right is Type.LIST and isinstance(container, tuple):
            if all(isinstance(x, _LISTED) for x in container):
                self.notes.prepared[node] = self.set_of(container)
            else:
                self.error(
                    Code.TYPE_MISMATCH,
                    node.right.span,
                    "`in` looks through a list of values or addresses; this one holds a time "
                    "window or a set",
                    "test each on its own: `now in showtime`, `client.ip in blocked`",
                )

    def set_of(self, items: tuple[Any, ...]) -> Any:
        # Every rule that tests against the same `let` list shares one set.
        made = self.sets.get(id(items))
        if made is None:
            made = self.sets[id(items)] = (items, _set_of(items))
        return made[1]

    def window(self, node: ast.Window) -> Any:
        zone_name = node.zone.value
        try:
            zone = (
                zoneinfo.ZoneInfo(zone_name)
                if zone_name in _zone_names() or zone_name == "UTC"
                else None
            )
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            zone = None
        if zone is None:
            self.error(
                Code.UNKNOWN_ZONE,
                node.zone.span,
                f"unknown time zone `{zone_name}`",
                did_you_mean(zone_name, _zone_names())
                or 'use an IANA name such as "Europe/Berlin" or "UTC"',
            )
            return NOT_CONSTANT
        clock = self.clock(node.clock) if node.clock is not None else None
        days = frozenset(d for span in node.days for d in _day_numbers(span)) or None
        dates: list[DateRange] = []
        moments: list[MomentRange] = []
        for span in node.dates:
            parsed = self.date_span(span, zone)
            if isinstance(parsed, DateRange):
                dates.append(parsed)
            elif isinstance(parsed, MomentRange):
                moments.append(parsed)
        if moments and (dates or clock):
            self.error(
                Code.BAD_TIME,
                node.span,
                "a window mixes moments (date and time) with whole days or a daily time",
                'write moments alone: dates 2026-12-24T18:00..2026-12-24T22:00 "UTC"',
            )
            return NOT_CONSTANT
        return TimeWindow(zone, days=days, clock=clock, dates=dates, moments=moments)

    def clock(self, span: ast.ClockSpan) -> tuple[int, int] | None:
        start, end = _clock_seconds(span.start), _clock_seconds(span.end)
        if start is None or start >= 86400:
            self.error(Code.BAD_TIME, span.span, f"`{span.start}` is not a time of day")
            return None
        if end is None or end > 86400:
            self.error(Code.BAD_TIME, span.span, f"`{span.end}` is not a time of day")
            return None
        if start == end % 86400:
            self.error(
                Code.BAD_TIME,
                span.span,
                "the time range is empty",
                "to match the whole day, leave the time range out",
            )
            return None
        return start, end

    def date_span(
        self, span: ast.DateSpan, zone: zoneinfo.ZoneInfo
    ) -> DateRange | MomentRange | None:
        has_time = ["T" in text for text in (span.first, span.last) if text is not None]
        if any(has_time) and not (all(has_time) and span.last is not None):
            self.error(
                Code.BAD_TIME,
                span.span,
                "a moment range needs a date and time at both ends",
                "e.g. 2026-12-24T18:00..2026-12-24T22:00",
            )
            return None
        try:
            if any(has_time):
                assert span.last is not None
                start = dt.datetime.fromisoformat(span.first).replace(tzinfo=zone)
                end = dt.datetime.fromisoformat(span.last).replace(tzinfo=zone)
                if end <= start:
                    self.error(Code.BAD_TIME, span.span, "the range ends before it starts")
                    return None
                return MomentRange(start, end)
            first = dt.date.fromisoformat(span.first)
            last = dt.date.fromisoformat(span.last) if span.last else first
        except ValueError as err:
            self.error(Code.BAD_TIME, span.span, f"invalid date: {err}")
            return None
        if last < first:
            self.error(Code.BAD_TIME, span.span, "the range ends before it starts")
            return None
        return DateRange(first, last)


_HANDLERS: dict[type, Callable[[_Checker, Any], tuple[Type, Any]]] = {
    ast.String: _Checker.string,
    ast.Number: _Checker.number,
    ast.Duration: _Checker.duration,
    ast.Bool: _Checker.boolean,
    ast.Address: _Checker.address,
    ast.Name: _Checker.name,
    ast.Attr: _Checker.attr,
    ast.Index: _Checker.index,
    ast.Call: _Checker.call,
    ast.ListExpr: _Checker.list_expr,
    ast.ObjectExpr: _Checker.object_expr,
    ast.Not: _Checker.negation,
    ast.Logical: _Checker.logical,
    ast.Compare: _Checker.compare,
    ast.Add: _Checker.add,
    ast.Window: _Checker.time_window,
}


def _dotted(node: ast.Expr) -> tuple[str, ...] | None:
    names = []
    while isinstance(node, ast.Attr):
        names.append(node.name)
        node = node.target
    if not isinstance(node, ast.Name):
        return None
    names.append(node.ident)
    names.reverse()
    return tuple(names)


def _source_text(node: ast.Expr) -> str:
    path = _dotted(node)
    return ".".join(path) if path else "..."


def _day_numbers(span: ast.DaySpan) -> list[int]:
    first = _DAYS.index(span.first)
    last = _DAYS.index(span.last) if span.last else first
    count = (last - first) % 7 + 1
    return [(first + i) % 7 for i in range(count)]


def _clock_seconds(text: str) -> int | None:
    parts = [int(p) for p in text.split(":")]
    hours, minutes, seconds = (*parts, 0) if len(parts) == 2 else parts
    if hours > 24 or (hours == 24 and (minutes or seconds)):
        return None
    return hours * 3600 + minutes * 60 + seconds


def _set_of(items: tuple[Any, ...]) -> Any:
    """The fastest container for a constant list used with ``in``."""
    if items and all(isinstance(x, _NETWORKS) for x in items):
        return IpSet(items)
    if all(isinstance(x, str) for x in items):
        return frozenset(items)
    return items
