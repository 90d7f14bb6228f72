"""Pure ASGI middleware every request passes: ``Connection: close`` and a buffered, bounded body."""

from __future__ import annotations

import logging
from collections.abc import Callable

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_log = logging.getLogger(__name__)

#: The scope key under which :class:`BufferBody` leaves the body it read, for
#: :func:`castgate.read_body` to take without replaying it through ``receive``.
BUFFERED_BODY = "castgate.body"


class CloseConnection:
    """Sends ``Connection: close`` with every response.

    nginx-rtmp acts on a notify answer only when the connection closes; kept alive, each publish
    would wait out the keep-alive timeout. A hook caller makes one request per connection anyway.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() != b"connection"
                ]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, send_closing)


class BufferBody:
    """Reads the whole request body before the app runs; more than ``max_bytes`` gets a 413.

    Every vendor reads the whole body anyway, so buffering costs nothing, and an oversized or
    endless upload is refused here instead of inside plugin code. A body that trickles in too
    slowly is cut off by the connection's deadline (:mod:`castgate.connections`).
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, refused: Callable[[str], None] = lambda reason: None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        #: Called with ``body_too_large`` for each refusal (for metrics).
        self.refused = refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            body = await self._read(receive)
        except _TooLarge:
            await self._refuse(
                scope,
                receive,
                send,
                413,
                "body_too_large",
                f"request body over {self.max_bytes} bytes",
            )
            return
        if body is None:
            return  # the caller left; there is nobody to answer
        scope = {**scope, BUFFERED_BODY: body}
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        more_body = True
        while more_body:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise _TooLarge
            chunks.append(chunk)
            more_body = message.get("more_body", False)
        return b"".join(chunks)

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, status: int, reason: str, text: str
    ) -> None:
        _log.warning("refused a request to %s: %s", scope.get("path", "?"), text)
        self.refused(reason)
        await PlainTextResponse(text, status)(scope, receive, send)


class _TooLarge(Exception):  # noqa: N818 - internal signal, never escapes BufferBody
    pass
