"""Connections to Redis: commands packed by hiredis, whatever transport the URL chose.

* Each transport a state URL can name (``redis://``, ``rediss://``, ``unix://``) keeps its
  connection class and packs commands in C; redis-py's asyncio client packs them in Python.
* Packed by hiredis, a command is byte for byte what redis-py's own packer makes, text with a
  lone surrogate included (which hiredis refuses and the connection's encoder passes through).
* Over a real Unix socket, a stream named with a lone surrogate is recorded, counted and closed.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from hypothesis import given
from hypothesis import strategies as st
from redis_server import RedisServer

from castgate.events import Decision, Effect, Event
from castgate.state.redis import RedisState
from castgate.state.redis_pool import QueuedConnectionPool


@pytest.mark.parametrize(
    ("url", "transport"),
    [
        ("redis://127.0.0.1:6379/0", aioredis.Connection),
        ("rediss://127.0.0.1:6380/0", aioredis.SSLConnection),
        ("unix:///run/redis/redis.sock?db=0", aioredis.UnixDomainSocketConnection),
    ],
)
def test_every_transport_packs_commands_with_hiredis(
    url: str, transport: type[aioredis.Connection]
) -> None:
    connection_class = QueuedConnectionPool.from_url(url).connection_class
    assert issubclass(connection_class, transport)
    assert connection_class.pack_command is not transport.pack_command


def test_a_connection_class_set_by_hand_is_kept() -> None:
    class Custom(aioredis.Connection):
        pass

    assert QueuedConnectionPool(connection_class=Custom).connection_class is Custom


_ARGUMENTS = st.lists(
    st.one_of(
        st.text(),  # lone surrogates included
        st.binary(),
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
    ),
    max_size=30,
)


@given(
    name=st.sampled_from(["EVALSHA", "ZCOUNT", "SCRIPT LOAD", b"HSET"]),
    arguments=_ARGUMENTS,
)
def test_a_command_is_packed_as_redis_py_packs_it(
    name: str | bytes, arguments: list[object]
) -> None:
    options = {"encoding_errors": "surrogatepass", "decode_responses": True}
    pool = QueuedConnectionPool(**options)
    ours = pool.make_connection()
    theirs = aioredis.Connection(**options)
    assert b"".join(ours.pack_command(name, *arguments)) == b"".join(
        theirs.pack_command(name, *arguments)
    )


@pytest.mark.redis
def test_state_over_a_unix_socket(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, unix_socket=tmp_path / "redis.sock")
    server.start()
    publish = Event(
        vendor="nginx_rtmp",
        action="publish",
        app="live",
        stream="cam\ud800",  # a name hiredis cannot encode: the fallback packer's
        client_ip="10.20.0.7",
        session_id="7",
        node="127.0.0.1",
    )

    done = replace(publish, action="publish_done", role="publisher")
    allowed = Decision(Effect.ALLOW, "", rule="studio")

    async def scene() -> tuple[int, list[str], list[str]]:
        state = RedisState(f"unix://{tmp_path / 'redis.sock'}?db=0")
        try:
            assert await state.record(publish, allowed, None)
            snapshot = await state.snapshot(publish)
            live = [session.stream for session in await state.live()]
            assert await state.record(done, allowed, None)
            return (
                snapshot.count("publisher", "stream", publish.stream),
                live,
                [session.stream for session in await state.live()],
            )
        finally:
            await state.close()

    try:
        # Before the fix, the record script's cjson refused the name's \u escape.
        assert asyncio.run(scene()) == (1, ["cam\ud800"], [])
    finally:
        server.stop()
