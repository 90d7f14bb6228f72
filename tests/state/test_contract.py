"""One contract, two backends: the tests run against the memory state and a real redis-server,
and both must answer alike.

* A close that arrives late, from an earlier session under the same id, leaves the current
  session live.
* A revoke marks the session it was given only while that very session is live: not one that
  has closed (nothing may be left behind in Redis), nor a later one under the same id.
* Denials are counted per client address, within the window asked for (at most an hour), and
  only the latest ``DENIALS_KEPT`` by time are kept, even when the clock steps back; any other
  key has none.
* Redis only: what a revoke after a close used to leave behind does not block that id.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import redis as sync_redis
from redis_server import RedisServer

from castgate.events import Decision, Effect, Event
from castgate.state.memory import DENIALS_KEPT, RATE_HORIZON_SECONDS, MemoryState
from castgate.state.redis import PREFIX, RedisState
from castgate.state.sessions import Session

ALLOWED = Decision(Effect.ALLOW, "", rule="studio")
DENIED = Decision(Effect.DENY, "slow down", rule="brute_force")
SESSION = "nginx_rtmp|127.0.0.1|7|cam7|publisher"
REASON = "the reloaded policy denies it: studio closed"


def _event(action: str, at: float) -> Event:
    return Event(
        vendor="nginx_rtmp",
        action=action,
        app="live",
        stream="cam7",
        client_ip="10.20.0.7",
        session_id="7",
        node="127.0.0.1",
        role="publisher" if action in ("update", "publish_done") else "",
        time=at,
    )


class Backend:
    """Either backend behind the same awaited calls."""

    def __init__(self, state: MemoryState | RedisState) -> None:
        self.state = state

    async def record(self, event: Event, decision: Decision = ALLOWED) -> None:
        if isinstance(self.state, RedisState):
            assert await self.state.record(event, decision, None)
        else:
            self.state.record(event, decision)

    async def denials(self, event: Event, key: str, window: float) -> int:
        """``sessions.denials(key, window)`` as a policy deciding ``event`` reads it."""
        if isinstance(self.state, RedisState):
            snapshot = await self.state.snapshot(event, windows=(window,))
            return snapshot.rate("deny", key, window)
        return self.state.rate("deny", key, window)

    async def live(self) -> list[Session]:
        if isinstance(self.state, RedisState):
            return await self.state.live()
        return self.state.live()

    async def revoke(self, session: Session, reason: str) -> None:
        if isinstance(self.state, RedisState):
            await self.state.revoke(session, reason)
        else:
            self.state.revoke(session, reason)

    async def end(self, session: Session) -> None:
        if isinstance(self.state, RedisState):
            await self.state.end(session)
        else:
            self.state.end(session)

    async def only(self) -> Session:
        sessions = await self.live()
        assert [s.id for s in sessions] == [SESSION]
        return sessions[0]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request: pytest.FixtureRequest) -> str:
    """``memory``, or the URL of a real redis-server started for the test."""
    if request.param == "memory":
        return "memory"
    server: RedisServer = request.getfixturevalue("redis")
    return server.url


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def opened(backend: str, clock: Clock | None = None) -> AsyncIterator[Backend]:
    read = clock or time.time
    if backend == "memory":
        yield Backend(MemoryState(clock=read))
        return
    store = RedisState(backend, clock=read)
    try:
        yield Backend(store)
    finally:
        await store.close()


def _key_of(backend: str) -> tuple[bool, int]:
    """Whether the session's hash exists in Redis, and its time to live (-2: no key)."""
    client = sync_redis.Redis.from_url(backend)
    try:
        key = f"{PREFIX}s:{SESSION}"
        return bool(client.exists(key)), int(client.ttl(key))
    finally:
        client.close()


def test_a_late_close_of_an_earlier_session_leaves_the_current_one_live(
    backend: str,
) -> None:
    start = time.time()

    async def scene() -> None:
        async with opened(backend) as state:
            await state.record(_event("publish", start))
            await state.record(_event("publish_done", start + 5))
            await state.record(_event("publish", start + 10))
            # The first session's close, delivered again (a retry) after the second one opened.
            await state.record(_event("publish_done", start + 5))
            # Before the fix, Redis closed the second session: its stream went on uncounted.
            assert (await state.only()).opened == start + 10
            await state.record(_event("publish_done", start + 11))
            assert await state.live() == []

    asyncio.run(scene())


def test_a_revoke_after_its_session_closed_leaves_nothing_behind(backend: str) -> None:
    start = time.time()

    async def scene() -> None:
        async with opened(backend) as state:
            await state.record(_event("publish", start))
            found = await state.only()
            # The session ends between the sweep that found it and its revoke.
            await state.record(_event("publish_done", start + 1))
            await state.revoke(found, REASON)
            assert await state.live() == []
            if backend != "memory":
                # Before the fix: a hash of {ends, ended_because} that never expired, and every
                # later record for the id failed inside the script (StateUnavailableError).
                assert _key_of(backend) == (False, -2)
            await state.record(_event("publish", start + 2))
            await state.record(_event("update", start + 3))
            again = await state.only()
            assert (again.opened, again.updated, again.ended_because) == (start + 2, True, "")

    asyncio.run(scene())


def test_a_revoke_does_not_mark_a_later_session_under_the_same_id(backend: str) -> None:
    start = time.time()

    async def scene() -> None:
        async with opened(backend) as state:
            await state.record(_event("publish", start))
            found = await state.only()
            await state.record(_event("publish_done", start + 1))
            await state.record(_event("publish", start + 2))
            await state.revoke(found, REASON)
            # Before the fix, both backends ended the new session for what the old one did.
            later = await state.only()
            assert (later.opened, later.ends, later.ended_because) == (start + 2, None, "")

    asyncio.run(scene())


