"""Session state in Redis, shared by every worker and host that points at the same database.

A decision of a policy that reads ``sessions.*`` takes two round trips before it is answered:

1. a *snapshot* script reads the counts the event can need (its stream, app, address and key, for
   publishers and viewers), how many times its address was denied within each window the policy
   names, its own session's lifetime and whether the same publisher was live; the policy decides
   against that snapshot;
2. a *record* script applies the decision. When it admits a session it first checks, inside
   Redis, that every count the decision read is unchanged ("guards"); if another process admitted
   a session meanwhile, the script refuses and the decision is made again on a fresh snapshot.
   That is what makes "fifty simultaneous publishes admit exactly one" hold across processes.

A decision of a policy that reads none skips the snapshot (an update still takes it, for its
session's lifetime), and its record, which guards nothing, is made after the answer is sent
(:class:`castgate.gate.Decided`).

Keys (prefix ``castgate:``): ``s:<session>`` a hash per live session, expiring with it;
``i:<role>:<scope>:<value>`` a sorted set of session ids scored by when each expires;
``t:<session>`` remembers a close for ten minutes; ``d:<address>`` denial times for an hour, the
latest ``DENIALS_KEPT`` of them.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from castgate.events import Decision, Effect, Event
from castgate.state.memory import (
    DENIALS_KEPT,
    RATE_HORIZON_SECONDS,
    TOMBSTONE_SECONDS,
    denial_window,
)
from castgate.state.redis_pool import MAX_CONNECTIONS, QueuedConnectionPool
from castgate.state.sessions import (
    KEY_PARAM,
    Change,
    Session,
    change_for,
    connection_id,
    new_session,
    session_id,
)

PREFIX = "castgate:"
_ROLES = ("publisher", "viewer")
_SCOPES = ("stream", "app", "client", "key")

_SNAPSHOT = """
local now = tonumber(ARGV[1])
local count_keys = tonumber(ARGV[2])
local counts = {}
for i = 1, count_keys do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  counts[i] = redis.call('ZCARD', KEYS[i])
end
-- Counts, never the times themselves: an address denied without pause has thousands.
local denials = {}
for w = 1, tonumber(ARGV[3]) do
  denials[w] = redis.call('ZCOUNT', KEYS[count_keys + 1], now - tonumber(ARGV[8 + w]), '+inf')
end
local own = redis.call('HMGET', KEYS[count_keys + 2], 'ends', 'rule', 'ended_because')
local latest = -1
local publishers = redis.call('ZRANGEBYSCORE', KEYS[count_keys + 3], now, '+inf')
for _, sid in ipairs(publishers) do
  local s = redis.call('HMGET', ARGV[4] .. 's:' .. sid, 'client_ip', 'key', 'connection',
                       'vendor', 'last_seen')
  if s[1] == ARGV[5] and s[2] == ARGV[6] and s[3] ~= ARGV[7] and s[4] == ARGV[8] then
    local seen = tonumber(s[5])
    if seen and seen > latest then latest = seen end
  end
end
return {counts, denials, own[1] or '', own[2] or '', tostring(latest), own[3] or ''}
"""

_RECORD = """
local op = ARGV[1]
local now = tonumber(ARGV[2])
local prefix = ARGV[3]
local sid = ARGV[4]
local session = prefix .. 's:' .. sid
if op == 'deny' then
  redis.call('ZADD', KEYS[1], now, ARGV[5])
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[6]))
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -1 - tonumber(ARGV[7]))
  redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[6])))
  return 'ok'
