"""A compiled policy set and its decision procedure.

Semantics (docs/policy-language.md, "How a decision is made"):

1. Only rules whose ``on``/``from``/``app`` selectors admit the event are visited; an index built
   at load finds them without looking at the others. Within them, a run of rules that each first
   test one field against text constants (``stream.name == "x"``, ``params.key in [...]``) is
   answered by one dict lookup instead of a visit to every rule.
2. Any deny rule that matches decides: an explicit deny overrides every allow.
3. Otherwise the first matching allow rule, in file order (files in name order), decides and
   supplies the response data.
4. Otherwise the request is denied (default deny).
5. A rule whose evaluation raises denies the request; the decision names the rule and the error.
6. Notifications are always acknowledged; a matching deny rule marks the decision ``flagged``.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from castgate.events import NOTIFICATIONS, Decision, Effect, Event, RuleTrace
from castgate.lang.compiler import CompiledRule, Fn, Names
from castgate.lang.functions import DependencyError
from castgate.state import SessionView

DEFAULT_DENY = Decision(Effect.DENY, "no rule allowed this request")
_ACKNOWLEDGED = Decision(Effect.ACK, "notification acknowledged")
# Distinct (vendor, action) pairs are few (plugins define them); the cap only guards against an
# unbounded stream of made-up values reaching the index through `castgate eval` or a plugin bug.
_INDEX_LIMIT = 4096


#: A rule as :meth:`PolicySet.decide` walks it: ``(condition, prebuilt decision or None, rule)``,
#: the decision already in the form the action needs (acknowledged for notifications).
_Step = tuple[Fn | None, Decision | None, CompiledRule]
#: Consecutive steps: ``(read, by_value, steps)``. With ``read`` None, every step is visited.
#: Otherwise every rule's guard tests the field ``read`` returns, and ``by_value`` holds, per text
#: value, the steps whose guard admits it, in file order.
_Stretch = tuple[Fn | None, dict[str, tuple[_Step, ...]], tuple[_Step, ...]]
#: The ``by_value`` of a stretch visited whole; never consulted, as its ``read`` is None.
_VISIT_ALL: dict[str, tuple[_Step, ...]] = {}
#: A lookup pays for itself from two rules on: for one, it only adds a dict probe to the test.
_SHORTEST_RUN = 2
#: Rules written out in one generated function at most; :func:`_walk` visits the rest. Compiling
#: source costs about 0.1 ms a rule, paid by the first event to reach a candidate set.
_MOST_WRITTEN = 200
#: A run of guarded rules this short is written out like any other rules, not looked up: each
#: written-out guard fails in about 40 ns, while the lookup calls the field's closure and then
#: walks the closures of the rules it finds.
_LONGEST_RUN_WRITTEN = 8


@dataclass(slots=True)
class _Candidates:
    denies: tuple[CompiledRule, ...]
    allows: tuple[CompiledRule, ...]
    in_order: tuple[CompiledRule, ...]
    #: What :meth:`PolicySet.decide` walks: the denies, then the allows, in file order. One walk
    #: over both is the procedure itself: the first rule that matches or fails decides.
    steps: tuple[_Stretch, ...] = ()
    default: Decision = DEFAULT_DENY
    notification: bool = False
    #: The walk over ``steps`` as one generated function, made on first use (an index holds one
    #: candidate set per app named, and most are never asked for); :func:`_generate`.
    run: Callable[[Event, SessionView], Decision] | None = None
    #: The source ``run`` was compiled from, for tests and debugging.
    source: str = ""

    def generate(self) -> Callable[[Event, SessionView], Decision]:
        self.source, self.run = _generate(self.steps, self.default, self.notification)
        return self.run


#: One (vendor, action)'s candidates: per app named in some rule, and for any other app.
_PerApp = tuple[dict[str, _Candidates], _Candidates]


class PolicySet:
    """Compiled rules ready to decide. Immutable: a reload builds a new one and swaps it in."""

    def __init__(
        self,
        rules: Sequence[CompiledRule],
        files: Sequence[Path],
        version: str,
        *,
        reads_sessions: bool = True,
        denial_windows: Sequence[float] = (),
        calls_out: bool = False,
        data_files: Sequence[Path] = (),
    ) -> None:
        self.rules = tuple(rules)
        self.files = tuple(files)
        #: The data files the policies read (``lines()``, ``cidrs()``, ...): a change to any of
        #: them, as to a policy file, calls for a reload.
        self.data_files = tuple(data_files)
        #: Whether deciding can read live-session state; a shared backend skips fetching it
        #: when not.
        self.reads_sessions = reads_sessions
        #: The constant windows of ``sessions.denials`` calls, for a shared backend to count up
        #: front (a window it was not given costs a second round trip).
        self.denial_windows = tuple(denial_windows)
        #: Whether a decision may wait on a function that calls out (so must not run on the
        #: event loop).
        self.calls_out = calls_out
        #: A short digest of the policy sources and every data file they read.
        self.version = version
        #: Per vendor, per action: each named app's candidates, and the other apps'. Nested rather
        #: than keyed by pairs: no tuple to build and hash per decision (about 60 ns of ~1.3 us).
        self._index: dict[str, dict[str, _PerApp]] = {}
        self._indexed = 0

    def candidates(self, vendor: str, action: str, app: str) -> _Candidates:
        """The rules that can apply to an event, in file order."""
        by_app, other_apps = self._per_app(vendor, action)
        return by_app.get(app, other_apps)

    def _per_app(self, vendor: str, action: str) -> _PerApp:
        per_app = self._index.get(vendor, {}).get(action)
        if per_app is None:
            per_app = self._build_index(vendor, action)
            if self._indexed < _INDEX_LIMIT:
                self._index.setdefault(vendor, {})[action] = per_app
                self._indexed += 1
        return per_app

    def _build_index(self, vendor: str, action: str) -> _PerApp:
        applicable = [
            r
            for r in self.rules
            if (r.vendors is None or vendor in r.vendors)
            and (r.actions is None or action in r.actions)
        ]
        # One pass: each app's own rules, merged with the any-app rules in file order. Testing
        # every rule against every named app was quadratic: 2.7 s for 10,000 apps.
        shared = [r for r in applicable if r.apps is None]
        own: dict[str, list[CompiledRule]] = {}
        for r in applicable:
            if r.apps is not None:
                for app in r.apps:
                    own.setdefault(app, []).append(r)
        position = {id(r): i for i, r in enumerate(applicable)}

        def in_order(app: str | None) -> tuple[CompiledRule, ...]:
            mine = own.get(app, []) if app is not None else []
            if not mine or not shared:
                return tuple(mine or shared)
            return tuple(heapq.merge(shared, mine, key=lambda r: position[id(r)]))

        notification = action in NOTIFICATIONS

        def for_app(app: str | None) -> _Candidates:
            rules = in_order(app)
            denies = tuple(r for r in rules if r.kind == "deny")
            allows = tuple(r for r in rules if r.kind == "allow")
            return _Candidates(
                denies,
                allows,
                rules,
                _stretches(denies + allows, notification),
                _ACKNOWLEDGED if notification else DEFAULT_DENY,
                notification,
            )

        return {app: for_app(app) for app in own}, for_app(None)

    def decide(self, event: Event, state: SessionView, *, explain: bool = False) -> Decision:
        """The decision for ``event``. A failing rule is a deny that names it; only a
        :class:`DependencyError` propagates, for the caller to apply its fail mode."""
        try:
            by_app, other_apps = self._index[event.vendor][event.action]
        except KeyError:
            by_app, other_apps = self._per_app(event.vendor, event.action)
        found = by_app.get(event.app, other_apps)
        if explain:
            decision = self._explained(found, event, state)
            return _as_notification(decision) if found.notification else decision
        run = found.run
        if run is None:
            run = found.generate()
        return run(event, state)

    def _explained(self, found: _Candidates, event: Event, state: SessionView) -> Decision:
        """Evaluates every candidate rule, recording each, then decides as :meth:`decide` does."""
        traces: list[RuleTrace] = []
        outcome: dict[str, bool | Exception] = {}
        for rule in found.in_order:
            try:
                matched: bool | Exception = rule.condition is None or bool(
                    rule.condition(event, state)
                )
            except DependencyError:
                raise
            except Exception as err:
                matched = err
            outcome[rule.name] = matched
            if isinstance(matched, Exception):
                traces.append(RuleTrace(rule.name, rule.kind, None, _describe(matched)))
            else:
                traces.append(RuleTrace(rule.name, rule.kind, matched))
        decision = self._decided_from(found, outcome, event, state)
        return replace(decision, trace=tuple(traces))

    @staticmethod
    def _decided_from(
        found: _Candidates,
        outcome: dict[str, bool | Exception],
        event: Event,
        state: SessionView,
    ) -> Decision:
        """:meth:`decide`'s procedure over outcomes already computed, so explaining never
        changes the decision."""
        for rule in found.denies:
            result = outcome[rule.name]
            if isinstance(result, Exception):
                return _failure(rule, result)
            if result:
                return rule.decision or DEFAULT_DENY
        for rule in found.allows:
            result = outcome[rule.name]
            if isinstance(result, Exception):
                return _failure(rule, result)
            if result:
                try:
                    return _allowed(rule, event, state)
                except DependencyError:
                    raise
                except Exception as err:
                    return _failure(rule, err)
        return DEFAULT_DENY


def _stretches(rules: Sequence[CompiledRule], notification: bool) -> tuple[_Stretch, ...]:
    """``rules`` as :meth:`PolicySet.decide` walks them, each run of consecutive rules guarded on
    one field collapsed into a lookup. Leaving out the rules a lookup does not name is exact:
    their guard is false, is tested first and raises nothing (see ``Guard``). Only consecutive
    rules: one in between that could match or fail must keep its place in the walk."""
    steps = [
        (rule.condition, rule.decision and _final(rule.decision, notification), rule)
        for rule in rules
    ]
    stretches: list[_Stretch] = []
    visited_from = start = 0
    while start < len(rules):
        guard = rules[start].guard
        if guard is None:
            start += 1
            continue
        run = [guard]
        end = start + 1
        while end < len(rules):
            following = rules[end].guard
            if following is None or following.field != guard.field:
                break
            run.append(following)
            end += 1
        if len(run) >= _SHORTEST_RUN:
            if visited_from < start:
                stretches.append((None, _VISIT_ALL, tuple(steps[visited_from:start])))
            candidates: dict[str, list[_Step]] = {}
            for each, step in zip(run, steps[start:end], strict=True):
                for value in each.values:
                    candidates.setdefault(value, []).append(step)
            by_value = {value: tuple(found) for value, found in candidates.items()}
            stretches.append((guard.read, by_value, tuple(steps[start:end])))
            visited_from = end
        start = end
    if visited_from < len(rules):
        stretches.append((None, _VISIT_ALL, tuple(steps[visited_from:])))
    return tuple(stretches)


def _walk(
    steps: tuple[_Step, ...], event: Event, state: SessionView, notification: bool
) -> Decision | None:
    """The decision of the first of ``steps`` that matches or fails; ``None`` if none does."""
    for condition, prebuilt, rule in steps:
        try:
            if condition is None or condition(event, state):
                if prebuilt is not None:
                    return prebuilt
                return _final(_allowed(rule, event, state), notification)
        except DependencyError:
            raise
        except Exception as err:
            return _final(_failure(rule, err), notification)
    return None


def _generate(
    stretches: Sequence[_Stretch], default: Decision, notification: bool
) -> tuple[str, Callable[[Event, SessionView], Decision]]:
    """The walk over ``stretches`` as the source of one function ``(e, s) -> Decision``, and the
    function. Each rule becomes its condition written out (:meth:`CompiledRule.source`) in a
    ``try`` of its own, in walk order, so the first rule that matches or fails returns; a run
    answered by a lookup calls :func:`_walk` on the rules the lookup finds. Against walking
    closures this saves, per rule visited, the loop, the unpacking, and a call per node of the
    condition; and a condition that is only a set or range lookup is a few bytecodes."""
    names = Names()
    of = names.of
    walk = f"{of(_walk)}({{}}, e, s, {of(notification)})"
    body: list[str] = []
    visited = 0
    for read, by_value, steps in stretches:
        if read is not None and len(steps) > _LONGEST_RUN_WRITTEN:
            body += [
                "try:",
                f"    _v = {of(read)}(e, s)",
                "except Exception:",
                "    _v = None",  # visit the run: its first rule fails the same way
                "if type(_v) is str:",
                f"    _d = {walk.format(f'{of(by_value)}.get(_v, ())')}",
                "elif _v is _M:",
                "    _d = None",
                "else:",
                f"    _d = {walk.format(of(steps))}",
                "if _d is not None:",
                "    return _d",
            ]
            continue
        for i, (condition, prebuilt, rule) in enumerate(steps):
            if visited == _MOST_WRITTEN:
                body += [
                    f"_d = {walk.format(of(steps[i:]))}",
                    "if _d is not None:",
                    "    return _d",
                ]
                break
            visited += 1
            if prebuilt is not None:
                decided = of(prebuilt)
            else:
                decided = f"{of(_allowed)}({of(rule)}, e, s)"
                if notification:
                    decided = f"{of(_as_notification)}({decided})"
            failed = f"{of(_failure)}({of(rule)}, _err)"
            if notification:
                failed = f"{of(_as_notification)}({failed})"
            if condition is None:
                test = "True"
            elif rule.source is not None:
                test = rule.source(names)
            else:
                test = f"{of(condition)}(e, s)"
            body += [
                "try:",
                f"    if {test}:",
                f"        return {decided}",
                f"except {of(DependencyError)}:",
                "    raise",
                "except Exception as _err:",
                f"    return {failed}",
            ]
    lines = ["def decide(e, s):"]
    lines += [f"    {name} = _UNSET" for name in names.once]
    lines += [f"    {line}" for line in body]
    lines.append(f"    return {of(default)}")
    source = "\n".join(lines) + "\n"
    exec(compile(source, "<castgate candidates>", "exec"), names.values)
    # Taken out of its own globals: left there, function and namespace would hold each other, and
    # a policy a reload replaced would wait for a full collection to be freed.
    decide: Callable[[Event, SessionView], Decision] = names.values.pop("decide")
    return source, decide


def _final(decision: Decision, notification: bool) -> Decision:
    return _as_notification(decision) if notification else decision


def _allowed(rule: CompiledRule, event: Event, state: SessionView) -> Decision:
    if rule.decision is not None:
        return rule.decision
    assert rule.response is not None
    return Decision(Effect.ALLOW, rule.reason, rule.name, rule.response(event, state))


def _failure(rule: CompiledRule, err: Exception) -> Decision:
    return Decision(
        Effect.DENY, f"rule {rule.name} failed: {_describe(err)}", rule.name, failed=True
    )


def _describe(err: Exception) -> str:
    text = str(err)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _as_notification(decision: Decision) -> Decision:
    if decision.rule is None:
        return (
            _ACKNOWLEDGED
            if decision.trace is None
            else replace(_ACKNOWLEDGED, trace=decision.trace)
        )
    flagged = decision.effect is Effect.DENY
    return replace(decision, effect=Effect.ACK, response={}, flagged=flagged)