def test_an_end_does_not_close_a_later_session_under_the_same_id(backend: str) -> None:
    # In the past: an end is recorded at the present, and must come after what it ends.
    start = time.time() - 60

    async def scene() -> None:
        async with opened(backend) as state:
            await state.record(_event("publish", start))
            found = await state.only()
            await state.record(_event("publish_done", start + 1))
            await state.record(_event("publish", start + 2))
            # The vendor's API ended the first session; the second goes on and is counted.
            await state.end(found)
            assert (await state.only()).opened == start + 2
            await state.end(await state.only())
            assert await state.live() == []

    asyncio.run(scene())


def test_a_revoke_marks_a_live_session_and_keeps_its_expiry(backend: str) -> None:
    start = time.time()

    async def scene() -> None:
        async with opened(backend) as state:
            await state.record(_event("publish", start))
            await state.revoke(await state.only(), REASON)
            revoked = await state.only()
            assert (revoked.ends, revoked.ended_because) == (0.0, REASON)
            if backend != "memory":
                exists, ttl = _key_of(backend)
                assert exists and ttl > 0

    asyncio.run(scene())


@pytest.mark.redis
def test_a_revokes_leftover_from_an_older_castgate_is_replaced_by_the_next_start(
    redis: RedisServer,
) -> None:
    # What a revoke just after its session's close used to leave: two fields and no expiry.
    # Every record for the id then failed inside the script, as if Redis were down.
    client = sync_redis.Redis.from_url(redis.url)
    try:
        client.hset(f"{PREFIX}s:{SESSION}", mapping={"ends": 0, "ended_because": REASON})
    finally:
        client.close()
    start = time.time()

    async def scene() -> None:
        async with opened(redis.url) as state:
            await state.record(_event("publish", start))
            session = await state.only()
            assert (session.opened, session.ends, session.ended_because) == (start, None, "")

    asyncio.run(scene())
    exists, ttl = _key_of(redis.url)
    assert exists and ttl > 0


def test_denials_are_counted_per_address_within_the_window(backend: str) -> None:
    clock = Clock()
    publish = _event("publish", clock.now)

    async def scene() -> None:
        async with opened(backend, clock) as state:
            for _ in range(3):
                await state.record(publish, DENIED)
                clock.now += 20
            await state.record(_event("publish_done", clock.now), DENIED)  # not a request
            # Denied at 0, 20 and 40 s; asked at 60 s.
            assert await state.denials(publish, "10.20.0.7", 60) == 3
            assert await state.denials(publish, "10.20.0.7", 30) == 1
            assert await state.denials(publish, "10.20.0.7", 20) == 1  # 20 s ago is within
            assert await state.denials(publish, "192.0.2.1", 60) == 0
            # Only addresses are recorded: before the fix, Redis answered any key with the
            # address's count (memory: 0), so `sessions.denials(params.key, 1m)` differed.
            assert await state.denials(publish, "a-stream-key", 60) == 0
            clock.now += RATE_HORIZON_SECONDS - 30
            # The last denial was 10 s within the hour, the one before 10 s past it: a longer
            # window looks back the hour only.
            assert await state.denials(publish, "10.20.0.7", 2 * RATE_HORIZON_SECONDS) == 1

    asyncio.run(scene())


def test_only_the_latest_denials_of_an_address_are_kept(backend: str) -> None:
    clock = Clock()
    publish = _event("publish", clock.now)

    async def scene() -> None:
        async with opened(backend, clock) as state:
            for _ in range(DENIALS_KEPT + 5):
                await state.record(publish, DENIED)
                clock.now += 0.01
            # Before the fix, Redis kept every one and sent them all with each snapshot.
            assert await state.denials(publish, "10.20.0.7", 600) == DENIALS_KEPT

    asyncio.run(scene())


def test_denials_stay_in_time_order_when_the_clock_steps_back(backend: str) -> None:
    clock = Clock()
    publish = _event("publish", clock.now)

    async def scene() -> None:
        async with opened(backend, clock) as state:
            for _ in range(DENIALS_KEPT):
                await state.record(publish, DENIED)
                clock.now += 0.01
            latest = clock.now
            clock.now -= 1000  # the host's clock is set back (NTP step)
            await state.record(publish, DENIED)
            clock.now = latest
            # Redis orders denials by time and drops the earliest past the cap: the one from the
            # stepped-back clock. Before the fix, memory state dropped the first one recorded
            # instead and counted 9,999 in a window the dropped one was outside of.
            assert await state.denials(publish, "10.20.0.7", 600) == DENIALS_KEPT
            assert await state.denials(publish, "10.20.0.7", 0.045) == 4

    asyncio.run(scene())


@pytest.mark.redis
def test_a_window_the_snapshot_was_not_given_is_asked_for(redis: RedisServer) -> None:
    clock = Clock()
    publish = _event("publish", clock.now)

    async def scene() -> None:
        async with opened(redis.url, clock) as backend:
            state = backend.state
            assert isinstance(state, RedisState)
            for _ in range(3):
                await backend.record(publish, DENIED)
            first = await state.snapshot(publish, windows=(60,))
            assert first.rate("deny", "10.20.0.7", 60) == 3
            assert first.rate("deny", "10.20.0.7", 30) == 0  # not counted: the gate asks again
            assert first.missed_windows == {30.0}
            again = await state.snapshot(publish, windows=sorted(first.missed_windows))
            assert again.rate("deny", "10.20.0.7", 30) == 3
            assert not again.missed_windows
            with pytest.raises(TypeError):  # a vendor's text as a window fails the rule
                again.rate("deny", "10.20.0.7", "30")  # type: ignore[arg-type]

    asyncio.run(scene())
