"""Ending sessions castgate no longer allows: past their lifetime, or denied by a reloaded policy.

Every such session is marked in the state, so its next ``update`` is denied (how nginx-rtmp ends
it); sessions of vendors with an :class:`~castgate.Enforcer` are also ended at once through the
vendor's API, since those vendors may never send an update. Each ended session gets a log line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import replace

from castgate.enforcement import Enforcer, LiveSession
from castgate.events import Effect
from castgate.lang import PolicySet
from castgate.state import EMPTY_STATE, LIFETIME_ENDED
from castgate.state.memory import MemoryState
from castgate.state.redis import RedisState
from castgate.state.sessions import Session

_log = logging.getLogger(__name__)

#: How long an enforcer may take to end one batch of sessions.
ENFORCER_DEADLINE_SECONDS = 5.0
_DECISION_ACTIONS = {"publisher": "publish", "viewer": "play"}


async def live_sessions(store: MemoryState | RedisState) -> list[Session]:
    return await store.live() if isinstance(store, RedisState) else store.live()


async def end_sessions(
    store: MemoryState | RedisState,
    enforcers: Mapping[str, Enforcer],
    doomed: Sequence[tuple[Session, str]],
) -> None:
    """Mark each session ended for ``reason`` and end it through its vendor's enforcer."""
    by_vendor: defaultdict[str, list[tuple[Session, str]]] = defaultdict(list)
    for session, reason in doomed:
        if isinstance(store, RedisState):
            await store.revoke(session, reason)
        else:
            store.revoke(session, reason)
        by_vendor[session.vendor].append((session, reason))
    for vendor, batch in by_vendor.items():
        enforcer = enforcers.get(vendor)
        for session, reason in batch:
            _log.warning(
                "ending %s %s of %s/%s from %s (%s): %s",
                vendor,
                session.role,
                session.app,
                session.stream,
                session.client_ip or "?",
                "through its enforcer" if enforcer else "at its next update",
                reason,
            )
        if enforcer is None:
            continue
        try:
            await asyncio.wait_for(
                enforcer.end_sessions([_live(s, reason) for s, reason in batch]),
                ENFORCER_DEADLINE_SECONDS,
            )
        except Exception as error:
            _log.error(
                "the %s enforcer failed to end %d sessions: %s",
                vendor,
                len(batch),
                f"{type(error).__name__}: {error}",
            )
            continue
        for session, _ in batch:
            if isinstance(store, RedisState):
                await store.end(session)
            else:
                store.end(session)


async def sweep_lifetimes(
    store: MemoryState | RedisState, enforcers: Mapping[str, Enforcer]
) -> int:
    """End the sessions past their lifetime whose vendor has an enforcer; how many."""
    now = time.time()
    doomed = [
        (session, LIFETIME_ENDED)
        for session in await live_sessions(store)
        if session.vendor in enforcers
        and session.ends is not None
        and session.ends <= now
        and not session.ended_because
    ]
    if doomed:
        await end_sessions(store, enforcers, doomed)
    return len(doomed)


async def recheck(
    policy: PolicySet, store: MemoryState | RedisState, enforcers: Mapping[str, Enforcer]
) -> int:
    """Decide every live session's opening event again with ``policy``; end those it denies."""
    doomed = []
    for session in await live_sessions(store):
        if session.ended_because:
            continue
        event = session.event
        action = _DECISION_ACTIONS.get(session.role, event.action)
        if event.action != action and event.action not in ("publish_started", "play_started"):
            event = replace(event, action=action)
        decision = policy.decide(event, EMPTY_STATE)
        if decision.effect is Effect.DENY or decision.flagged:
            doomed.append((session, f"the reloaded policy denies it: {decision.reason}"))
    if doomed:
        await end_sessions(store, enforcers, doomed)
    return len(doomed)


def _live(session: Session, reason: str) -> LiveSession:
    return LiveSession(
        vendor=session.vendor,
        role=session.role,
        app=session.app,
        stream=session.stream,
        client_ip=session.client_ip,
        node=session.node,
        vendor_session=session.vendor_session,
        opened=session.opened,
        reason=reason,
    )