end
if op == 'close' then
  local at = tonumber(ARGV[5])
  -- The late end of an earlier session under the same id: the one live now goes on.
  local opened = tonumber(redis.call('HGET', session, 'opened'))
  if opened and at < opened then return 'earlier' end
  -- An end for one session found earlier (a vendor's API ended it): only while it lives.
  if ARGV[7] and opened ~= tonumber(ARGV[7]) then return 'gone' end
  local closed = redis.call('GET', prefix .. 't:' .. sid)
  if not closed or tonumber(closed) < at then
    redis.call('SET', prefix .. 't:' .. sid, ARGV[5], 'EX', math.ceil(tonumber(ARGV[6])))
  end
  local indexes = redis.call('HGET', session, 'indexes')
  if indexes then
    for _, key in ipairs(cjson.decode(indexes)) do redis.call('ZREM', key, sid) end
  end
  redis.call('DEL', session)
  return 'ok'
end
if op == 'revoke' then
  -- Only the session that was found, while it lives: not a later one under the same id, and
  -- no hash (one that would never expire) where it closed meanwhile.
  if tonumber(redis.call('HGET', session, 'opened')) ~= tonumber(ARGV[5]) then return 'gone' end
  redis.call('HSET', session, 'ends', 0, 'ended_because', ARGV[6])
  return 'ok'
end
-- open or refresh
local started = tonumber(ARGV[5])
local deadline = tonumber(ARGV[6])
local guards = tonumber(ARGV[7])
local exists = redis.call('HEXISTS', session, 'opened') == 1
if not exists then
  -- What a revoke left of a closed session before revokes were atomic: no fields, no expiry.
  redis.call('DEL', session)
  -- A start, or an update, that was decided before its session's end was recorded: its
  -- record must not bring the session back (an update later than the end does).
  local closed = redis.call('GET', prefix .. 't:' .. sid)
  if closed and started <= tonumber(closed) then return 'closed' end
  -- Only an open is guarded (a refresh passes no guards).
  for g = 1, guards do
    local key = KEYS[g]
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
    if redis.call('ZCARD', key) ~= tonumber(ARGV[7 + g]) then return 'conflict' end
  end
end
local fields = cjson.decode(ARGV[8 + guards])
if exists then
  redis.call('HSET', session, 'last_seen', now)
  if op == 'refresh' then redis.call('HSET', session, 'updated', '1') end
  local updated = redis.call('HGET', session, 'updated') == '1'
  deadline = now + tonumber(updated and ARGV[9 + guards] or ARGV[10 + guards])
else
  for name, value in pairs(fields) do redis.call('HSET', session, name, value) end
end
for _, key in ipairs(cjson.decode(redis.call('HGET', session, 'indexes'))) do
  redis.call('ZADD', key, deadline, sid)
end
redis.call('EXPIREAT', session, math.ceil(deadline))
return 'ok'
"""


class StateUnavailableError(Exception):
    """Redis did not answer in time or at all; the decision falls back to the fail mode."""


@dataclass
class Snapshot:
    """What one decision may read, fetched before deciding; records what it did read."""

    counts: dict[tuple[str, str, str], int]
    #: The address the denials were counted for, and per window (seconds) how many.
    client_ip: str
    denials: dict[float, int]
    now: float
    returning_seen: float
    ends: float | None
    rule: str | None
    #: Why castgate revoked the event's own session, if it did.
    reason: str
    #: Counts the decision read, to be re-checked atomically when it admits a session.
    read: dict[tuple[str, str, str], int] = field(default_factory=dict)
    #: Counts the decision asked for that the snapshot did not have.
    missed: set[tuple[str, str, str]] = field(default_factory=set)
    #: Denial windows the decision asked for that the snapshot did not count.
    missed_windows: set[float] = field(default_factory=set)

    def count(self, role: str, scope: str, key: str) -> int:
        roles = _ROLES if role == "any" else (role,)
        total = 0
        for each in roles:
            index = (each, scope, key)
            if index not in self.counts:
                self.missed.add(index)
                continue
            self.read[index] = self.counts[index]
            total += self.counts[index]
        return total

    def rate(self, name: str, key: str, window: float) -> int:
        # Denials are recorded per client address only, as in memory: any other key has none.
        if name != "deny" or key != self.client_ip:
            return 0
        window = denial_window(window)
        if window not in self.denials:
            self.missed_windows.add(window)
            return 0
        return self.denials[window]

    def returning(self, event: Event, grace: float) -> bool:
        return self.returning_seen >= 0 and self.now - self.returning_seen <= grace


class RedisState:
    """The shared backend; ``url`` is ``redis://host:port/db``.

    Each operation (a snapshot, a record, a revoke, ...) takes at most ``timeout`` seconds in
    all, however many commands it sends: waiting for a connection, connecting, every command
    and every answer share that one deadline, and missing it is a :class:`StateUnavailableError`.
    """

    def __init__(
        self,
        url: str,
        *,
        idle: float = 120.0,
        max_age: float = 12 * 3600.0,
        timeout: float = 0.25,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self.idle = idle
        self.max_age = max_age
        self.timeout = timeout
        self._clock = clock
        # A pool that queues, set explicitly: redis-py's default pool (``Redis.from_url``) refuses
        # a command at once when all its connections are busy ("Too many connections"; 100 from
        # redis-py 8 on), so a burst of concurrent requests was decided as if Redis were down:
        # updates denied, which ends live streams, and records lost.
        pool = QueuedConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            # No timeout of its own for a connect, a write or a read: each would start the
            # deadline again (an operation that waited for a connection could then wait as long
            # for the answer); ``_deadline`` bounds the whole operation instead. None, not left
            # out: redis-py's default is 5 s, and with a socket timeout it writes through
            # ``asyncio.wait_for``, which on Python 3.11 drops a cancellation that arrives as the
            # write completes: the deadline passed and the command waited its 5 s for an answer.
            socket_timeout=None,
            socket_connect_timeout=None,
            decode_responses=True,
            # Some vendors' JSON carries lone surrogates (Ant Media keeps them); a stream named
            # so must still have a key, and read back as the same name.
            encoding_errors="surrogatepass",
        )
        self._redis = aioredis.Redis.from_pool(pool)
        self._snapshot = self._redis.register_script(_SNAPSHOT)
        self._record = self._redis.register_script(_RECORD)

    async def close(self) -> None:
        await self._redis.aclose()

    @asynccontextmanager
    async def _deadline(self) -> AsyncIterator[None]:
        """One operation, within the state deadline; however it fails, StateUnavailableError.

        Cancelling a command when the deadline passes leaves no answer behind for the next
        command on its connection to read as its own: redis-py (8.1 on, as pinned) closes a
        connection whose write or read is interrupted, cancellation included, and the pool
        opens it again when it is next used.
        """
        try:
            async with asyncio.timeout(self.timeout):
                yield
        except TimeoutError as error:  # the deadline's; an OSError, so caught first
            raise StateUnavailableError(
                f"no answer within the state deadline of {self.timeout * 1000:g} ms"
            ) from error
        except (RedisError, OSError) as error:
            raise StateUnavailableError(str(error) or type(error).__name__) from error

    async def ping(self) -> bool:
        try:
            async with self._deadline():
                return bool(await self._redis.ping())
        except StateUnavailableError:
            return False

    async def snapshot(
        self,
        event: Event,
        extra: Sequence[tuple[str, str, str]] = (),
        windows: Sequence[float] = (),
    ) -> Snapshot:
        """What deciding ``event`` may read: the counts it can need plus ``extra``, and the
        address's denials within each of ``windows`` (seconds)."""
        indexes = list(dict.fromkeys([*_indexes_of(event), *extra]))
        windows = list(dict.fromkeys(denial_window(w) for w in windows))
        now = self._clock()
        key = event.params.get(KEY_PARAM)
        own_role = event.role or ("publisher" if event.action == "publish" else "viewer")
        keys = [
            *(_index_key(index) for index in indexes),
            f"{PREFIX}d:{event.client_ip}",
            f"{PREFIX}s:{session_id(event, own_role)}",
            _index_key(("publisher", "stream", event.stream)),
        ]
        args: list[str | float | int] = [
            now,
            len(indexes),
            len(windows),
            PREFIX,
            event.client_ip,
            key if isinstance(key, str) else "",
            connection_id(event),
            event.vendor,
            *windows,
        ]
        async with self._deadline():
            counts, denials, ends, rule, latest, reason = await self._snapshot(keys=keys, args=args)
        return Snapshot(
            counts=dict(zip(indexes, (int(c) for c in counts), strict=True)),
            client_ip=event.client_ip,
            denials=dict(zip(windows, (int(d) for d in denials), strict=True)),
            now=now,
            returning_seen=float(latest),
            ends=float(ends) if ends else None,
            rule=rule or None,
            reason=reason,
        )

    async def record(self, event: Event, decision: Decision, snapshot: Snapshot | None) -> bool:
        """Apply ``decision``; ``False`` when a guarded admission lost a race (decide again)."""
        now = self._clock()
        async with self._deadline():
            if decision.effect is Effect.DENY and not event.is_notification and event.client_ip:
                await self._record(
                    keys=[f"{PREFIX}d:{event.client_ip}"],
                    args=[
                        "deny",
                        now,
                        PREFIX,
                        "",
                        f"{now}:{uuid.uuid4().hex[:8]}",
                        RATE_HORIZON_SECONDS,
                        DENIALS_KEPT,
                    ],
                )
            change = change_for(event, decision)
            roles = (change.role,) if change.role else _ROLES
            if change.change is Change.OPEN:
                guards = snapshot.read if snapshot is not None else {}
                return await self._upsert("open", event, decision, change.role, guards, now)
            if change.change is Change.REFRESH:
                for role in roles:
                    await self._upsert("refresh", event, decision, role, {}, now)
            elif change.change is Change.CLOSE:
                for role in roles:
                    await self._record(
                        keys=[],
                        args=[
                            "close",
                            now,
                            PREFIX,
                            session_id(event, role),
                            event.time,
                            TOMBSTONE_SECONDS,
                        ],
                    )
        return True

    async def _upsert(
        self,
        op: str,
        event: Event,
        decision: Decision,
        role: str,
        guards: dict[tuple[str, str, str], int],
        now: float,
    ) -> bool:
        session = new_session(event, decision, role)
        indexes = [_index_key((role, scope, key)) for scope, key in session.scopes()]
        fields = {
            "vendor": session.vendor,
            "role": role,
            "app": session.app,
            "stream": session.stream,
            "client_ip": session.client_ip,
            "key": session.key,
            "node": session.node,
            "vendor_session": session.vendor_session,
            "connection": session.connection,
            # As text: Redis before 7 keeps 14 digits of a Lua number (a tenth of a millisecond
            # of a time), and a late close and a revoke are told from this session by it.
            "opened": str(session.opened),
            "last_seen": now,
            "updated": "1" if op == "refresh" else "0",
            "ends": session.ends if session.ends is not None else "",
            "rule": session.rule or "",
            # Not \u-escaped: the scripts' cjson refuses the escape of a lone surrogate (a
            # stream Ant Media named so), and passes the character's bytes through as they are.
            "indexes": json.dumps(indexes, ensure_ascii=False),
            "event": json.dumps(event.to_dict()),
        }
        deadline = now + (self.idle if op == "refresh" else self.max_age)
        guard_keys = list(guards)
        args: list[str | float | int] = [
            op,
            now,
            PREFIX,
            session.id,
            event.time,
            deadline,
            len(guard_keys),
            *(guards[index] for index in guard_keys),
            json.dumps(fields, ensure_ascii=False),
            self.idle,
            self.max_age,
        ]
        answer = await self._record(keys=[_index_key(index) for index in guard_keys], args=args)
        return bool(answer != "conflict")

    async def live(self) -> list[Session]:
        """Every live session, read with SCAN (for re-checks after a reload and lifetime sweeps;
        never on the request path)."""
        sessions: list[Session] = []
        cursor = 0
        while True:
            # A page at a time, each within the deadline: many sessions take as many pages as
            # they need, and a stalled Redis fails the listing within one deadline.
            async with self._deadline():
                cursor, keys = await self._redis.scan(cursor, match=f"{PREFIX}s:*", count=500)
                page = self._redis.pipeline(transaction=False)
                for key in keys:
                    page.hgetall(key)
                hashes = await page.execute()
            for key, raw in zip(keys, hashes, strict=True):
                fields = {str(name): str(value) for name, value in raw.items()}
                session = _session_from(str(key).removeprefix(f"{PREFIX}s:"), fields)
                if session is not None:
                    sessions.append(session)
            if cursor == 0:
                return sessions

    async def revoke(self, session: Session, reason: str) -> None:
        """Mark ``session`` to be ended, if it is still live: its next update is denied with
        ``reason``."""
        async with self._deadline():
            await self._record(
                keys=[], args=["revoke", self._clock(), PREFIX, session.id, session.opened, reason]
            )

    async def end(self, session: Session) -> None:
        """Forget ``session``, if it is still live: a vendor's API ended it."""
        now = self._clock()
        async with self._deadline():
            await self._record(
                keys=[],
                args=["close", now, PREFIX, session.id, now, TOMBSTONE_SECONDS, session.opened],
            )


def _session_from(sid: str, fields: dict[str, str]) -> Session | None:
    try:
        event = Event.from_dict(json.loads(fields["event"]))
        return Session(
            id=sid,
            connection=fields["connection"],
            vendor=fields["vendor"],
            role=fields["role"],
            app=fields["app"],
            stream=fields["stream"],
            client_ip=fields["client_ip"],
            key=fields["key"],
            node=fields["node"],
            vendor_session=fields["vendor_session"],
            opened=float(fields["opened"]),
            last_seen=float(fields["last_seen"]),
            updated=fields["updated"] == "1",
            ends=float(fields["ends"]) if fields.get("ends") else None,
            rule=fields.get("rule") or None,
            event=event,
            ended_because=fields.get("ended_because", ""),
        )
    except (KeyError, ValueError, TypeError):
        return None  # half-written or expired between SCAN and HGETALL


def _indexes_of(event: Event) -> list[tuple[str, str, str]]:
    key = event.params.get(KEY_PARAM)
    values = {
        "stream": event.stream,
        "app": event.app,
        "client": event.client_ip,
        "key": key if isinstance(key, str) else "",
    }
    return [(role, scope, values[scope]) for role in _ROLES for scope in _SCOPES if values[scope]]


def _index_key(index: tuple[str, str, str]) -> str:
    role, scope, value = index
    return f"{PREFIX}i:{role}:{scope}:{value}"
