"""Session state in this process's memory: the embedded default, no set-up, lost on restart.

Every method runs without awaiting, and the server decides and records without awaiting in
between, so within one process a decision that reads a count and the session it admits are one
step: fifty simultaneous publishes to one key admit exactly one. Several processes need the Redis
backend to share that guarantee.
"""

from __future__ import annotations

import time
from bisect import bisect_left, insort
from collections import defaultdict, deque
from collections.abc import Callable

from cachetools import TTLCache

from castgate.events import Decision, Effect, Event
from castgate.state.sessions import (
    KEY_PARAM,
    Change,
    Session,
    change_for,
    connection_id,
    new_session,
    session_id,
)

#: How long a close is remembered, so a start that arrives after its own end is not opened.
TOMBSTONE_SECONDS = 600.0
#: How long denials are kept for rates; ``sessions.denials(key, window)`` looks back at most this.
RATE_HORIZON_SECONDS = 3600.0
#: Denials kept per address, the latest: an address denied without pause must not grow its
#: record, or the cost of counting it, without bound. Past this, the count says "this many or more".
DENIALS_KEPT = 10_000
_ROLES = ("publisher", "viewer")


def denial_window(window: float) -> float:
    """How far back ``sessions.denials(key, window)`` counts, in seconds: ``window``, at most the
    hour denials are kept, in either backend. Anything but a number fails the rule."""
    if isinstance(window, bool) or not isinstance(window, int | float):
        raise TypeError(f"a window is a duration, not {type(window).__name__}")
    return float(min(window, RATE_HORIZON_SECONDS))


