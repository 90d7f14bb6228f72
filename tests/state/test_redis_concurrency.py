"""The Redis backend when requests overlap, against a real redis-server.

* A burst: more requests waiting on Redis at once than the connection pool holds must wait for a
  connection (within the state deadline), not be refused at once as if Redis were down.
* An update whose record lands after its session's end (the two requests were in flight
  together) must not bring the session back, as the memory backend does not.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as sync_redis
from redis_server import RedisServer

from castgate.events import Decision, Effect, Event
from castgate.gate import decide, load_gate
from castgate.settings import Settings
from castgate.state.memory import MemoryState
from castgate.state.redis import MAX_CONNECTIONS, RedisState

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


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


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

    async def burst() -> list[tuple[Effect, str, bool]]:
        try:
            for i in range(BURST):
                await decide(gate, vendor, _event("publish", i), gate.policy)
            decisions = await asyncio.gather(
                *(decide(gate, vendor, _event("update", i), gate.policy) for i in range(BURST))
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
