"""What a server decides with (the :class:`Gate`), loaded once, and how one event is decided:
the policy, the session state, and the fail mode when a dependency of the decision fails.

HTTP lives in :mod:`castgate.app`; this module knows nothing of requests, so ``castgate replay``
decides with the same procedure the server uses.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from castgate.decisionlog import DecisionLog, Redactor
from castgate.events import Decision, Effect, Event
from castgate.lang import PolicyError, PolicySet, compile_policies
from castgate.lang.functions import DependencyError, calls_out_skipped
from castgate.metrics import Metrics
from castgate.plugins import PluginError, Registry, load_plugins
from castgate.settings import Settings
from castgate.state import EMPTY_STATE, SessionView, lifetime_decision
from castgate.state.memory import MemoryState
from castgate.state.redis import RedisState, Snapshot, StateUnavailableError
from castgate.vendor import Vendor

#: How often a decision is made again when other processes keep changing the counts it read.
_SHARED_ATTEMPTS = 5

_log = logging.getLogger(__name__)


@dataclass(slots=True)
class Gate:
    """What one server decides with, loaded once at startup."""

    settings: Settings
    registry: Registry
    policy: PolicySet
    #: Live sessions: what ``sessions.*`` in policies read, and what every decision updates.
    sessions: MemoryState | RedisState
    metrics: Metrics = field(default_factory=Metrics)
    decision_log: DecisionLog | None = None
    redactor: Redactor = field(default_factory=Redactor)
    #: Vendor name -> the key its requests are signed with (from ``CASTGATE_SIGNING_KEYS``).
    signing_keys: Mapping[str, bytes] = field(default_factory=dict)
    #: The report of the last reload that was refused; ``""`` once one succeeds.
    last_reload_error: str = ""
    #: When the policy in use was compiled (epoch seconds).
    policy_loaded: float = field(default_factory=time.time)
    #: Held by a memory-state decision that runs off the event loop (its policy calls out).
    serial: asyncio.Lock = field(default_factory=asyncio.Lock)

    def compile_again(self) -> PolicySet:
        return compile_policies(
            self.settings.policies,
            vendors=self.registry.vendors,
            functions=self.registry.functions,
        )


#: A session record left for after the answer (:attr:`Decided.record_after_answer`).
StateRecord = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Decided:
    """A decision, and the session record its caller makes once the decision is answered."""

    decision: Decision
    #: Set when nothing about the answer waits on the record: with the shared state, a decision
    #: of a policy that reads no ``sessions.*``. Its round trip to Redis comes after the answer,
    #: and a failure is logged without changing the answer (an update whose snapshot Redis does
    #: not answer is still denied); every other decision is recorded before it returns.
    record_after_answer: StateRecord | None = None


class StartupError(Exception):
    """Broken plugins, policies or settings keep the server from starting; ``str()`` is the full
    report (every broken plugin, every policy problem with its file:line:col)."""


def load_gate(settings: Settings) -> Gate:
    """Load the plugins and compile the policies, or raise :class:`StartupError`.

    The decision log is not opened here (``castgate serve`` checks settings before uvicorn
    starts); :func:`open_decision_log` does that in the serving process.
    """
    try:
        registry = load_plugins(settings.disabled_plugins)
        policy = compile_policies(
            settings.policies, vendors=registry.vendors, functions=registry.functions
        )
    except PluginError as error:
        raise StartupError(str(error)) from None
    except PolicyError as error:
        raise StartupError(error.report()) from None
    sessions: MemoryState | RedisState
    if settings.state == "memory":
        sessions = MemoryState(idle=settings.session_idle, max_age=settings.session_max_age)
    else:
        sessions = RedisState(
            settings.state,
            idle=settings.session_idle,
            max_age=settings.session_max_age,
            timeout=settings.state_deadline,
        )
    return Gate(
        settings,
        registry,
        policy,
        sessions,
        redactor=Redactor(settings.decision_log_redact),
        signing_keys=_signing_keys(settings, registry),
    )


def open_decision_log(
    settings: Settings, lost: Callable[[int], object] = lambda count: None
) -> DecisionLog | None:
    """The decision log the settings ask for, its writer started; ``lost`` hears of records
    it could not write."""
    if settings.decision_log is None:
        return None
    try:
        log = DecisionLog(
            settings.decision_log,
            flush=settings.decision_log_flush,
            fsync=settings.decision_log_fsync,
            max_bytes=settings.decision_log_max_bytes,
            keep=settings.decision_log_keep,
            lost=lost,
        )
    except OSError as error:
        raise StartupError(
            f"cannot open the decision log {settings.decision_log}: {error}"
        ) from None
    log.start()
    return log


def _signing_keys(settings: Settings, registry: Registry) -> dict[str, bytes]:
    keys = {}
    problems = []
    for name, variable in settings.signing_keys.items():
        if name not in registry.vendors:
            problems.append(f"CASTGATE_SIGNING_KEYS: no vendor {name!r} is loaded")
        elif registry.vendors[name].signature is None:
            problems.append(f"CASTGATE_SIGNING_KEYS: vendor {name!r} does not sign its requests")
        elif not os.environ.get(variable):
            problems.append(f"CASTGATE_SIGNING_KEYS: {variable} (key for {name}) is not set")
        else:
            keys[name] = os.environ[variable].encode()
    for name, vendor in registry.vendors.items():
        if vendor.signature is not None and name not in keys and name not in settings.signing_keys:
            # Unsigned requests of a signing vendor are accepted, but the operator should know.
            _log.warning(
                "vendor %r signs its requests but no key is configured (CASTGATE_SIGNING_KEYS); "
                "its signatures are not checked",
                name,
            )
    if problems:
        raise StartupError("\n".join(problems))
    return keys


async def decide(gate: Gate, vendor: Vendor, event: Event, policy: PolicySet) -> Decided:
    """Decide ``event`` with ``policy`` (the one the request started with, whatever reloads
    meanwhile) and record it in the session state, within the state's deadline: at once, or
    in :attr:`Decided.record_after_answer`, which the caller awaits once it has answered."""
    store = gate.sessions
    if isinstance(store, RedisState):
        try:
            return await _decide_shared(gate, vendor, store, event, policy)
        except Exception as error:
            # A bug between castgate and Redis must be a refusal, never a 500.
            _log.exception(
                "deciding %s %s with the shared state failed", event.vendor, event.action
            )
            return Decided(await _without_state(gate, vendor, event, policy, error))
    if policy.calls_out:
        # A call out may wait its deadline: off the event loop, so other requests go on. The
        # lock keeps each decision and its record together, as the loop does for the others.
        async with gate.serial:
            return Decided(
                await asyncio.to_thread(_decide_local, gate, vendor, store, event, policy)
            )
    return Decided(_decide_local(gate, vendor, store, event, policy))


def decide_in_memory(
    policy: PolicySet,
    store: MemoryState,
    event: Event,
    *,
    explain: bool,
    checked: Callable[[Decision], Decision],
    fails_open: bool,
    dependency_failed: Callable[[DependencyError], object],
) -> Decision:
    """Decide and record in this process's state with no await between the two, so a count a
    decision read is still true when the session it admits is added.

    ``checked`` may turn the decision into a refusal (response data the vendor cannot send);
    ``dependency_failed`` hears of a call out that failed, and ``fails_open`` says whether the
    decision is then made without such calls (else it is denied).
    """
    own = store.session_for(event) if event.action == "update" else None
    ends, rule, reason = (own.ends, own.rule, own.ended_because) if own else (None, None, "")
    decision = checked(
        decided_failing_over(
            policy,
            event,
            store,
            ends,
            rule,
            reason,
            explain=explain,
            fails_open=fails_open,
            dependency_failed=dependency_failed,
        )
    )
    try:
        store.record(event, decision)
    except Exception:
        _log.exception("recording %s %s in the session state failed", event.vendor, event.action)
    return decision


def _decide_local(
    gate: Gate, vendor: Vendor, store: MemoryState, event: Event, policy: PolicySet
) -> Decision:
    return decide_in_memory(
        policy,
        store,
        event,
        explain=gate.settings.explain,
        checked=lambda decision: checked(gate.registry, vendor, decision),
        fails_open=gate.settings.fails_open(event.vendor, event.action),
        dependency_failed=lambda error: _dependency_failed(gate, event, error),
    )


async def _decide_shared(
    gate: Gate, vendor: Vendor, store: RedisState, event: Event, policy: PolicySet
) -> Decided:
    """Decide on a snapshot of the shared state, then record; if another process admitted a
    session the decision relied on not being there, decide again on a fresh snapshot."""
    if not policy.reads_sessions and event.action != "update":
        # Nothing to read: one round trip, to record the decision, after the answer.
        decision = await _decided_by_gate(gate, vendor, event, policy, EMPTY_STATE, None, None)
        return Decided(decision, partial(_record_unguarded, gate, store, event, decision, None))
    extra: tuple[tuple[str, str, str], ...] = ()
    windows = policy.denial_windows
    for _ in range(_SHARED_ATTEMPTS):
        try:
            snapshot = await store.snapshot(event, extra, windows)
        except StateUnavailableError as error:
            return Decided(await _without_state(gate, vendor, event, policy, error))
        decision = await _decided_by_gate(
            gate, vendor, event, policy, snapshot, snapshot.ends, snapshot.rule, snapshot.reason
        )
        if snapshot.missed or snapshot.missed_windows:
            # The policy read a count the snapshot did not hold: fetch it and decide again.
            extra = (*extra, *sorted(snapshot.missed))
            windows = (*windows, *sorted(snapshot.missed_windows))
            continue
        if not policy.reads_sessions:
            # An update, whose snapshot held its own session's lifetime; the policy read none.
            return Decided(
                decision, partial(_record_unguarded, gate, store, event, decision, snapshot)
            )
        # A policy that reads sessions records before answering: a count this decision read
        # must be re-checked as it admits, and a request the answer leads to must see it.
        try:
            if await store.record(event, decision, snapshot):
                return Decided(decision)
        except StateUnavailableError as error:
            return Decided(await _without_state(gate, vendor, event, policy, error))
    return Decided(Decision(Effect.DENY, "the session state kept changing; try again", failed=True))


async def _record_unguarded(
    gate: Gate, store: RedisState, event: Event, decision: Decision, snapshot: Snapshot | None
) -> None:
    """Record a decision that did not depend on the state, so losing the record (logged) does
    not change it. It guards no count, so it never loses a race and needs no second decision."""
    try:
        await store.record(event, decision, snapshot)
    except StateUnavailableError as error:
        gate.metrics.errors.labels("state").inc()
        _log.error(
            "session state unavailable (%s); %s %s not recorded",
            error,
            event.vendor,
            event.action,
        )
    except Exception:
        gate.metrics.errors.labels("state").inc()
        _log.exception("recording %s %s in the shared state failed", event.vendor, event.action)


async def _decided_by_gate(
    gate: Gate,
    vendor: Vendor,
    event: Event,
    policy: PolicySet,
    view: SessionView,
    ends: float | None,
    rule: str | None,
    reason: str = "",
) -> Decision:
    def deciding() -> Decision:
        decision = decided_failing_over(
            policy,
            event,
            view,
            ends,
            rule,
            reason,
            explain=gate.settings.explain,
            fails_open=gate.settings.fails_open(event.vendor, event.action),
            dependency_failed=lambda error: _dependency_failed(gate, event, error),
        )
        return checked(gate.registry, vendor, decision)

    # A call out may wait its deadline: off the event loop, so other requests go on.
    return await asyncio.to_thread(deciding) if policy.calls_out else deciding()


async def _without_state(
    gate: Gate, vendor: Vendor, event: Event, policy: PolicySet, error: Exception
) -> Decision:
    """The decision when the shared state cannot be reached: notifications are acknowledged
    (their record is lost, and logged), decisions fail closed unless the operator opened them,
    and then are decided as if no session were live."""
    gate.metrics.errors.labels("state").inc()
    _log.error(
        "session state unavailable (%s); %s %s decided without it",
        error,
        event.vendor,
        event.action,
    )
    if event.is_notification:
        return Decision(Effect.ACK, "session state unavailable: not recorded", failed=True)
    if not gate.settings.fails_open(event.vendor, event.action):
        return Decision(Effect.DENY, "session state unavailable", failed=True)
    decision = await _decided_by_gate(gate, vendor, event, policy, EMPTY_STATE, None, None)
    return replace(
        decision, reason=f"{decision.reason} (session state unavailable; failing open)", failed=True
    )


def _dependency_failed(gate: Gate, event: Event, error: DependencyError) -> None:
    gate.metrics.errors.labels("dependency").inc()
    _log.error("%s %s: dependency failed: %s", event.vendor, event.action, error)


def decided_failing_over(
    policy: PolicySet,
    event: Event,
    view: SessionView,
    ends: float | None,
    rule: str | None,
    reason: str,
    *,
    explain: bool,
    fails_open: bool,
    dependency_failed: Callable[[DependencyError], object],
) -> Decision:
    """:func:`decided`, and when a call out fails: a failed deny, or where the operator made the
    vendor and action fail open, the decision made again with every call out *missing* (so the
    other rules still decide: a deny that does not depend on the call still denies). Either
    way marked failed. Notifications are acknowledged."""
    try:
        return decided(policy, event, view, ends, rule, reason, explain=explain)
    except DependencyError as error:
        dependency_failed(error)
        if event.is_notification or not fails_open:
            return failed_closed(event, f"dependency failed: {error}")
        with calls_out_skipped():
            decision = decided(policy, event, view, ends, rule, reason, explain=explain)
        return replace(
            decision,
            reason=f"{decision.reason} (dependency failed: {error}; decided without it)",
            failed=True,
        )


def failed_closed(event: Event, reason: str) -> Decision:
    """The decision a failure makes: deny, or acknowledge a notification; marked failed."""
    effect = Effect.ACK if event.is_notification else Effect.DENY
    return Decision(effect, reason, failed=True)


def checked(registry: Registry, vendor: Vendor, decision: Decision) -> Decision:
    """``decision``, or a refusal if its response data is more than the vendor can send."""
    if decision.effect is Effect.ALLOW and decision.response:
        problems = _response_problems(registry, vendor, decision.response)
        if problems:
            return refusal(decision, "response data the vendor cannot send: " + problems)
    return decision


def decided(
    policy: PolicySet,
    event: Event,
    view: SessionView,
    ends: float | None,
    rule: str | None,
    reason: str = "",
    *,
    explain: bool = False,
) -> Decision:
    """The policy's decision, unless the session's lifetime (``ends``, granted by ``rule``) is
    over or castgate revoked it (``reason``): then its update is denied, which ends it.

    Raises :class:`DependencyError` for the caller's fail mode; nothing else.
    """
    ended = lifetime_decision(ends, rule, event, reason)
    if ended is not None:
        return ended
    try:
        return policy.decide(event, view, explain=explain)
    except DependencyError:
        raise
    except Exception:
        # decide() promises never to raise; if a bug breaks that promise, fail closed, not 500.
        _log.exception("policy %s failed to decide %s", policy.version, event.action)
        return failed_closed(event, "the policy failed to decide")


def _response_problems(registry: Registry, vendor: Vendor, data: Mapping[str, Any]) -> str:
    try:
        return "; ".join(vendor.validate_response(data))
    except Exception as error:
        _log.exception(
            "%s: vendor %r failed to validate response data",
            registry.provider_of(vendor.name).origin,
            vendor.name,
        )
        return f"validate_response raised {type(error).__name__}"


def refusal(decision: Decision, reason: str) -> Decision:
    """``decision`` turned into a failed deny for ``reason``, keeping its rule and trace."""
    return Decision(Effect.DENY, reason, rule=decision.rule, failed=True, trace=decision.trace)
