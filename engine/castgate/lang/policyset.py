"""A compiled policy set and its decision procedure.

Semantics (docs/policy-language.md, "How a decision is made"):

1. Only rules whose ``on``/``from``/``app`` selectors admit the event are visited; an index built
   at load finds them without looking at the others.
2. Any deny rule that matches decides: an explicit deny overrides every allow.
3. Otherwise the first matching allow rule, in file order (files in name order), decides and
   supplies the response data.
4. Otherwise the request is denied (default deny).
5. A rule whose evaluation raises denies the request; the decision names the rule and the error.
6. Notifications are always acknowledged; a matching deny rule marks the decision ``flagged``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from castgate.events import Decision, Effect, Event, RuleTrace
from castgate.lang.compiler import CompiledRule
from castgate.state import SessionView

DEFAULT_DENY = Decision(Effect.DENY, "no rule allowed this request")
_ACKNOWLEDGED = Decision(Effect.ACK, "notification acknowledged")
# Distinct (vendor, action) pairs are few (plugins define them); the cap only guards against an
# unbounded stream of made-up values reaching the index through `castgate eval` or a plugin bug.
_INDEX_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class _Candidates:
    denies: tuple[CompiledRule, ...]
    allows: tuple[CompiledRule, ...]
    in_order: tuple[CompiledRule, ...]


class PolicySet:
    """Compiled rules ready to decide. Immutable: a reload builds a new one and swaps it in."""

    def __init__(
        self,
        rules: Sequence[CompiledRule],
        files: Sequence[Path],
        version: str,
        *,
        reads_sessions: bool = True,
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
        #: A short digest of the policy sources and every data file they read.
        self.version = version
        self._index: dict[tuple[str, str], tuple[dict[str, _Candidates], _Candidates]] = {}

    def candidates(self, vendor: str, action: str, app: str) -> _Candidates:
        """The rules that can apply to an event, in file order."""
        per_app = self._index.get((vendor, action))
        if per_app is None:
            per_app = self._build_index(vendor, action)
            if len(self._index) < _INDEX_LIMIT:
                self._index[(vendor, action)] = per_app
        by_app, other_apps = per_app
        return by_app.get(app, other_apps)

    def _build_index(self, vendor: str, action: str) -> tuple[dict[str, _Candidates], _Candidates]:
        applicable = [
            r
            for r in self.rules
            if (r.vendors is None or vendor in r.vendors)
            and (r.actions is None or action in r.actions)
        ]
        named_apps = {app for r in applicable if r.apps is not None for app in r.apps}

        def for_app(app: str | None) -> _Candidates:
            rules = tuple(r for r in applicable if r.apps is None or (app in r.apps))
            return _Candidates(
                tuple(r for r in rules if r.kind == "deny"),
                tuple(r for r in rules if r.kind == "allow"),
                rules,
            )

        return {app: for_app(app) for app in named_apps}, for_app(None)

    def decide(self, event: Event, state: SessionView, *, explain: bool = False) -> Decision:
        """The decision for ``event``. Never raises: a failing rule is a deny that names it."""
        found = self.candidates(event.vendor, event.action, event.app)
        if explain:
            decision = self._explained(found, event, state)
        else:
            decision = self._decided(found, event, state)
        return _as_notification(decision) if event.is_notification else decision

    def _decided(self, found: _Candidates, event: Event, state: SessionView) -> Decision:
        for rule in found.denies:
            try:
                if rule.condition is None or rule.condition(event, state):
                    return rule.decision  # type: ignore[return-value] # denies are prebuilt
            except Exception as err:
                return _failure(rule, err)
        for rule in found.allows:
            try:
                if rule.condition is None or rule.condition(event, state):
                    return _allowed(rule, event, state)
            except Exception as err:
                return _failure(rule, err)
        return DEFAULT_DENY

    def _explained(self, found: _Candidates, event: Event, state: SessionView) -> Decision:
        """Evaluates every candidate rule, recording each, then decides as :meth:`_decided`."""
        traces: list[RuleTrace] = []
        outcome: dict[str, bool | Exception] = {}
        for rule in found.in_order:
            try:
                matched: bool | Exception = rule.condition is None or bool(
                    rule.condition(event, state)
                )
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
        """:meth:`_decided` over outcomes already computed, so explaining never changes it."""
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
                except Exception as err:
                    return _failure(rule, err)
        return DEFAULT_DENY


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