class MemoryState:
    """Live sessions, counters and rates for one process.

    ``idle`` ends a session that received updates and then stopped receiving them (its done event
    was lost); ``max_age`` ends one that never received an update, for vendors that send none.
    """

    def __init__(
        self,
        *,
        idle: float = 120.0,
        max_age: float = 12 * 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.idle = idle
        self.max_age = max_age
        self._clock = clock
        self._sessions: dict[str, Session] = {}
        self._index: defaultdict[tuple[str, str, str], set[str]] = defaultdict(set)
        # Closed session id -> (when it closed, when to forget that); the sweep forgets.
        self._closed: dict[str, tuple[float, float]] = {}
        self._closed_order: deque[tuple[float, str]] = deque()
        # Address -> its denial times, kept sorted (as Redis keeps them) so counting a window is a
        # bisection, not a scan of up to DENIALS_KEPT stamps, even if the clock stepped back.
        self._denials: TTLCache[str, list[float]] = TTLCache(
            maxsize=1_000_000, ttl=RATE_HORIZON_SECONDS, timer=clock
        )
        self._next_sweep = 0.0

    # what policies read

    def count(self, role: str, scope: str, key: str) -> int:
        self._expire()
        if role == "any":
            return sum(len(self._index.get((each, scope, key), ())) for each in _ROLES)
        return len(self._index.get((role, scope, key), ()))

    def rate(self, name: str, key: str, window: float) -> int:
        if name != "deny":
            return 0
        stamps = self._denials.get(key)
        if not stamps:
            return 0
        since = self._clock() - denial_window(window)
        return len(stamps) - bisect_left(stamps, since)

    def returning(self, event: Event, grace: float) -> bool:
        """Whether a live publisher of this stream has the same address and key and was seen
        within ``grace`` seconds: the same publisher coming back before its drop was reported."""
        now = self._clock()
        return any(now - session.last_seen <= grace for session in self._same_publisher(event))

    # what the server records

    def record(self, event: Event, decision: Decision) -> None:
        """Apply ``decision`` on ``event`` to the live sessions."""
        self._expire()
        if decision.effect is Effect.DENY and not event.is_notification and event.client_ip:
            self._denied(event.client_ip)
        change = change_for(event, decision)
        roles = (change.role,) if change.role else _ROLES
        if change.change is Change.OPEN:
            self._open(event, decision, change.role)
        elif change.change is Change.REFRESH:
            for role in roles:
                self._refresh(event, decision, role)
        elif change.change is Change.CLOSE:
            for role in roles:
                self._close(session_id(event, role), event.time)

    def session_for(self, event: Event) -> Session | None:
        """The live session an ``update`` event is about, if castgate knows it."""
        for role in (event.role,) if event.role else _ROLES:
            session = self._sessions.get(session_id(event, role))
            if session is not None:
                return session
        return None

    def live(self) -> list[Session]:
        self._expire()
        return list(self._sessions.values())

    def revoke(self, session: Session, reason: str) -> None:
        """Mark ``session`` to be ended, if it is still live: its next update is denied with
        ``reason``."""
        live = self._sessions.get(session.id)
        # A later session under the same id is not the one found to be ended.
        if live is not None and live.opened == session.opened:
            live.ends = 0.0
            live.ended_because = reason

    def end(self, session: Session) -> None:
        """Forget ``session``, if it is still live: a vendor's API ended it."""
        live = self._sessions.get(session.id)
        # A later session under the same id is not the one the vendor ended.
        if live is not None and live.opened == session.opened:
            self._close(session.id, self._clock())

    # internals

    def _open(self, event: Event, decision: Decision, role: str) -> None:
        connection = connection_id(event)
        sid = f"{connection}|{role}"
        closed = self._closed.get(sid)
        if closed is not None and event.time <= closed[0]:
            return  # its end already arrived: a late or retried start
        existing = self._sessions.get(sid)
        if existing is not None:
            existing.last_seen = self._clock()
            return
        session = new_session(event, decision, role, connection)
        session.last_seen = self._clock()
        self._sessions[sid] = session
        index = self._index
        for scope, key in session.scopes():
            index[(role, scope, key)].add(sid)

    def _refresh(self, event: Event, decision: Decision, role: str) -> None:
        session = self._sessions.get(session_id(event, role))
        if session is None:
            # Live before castgate (re)started: an allowed update proves it exists.
            self._open(event, decision, role)
            session = self._sessions.get(session_id(event, role))
            if session is None:
                return
        session.last_seen = self._clock()
        session.updated = True

    def _close(self, sid: str, at: float) -> None:
        session = self._sessions.get(sid)
        if session is not None and at < session.opened:
            return  # a late end of an earlier session under the same name
        forget = self._clock() + TOMBSTONE_SECONDS
        previous = self._closed.get(sid)
        self._closed[sid] = (max(at, previous[0]) if previous else at, forget)
        self._closed_order.append((forget, sid))
        if session is not None:
            self._remove(session)

    def _remove(self, session: Session) -> None:
        del self._sessions[session.id]
        for scope, key in session.scopes():
            members = self._index.get((session.role, scope, key))
            if members is not None:
                members.discard(session.id)
                if not members:
                    del self._index[(session.role, scope, key)]

    def _same_publisher(self, event: Event) -> list[Session]:
        key = event.params.get(KEY_PARAM)
        key = key if isinstance(key, str) else ""
        me = connection_id(event)
        return [
            self._sessions[sid]
            for sid in self._index.get(("publisher", "stream", event.stream), ())
            if self._sessions[sid].client_ip == event.client_ip
            and self._sessions[sid].key == key
            and self._sessions[sid].connection != me
            and self._sessions[sid].vendor == event.vendor
        ]

    def _denied(self, key: str) -> None:
        stamps = self._denials.get(key)
        if stamps is None:
            stamps = []
        insort(stamps, self._clock())
        if len(stamps) > DENIALS_KEPT:
            del stamps[0]  # the oldest, as ZREMRANGEBYRANK drops the lowest score in Redis
        self._denials[key] = stamps  # re-set so the entry lives an hour past its last denial

    def _expire(self) -> None:
        now = self._clock()
        if now < self._next_sweep:
            return
        self._next_sweep = now + 1.0
        while self._closed_order and self._closed_order[0][0] <= now:
            _, sid = self._closed_order.popleft()
            entry = self._closed.get(sid)
            if entry is not None and entry[1] <= now:  # not closed again since
                del self._closed[sid]
        for session in list(self._sessions.values()):
            limit = self.idle if session.updated else self.max_age
            if now - session.last_seen > limit:
                self._remove(session)
