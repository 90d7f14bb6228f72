"""The Redis backend when requests overlap, against a real redis-server.

* A burst: more requests waiting on Redis at once than the connection pool holds must wait for a
  connection (within the state deadline), not be refused at once as if Redis were down.
* Waiting for a connection is a queue: a released connection goes to the command that has waited
  longest, not to one that asked after it, and one handed to a command that gave up (cancelled)
  goes on to the next.
* An update whose record lands after its session's end (the two requests were in flight
  together) must not bring the session back, as the memory backend does not.
* A stalled Redis fails each operation within one state deadline, waiting for a connection
  included, and leaves no connection behind with an answer still to come.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis
from redis_server import RedisServer

from castgate.events import Decision, Effect, Event
from castgate.gate import decide, load_gate
from castgate.settings import Settings
from castgate.state.memory import MemoryState
from castgate.state.redis import RedisState, StateUnavailableError
from castgate.state.redis_pool import MAX_CONNECTIONS

pytestmark = pytest.mark.redis

POLICY = """
rule studio_ingest {
  on publish from nginx_rtmp
  allow if client.ip in [10.20.0.0/16]
}
rule studio_update {
  on update from nginx_rtmp
  allow if client.ip in [10.20.0.0/16]
}
"""

#: Well past the pool: redis-py 8's default pool (100 connections) refused the rest at once.
BURST = 3 * MAX_CONNECTIONS


def _event(action: str, i: int, at: float | None = None) -> Event:
    return Event(
        vendor="nginx_rtmp",
        action=action,
        app="live",
        stream=f"cam{i}",
        client_ip=f"10.20.{i // 250}.{i % 250 + 1}",
        session_id=str(4 * i + 1),
        node="127.0.0.1",
        role="publisher" if action in ("update", "publish_done") else "",
        **({} if at is None else {"time": at}),
    )


def test_a_burst_of_updates_beyond_the_pool_is_decided_not_refused(
    redis: RedisServer, tmp_path: Path
) -> None:
    (tmp_path / "studio.policy").write_text(POLICY)
    # A deadline this loaded machine meets: what is tested is that a request waits for a
    # connection instead of being refused at once, whatever the deadline.
    settings = Settings(policies=(tmp_path / "studio.policy",), state=redis.url, state_deadline=5)
    gate = load_gate(settings)
    vendor = gate.registry.vendors["nginx_rtmp"]

    async def decided_and_recorded(event: Event) -> Decision:
        decided = await decide(gate, vendor, event, gate.policy)
        if decided.record_after_answer is not None:  # what the server does once it answered
            await decided.record_after_answer()
        return decided.decision

    async def burst() -> list[tuple[Effect, str, bool]]:
        try:
            for i in range(BURST):
                await decided_and_recorded(_event("publish", i))
            decisions = await asyncio.gather(
                *(decided_and_recorded(_event("update", i)) for i in range(BURST))
            )
        finally:
            assert isinstance(gate.sessions, RedisState)
            await gate.sessions.close()
        return [(d.effect, d.rule or d.reason, d.failed) for d in decisions]

    answered = Counter(asyncio.run(burst()))
    # Before the fix (redis-py 8): 100 allowed, and 200 denied "session state unavailable".
    assert answered == {(Effect.ALLOW, "studio_update", False): BURST}


def test_a_burst_opens_no_more_connections_than_the_pool_holds(redis: RedisServer) -> None:
    store = RedisState(redis.url, timeout=5.0)
    watcher = sync_redis.Redis.from_url(redis.url)

    async def burst() -> int:
        try:
            await asyncio.gather(*(store.snapshot(_event("update", i)) for i in range(BURST)))
            # Every connection the burst opened is still open, idle in the pool.
            return len(watcher.client_list()) - 1  # not the watcher's own
        finally:
            await store.close()

    try:
        assert 0 < asyncio.run(burst()) <= MAX_CONNECTIONS
    finally:
        watcher.close()


async def _all_connections_taken(store: RedisState) -> list[Any]:
    """Every connection of the pool, held by the test (the snapshot script loaded first: a
    command that finds it missing loads it, and takes a second connection to)."""
    await store.snapshot(_event("update", 0))
    pool = store._redis.connection_pool
    return [await pool.get_connection() for _ in range(MAX_CONNECTIONS)]


async def _waiting(store: RedisState, i: int) -> asyncio.Task[Any]:
    task = asyncio.create_task(store.snapshot(_event("update", i)))
    for _ in range(3):
        await asyncio.sleep(0)  # it has asked for a connection and waits
    assert not task.done()
    return task


def test_a_connection_handed_to_a_cancelled_waiter_goes_to_the_next(redis: RedisServer) -> None:
    # A waiter woken and cancelled (its wait timed out, its request went away) in the same turn
    # of the event loop: redis-py's BlockingConnectionPool lost the wake-up with it (Python before
    # 3.13), and the next waiter slept on beside an idle connection until its deadline. After a
    # pause of the server, hundreds of requests did: 877 waiting with 70 connections idle.
    store = RedisState(redis.url, timeout=3.0)

    async def scene() -> float:
        pool = store._redis.connection_pool
        try:
            held = await _all_connections_taken(store)
            first = await _waiting(store, 1)
            second = await _waiting(store, 2)
            began = time.monotonic()
            await pool.release(held.pop())
            first.cancel()
            try:
                await second
            finally:
                for connection in held:
                    await pool.release(connection)
            with contextlib.suppress(asyncio.CancelledError):
                await first
            return time.monotonic() - began
        finally:
            await store.close()

    # Before: StateUnavailableError("No connection available.") after the whole 3 s.
    assert asyncio.run(scene()) < 1.0


def test_a_released_connection_goes_to_the_longest_waiting_command(redis: RedisServer) -> None:
    # A command that asks for a connection while others wait queues behind them. Before, a
    # request that released a connection and at once asked for one again (an update's record
    # after its snapshot) took back the connection the pool had just woken a waiter for; the
    # waiter went back to sleep, at the end of the line, and under load the oldest requests ran
    # out their deadline while newer ones went ahead.
    store = RedisState(redis.url, timeout=1.0)

    async def scene() -> str:
        pool = store._redis.connection_pool
        try:
            held = await _all_connections_taken(store)
            waiter = await _waiting(store, 1)
            await pool.release(held.pop())
            # Asked for in the same turn of the event loop, and held while the waiter waits.
            held.append(await pool.get_connection())
            try:
                await waiter
                outcome = "served"
            except StateUnavailableError as error:
                outcome = f"refused: {error}"
            for connection in held:
                await pool.release(connection)
            return outcome
        finally:
            await store.close()

    # Before: "refused: No connection available.", after the whole deadline.
    assert asyncio.run(scene()) == "served"


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_an_update_recorded_after_its_sessions_end_does_not_bring_it_back(
    backend: str, redis: RedisServer
) -> None:
    allowed = Decision(Effect.ALLOW, "", rule="studio")
    start = time.time()
    # Decided in this order, recorded in this order: the update was decided before the
    # publish_done arrived, and its record lost the race to the close.
    sequence = [
        _event("publish", 0, start),
        _event("publish_done", 0, start + 2),
        _event("update", 0, start + 1),
    ]

    async def recorded() -> list[str]:
        if backend == "memory":
            memory = MemoryState()
            for event in sequence:
                memory.record(event, allowed)
            after_late_update = [s.id for s in memory.live()]
            # An update after the close (castgate restarted, or the close was a mistake) is a
            # session that exists: it is counted again.
            memory.record(_event("update", 0, start + 3), allowed)
            return [*after_late_update, "|", *(s.id for s in memory.live())]
        store = RedisState(redis.url)
        try:
            for event in sequence:
                await store.record(event, allowed, None)
            after_late_update = [s.id for s in await store.live()]
            await store.record(_event("update", 0, start + 3), allowed, None)
            return [*after_late_update, "|", *(s.id for s in await store.live())]
        finally:
            await store.close()

    # Before the fix, Redis answered [<id>, "|", <id>]: a ghost publisher counted for
    # session_idle (120 s) after its stream had ended.
    assert asyncio.run(recorded()) == ["|", "nginx_rtmp|127.0.0.1|1|cam0|publisher"]


def test_a_stalled_redis_fails_each_operation_within_one_deadline_then_recovers(
    redis: RedisServer,
) -> None:
    # Every connection taken by a command Redis will not answer, as many operations queued
    # behind them at once, and as many more asking ever later, until half the deadline. Before,
    # one handed a connection just before its wait ran out then waited as long again for the
    # answer: the slowest failed after 4.0 s, with the deadline of 2 s below. With one deadline
    # for the whole operation but redis-py's socket timeout left on, Python 3.11's
    # asyncio.wait_for dropped the cancellation of a write completing as its deadline passed,
    # and the slowest failed after 7.0 s.
    #
    # A deadline long enough that the time a busy machine takes to give up three hundred
    # operations at once is small beside it.
    deadline = 2.0
    store = RedisState(redis.url, timeout=deadline)
    assert redis.process is not None
    server = redis.process

    async def failing(i: int, after: float) -> float:
        await asyncio.sleep(after)
        began = time.monotonic()
        with pytest.raises(StateUnavailableError):
            await store.snapshot(_event("update", i))
        return time.monotonic() - began

    async def scene() -> list[float]:
        try:
            await store.record(
                _event("publish", 0), Decision(Effect.ALLOW, "", rule="studio"), None
            )
            # The script loaded, then the pool full of open connections: the stall meets
            # commands, not connects.
            await store.snapshot(_event("update", 0))
            await asyncio.gather(
                *(store.snapshot(_event("update", i)) for i in range(MAX_CONNECTIONS))
            )
            server.send_signal(signal.SIGSTOP)
            try:
                later = [deadline / 2 * n / MAX_CONNECTIONS for n in range(MAX_CONNECTIONS)]
                waited = await asyncio.gather(
                    *(failing(1 + n, 0.0) for n in range(2 * MAX_CONNECTIONS)),
                    *(failing(1 + n, after) for n, after in enumerate(later)),
                )
            finally:
                server.send_signal(signal.SIGCONT)
            # Redis now answers what it was sent during the stall; none of those answers may
            # wait on a pooled connection for the next command to read as its own.
            assert await store.ping()
            for connection in store._redis.connection_pool._available_connections:
                assert not (connection.is_connected and await connection.can_read())
            # Each answer is its own question's: the one publisher is counted for cam0 only.
            counted = await asyncio.gather(
                *(store.snapshot(_event("update", i % 2)) for i in range(BURST))
            )
            for i, snapshot in enumerate(counted):
                assert snapshot.counts[("publisher", "stream", f"cam{i % 2}")] == 1 - i % 2
            return waited
        finally:
            await store.close()

    # The bound leaves a busy machine half a deadline of slack.
    assert max(asyncio.run(scene())) < 1.5 * deadline
