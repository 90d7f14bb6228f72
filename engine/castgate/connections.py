"""Deadlines for reading a request: uvicorn's HTTP protocols, with a head and a body timeout.

uvicorn closes a kept-alive connection that stays idle (``timeout_keep_alive``), but once a
client has sent one byte nothing bounds how long it may take over the rest of its request: a
client that sends its head a byte a second, or declares a body and never sends it, holds a
connection (and, for the body, a running request) for as long as it likes, and enough of them
hold the server. The protocols here close such connections:

* the request head must be complete within :data:`HEAD_TIMEOUT_SECONDS` of the connection being
  opened, or of the previous response on a kept-alive connection;
* the body must be complete within :data:`BODY_TIMEOUT_SECONDS` of its head.

Closing is all they do. A request whose head is late never reached the app; one whose body is
late is waiting in the app's body reader, which sees ``http.disconnect`` and answers nobody.

``castgate serve`` passes :data:`HTTP_PROTOCOL` to uvicorn: the httptools protocol when httptools
is installed, else the h11 one, the same choice uvicorn's ``http="auto"`` makes.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from typing import ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

#: Streaming servers write a webhook request in one go on a local network, so its head arrives
#: within milliseconds; a few seconds is generous even for a loaded host, and short enough that
#: a client trickling its head cannot hold many connections for long.
HEAD_TIMEOUT_SECONDS = 5.0

#: The largest body castgate reads is a Nimble pay-per-view sync listing every viewer, at most
#: 1 MiB; that takes well under a second on any link a streaming server reports over, so ten
#: seconds leaves room for a slow one and still frees a stalled upload quickly.
BODY_TIMEOUT_SECONDS = 10.0

_log = logging.getLogger(__name__)


class Phase(enum.Enum):
    """Which part of a request a connection is waiting for, with a deadline."""

    HEAD = "head"
    BODY = "body"


class RequestDeadline:
    """The one pending deadline of a connection: closes its transport when it passes.

    ``expect`` is called whenever the connection may have moved on; a deadline runs from the
    moment its phase began and is not renewed by bytes trickling in.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        transport: asyncio.Transport,
        head_timeout: float,
        body_timeout: float,
        client: tuple[str, int] | None,
    ) -> None:
        self.loop = loop
        self.transport = transport
        self.timeouts = {Phase.HEAD: head_timeout, Phase.BODY: body_timeout}
        self.client = client
        self.phase: Phase | None = None
        self._timer: asyncio.TimerHandle | None = None

    def expect(self, phase: Phase | None) -> None:
        """Wait for ``phase`` (``None``: for nothing); a new phase starts its own deadline."""
        if phase is self.phase:
            return
        self.cancel()
        self.phase = phase
        if phase is not None and not self.transport.is_closing():
            self._timer = self.loop.call_later(self.timeouts[phase], self._passed, phase)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _passed(self, phase: Phase) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        peer = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
        _log.warning(
            "closed the connection from %s: no complete request %s within %g seconds",
            peer,
            phase.value,
            self.timeouts[phase],
        )
        self.transport.close()


#: What an h11 connection is waiting for in each state of the client's side; in any other state
#: (request read, connection closing or broken) there is nothing to wait for.
_H11_PHASES: dict[object, Phase] = {
    h11.IDLE: Phase.HEAD,
    h11.SEND_BODY: Phase.BODY,
}


class H11WithDeadlines(H11Protocol):
    """uvicorn's h11 protocol, closing connections whose request head or body is late.

    h11 says where the client's side of the connection stands (``their_state``), so the deadline
    follows that after every chunk received and every response sent.
    """

    head_timeout: ClassVar[float] = HEAD_TIMEOUT_SECONDS
    body_timeout: ClassVar[float] = BODY_TIMEOUT_SECONDS

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.deadline = RequestDeadline(
            self.loop, transport, self.head_timeout, self.body_timeout, self.client
        )
        self.deadline.expect(Phase.HEAD)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow_h11()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow_h11()

    def connection_lost(self, exc: Exception | None) -> None:
        self.deadline.cancel()
        super().connection_lost(exc)

    def _follow_h11(self) -> None:
        self.deadline.expect(_H11_PHASES.get(self.conn.their_state))


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools is optional; without it uvicorn (and castgate) runs h11
    #: The protocol class ``castgate serve`` hands uvicorn.
    HTTP_PROTOCOL: type[asyncio.Protocol] = H11WithDeadlines
else:

    class HttpToolsWithDeadlines(HttpToolsProtocol):
        """uvicorn's httptools protocol, closing connections whose request head or body is late.

        httptools reports each request's progress through parser callbacks; the deadline moves
        on in them: to the body when the head is complete, to nothing when the body is.
        """

        head_timeout: ClassVar[float] = HEAD_TIMEOUT_SECONDS
        body_timeout: ClassVar[float] = BODY_TIMEOUT_SECONDS

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self.deadline = RequestDeadline(
                self.loop, transport, self.head_timeout, self.body_timeout, self.client
            )
            self.deadline.expect(Phase.HEAD)

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            self.deadline.expect(Phase.BODY)

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self.deadline.expect(None)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            # uvicorn arms its keep-alive timer exactly when the connection is left waiting for
            # a new request; a body still arriving, or a pipelined request, keeps its deadline.
            if self.deadline.phase is None and self.timeout_keep_alive_task is not None:
                self.deadline.expect(Phase.HEAD)

        def connection_lost(self, exc: Exception | None) -> None:
            self.deadline.cancel()
            super().connection_lost(exc)

    HTTP_PROTOCOL = HttpToolsWithDeadlines
