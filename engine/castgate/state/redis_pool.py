"""Connections to Redis for :class:`castgate.state.redis.RedisState`: a pool that queues
commands fairly when every connection is busy, and commands serialized by hiredis."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.connection import HiredisRespSerializer
from redis.event import AsyncAfterConnectionReleasedEvent
from redis.utils import HIREDIS_AVAILABLE

#: Connections to Redis one process keeps at most. A request that finds them all busy waits for
#: one, within its state deadline: a burst of requests is a queue, not an outage.
MAX_CONNECTIONS = 100

_HIREDIS = HiredisRespSerializer()


class _HiredisPacking(AbstractConnection):
    """Serializes commands with hiredis, in C, as redis-py's synchronous client does; its asyncio
    client packs them in Python (redis-py#4176): 18.6 against 3.1 us for a snapshot's EVALSHA of
    23 arguments, byte for byte the same."""

    def pack_command(self, *args: Any) -> list[bytes]:
        try:
            packed: list[bytes] = _HIREDIS.pack(*args)
        except UnicodeEncodeError:
            # hiredis encodes text strictly; a lone surrogate (a stream name Ant Media sent) takes
            # the connection's own encoder, which passes it through.
            return super().pack_command(*args)
        return packed


class _Connection(_HiredisPacking, aioredis.Connection):
    pass


class _SSLConnection(_HiredisPacking, aioredis.SSLConnection):
    pass


class _UnixConnection(_HiredisPacking, aioredis.UnixDomainSocketConnection):
    pass


_PACKED_BY_HIREDIS: dict[type[AbstractConnection], type[AbstractConnection]] = {
    aioredis.Connection: _Connection,
    aioredis.SSLConnection: _SSLConnection,
    aioredis.UnixDomainSocketConnection: _UnixConnection,
}


class QueuedConnectionPool(aioredis.ConnectionPool):
    """At most ``max_connections`` connections; a command that finds them all busy waits for one
    in a queue, first come, first served, for as long as its caller lets it (``RedisState``: what
    is left of the operation's deadline).

    redis-py's ``BlockingConnectionPool`` wakes one waiter per release through an
    ``asyncio.Condition``, and the woken waiter must then take the condition's lock again before
    it can use the connection. Meanwhile a command that has just arrived takes the connection
    (the waiter goes back to sleep, at the end of the line), and a waiter whose wait times out
    as it is woken loses the wake-up with it (Python before 3.13), leaving a connection idle
    while others wait. After a pause of a few hundred milliseconds (a busy event loop, a burst)
    hundreds of requests waited for connections that were free, ran out the state deadline
    and were decided as if Redis were down, at half the server's saturation rate.

    Here a released connection is handed straight to the longest waiting command, and one that
    was handed a connection but gave up before it could use it passes it on. Its connections
    pack commands with hiredis where it is installed.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if HIREDIS_AVAILABLE:  # a dependency on CPython only
            # The class the URL chose (TCP, TLS or Unix socket), packing with hiredis; a class set
            # by hand is left as it is.
            chosen = self.connection_class
            self.connection_class = _PACKED_BY_HIREDIS.get(chosen, chosen)
        self._waiting: deque[asyncio.Future[AbstractConnection]] = deque()

    async def get_connection(
        self, command_name: object = None, *keys: object, **options: object
    ) -> AbstractConnection:
        connection = self._free_connection()
        if connection is None:
            connection = await self._wait_for_connection()
        try:
            await self.ensure_connection(connection)
        except BaseException:
            await self.release(connection)
            raise
        return connection

    def _free_connection(self) -> AbstractConnection | None:
        """A connection at once, if one is idle or may be opened and nobody waits for one."""
        self._serve_waiting()
        if self._waiting or not self._can_take():
            return None
        return self._take()

    def _take(self) -> AbstractConnection:
        connection: AbstractConnection = self.get_available_connection()  # type: ignore[no-untyped-call]
        return connection

    def _can_take(self) -> bool:
        return bool(self._available_connections) or (
            len(self._in_use_connections) < self.max_connections
        )

    def _serve_waiting(self) -> None:
        """Give the commands waiting, first come first served, what connections there are (some
        may have left the pool without a release: a reset, a connection collected)."""
        while self._waiting:
            if self._waiting[0].done():
                self._waiting.popleft()
            elif self._can_take():
                self._waiting.popleft().set_result(self._take())
            else:
                return

    async def _wait_for_connection(self) -> AbstractConnection:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[AbstractConnection] = loop.create_future()
        self._waiting.append(waiter)
        try:
            return await waiter
        except BaseException:
            # Cancelled after a connection was handed over, before this task could run: the
            # connection goes to the next in line rather than back to an idle list nobody
            # watches.
            if waiter.done() and not waiter.cancelled():
                await self.release(waiter.result())
            raise

    async def release(self, connection: AbstractConnection) -> None:
        if connection not in self._in_use_connections:
            return  # the pool was reset meanwhile: the connection is no longer its to give
        if connection.should_reconnect():  # type: ignore[no-untyped-call]
            await connection.disconnect()
        handed_over = False
        while self._waiting and not handed_over:
            waiter = self._waiting.popleft()
            if not waiter.done():
                # Still in use: by the waiter, now.
                waiter.set_result(connection)
                handed_over = True
        if not handed_over:
            self._in_use_connections.remove(connection)
            self._available_connections.append(connection)
        if self._event_dispatcher is not None:
            released = AsyncAfterConnectionReleasedEvent(connection)  # type: ignore[no-untyped-call]
            await self._event_dispatcher.dispatch_async(released)
