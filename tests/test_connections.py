"""castgate.connections: uvicorn's HTTP protocols with a deadline for each request's head and
body, run on a real uvicorn on loopback, with deadlines short enough to wait out, under both
protocol implementations (httptools only where it is installed).

Nothing here times the deadlines: a client is "cut off" when the server hangs up before the
client was done, which at the pace the clients keep would take many times the deadline.
"""

from __future__ import annotations

import asyncio
import pickle
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

import pytest
import uvicorn
from hardening.raw_http import exchange, request_head, trickle
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from castgate import connections
from castgate.connections import HTTP_PROTOCOL, H11WithDeadlines

DEADLINE = 0.5
#: Seconds between the bytes of a slow client: its 200-byte head or body takes 40 deadlines.
PACE = 0.1
SLOW_LENGTH = 200
#: uvicorn's own keep-alive timeout in these servers: far longer than any deadline, so a
#: connection closed well before it was closed by a deadline.
KEEP_ALIVE = 30


def quick(protocol: type[H11WithDeadlines]) -> type[H11WithDeadlines]:
    return type(
        f"Quick{protocol.__name__}",
        (protocol,),
        {"head_timeout": DEADLINE, "body_timeout": DEADLINE},
    )


_httptools = getattr(connections, "HttpToolsWithDeadlines", None)
PROTOCOLS = [
    pytest.param(quick(H11WithDeadlines), id="h11"),
    pytest.param(
        quick(_httptools) if _httptools else None,
        id="httptools",
        marks=pytest.mark.skipif(_httptools is None, reason="httptools is not installed"),
    ),
]


class Echo:
    """Reads the whole body and answers it back, kept alive; ``/slow`` takes its time first.
    Counts the requests it saw and the disconnects its body reads ran into."""

    def __init__(self) -> None:
        self.requests = 0
        self.disconnects = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.requests += 1
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.disconnects += 1
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        if scope["path"] == "/slow":
            await asyncio.sleep(4 * DEADLINE)
        headers = [(b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


@contextmanager
def serving(protocol: type[asyncio.Protocol]) -> Iterator[tuple[int, Echo]]:
    """An :class:`Echo` app on uvicorn with ``protocol``, on a free loopback port."""
    app = Echo()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app,
        http=protocol,
        lifespan="off",
        log_config=None,
        access_log=False,
        timeout_keep_alive=KEEP_ALIVE,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield listener.getsockname()[1], app
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


def connected(port: int) -> socket.socket:
    # Patience below uvicorn's keep-alive: a hang-up seen in time came from a deadline.
    return socket.create_connection(("127.0.0.1", port), timeout=KEEP_ALIVE / 2)


def post(path: bytes, body: bytes) -> bytes:
    head = request_head("POST", path, [(b"content-length", str(len(body)).encode())])
    return head + body


def read_response(stream: BinaryIO) -> bytes:
    """One whole response (Content-Length framed) from a kept-alive connection."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        line = stream.readline()
        assert line, "the server hung up in the middle of a response"
        head += line
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    return head + stream.read(length)


def eventually(condition: object, what: str) -> None:
    deadline = time.monotonic() + 10
    while not callable(condition) or not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_client_that_sends_nothing_is_hung_up_on(protocol: type[asyncio.Protocol]) -> None:
    with serving(protocol) as (port, app):
        answer = exchange(port, b"", patience=KEEP_ALIVE / 2)
        assert (answer.closed, answer.raw) == (True, b"")
        assert app.requests == 0


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_client_trickling_its_head_is_cut_off_before_reaching_the_app(
    protocol: type[asyncio.Protocol],
) -> None:
    head = request_head("GET", b"/", [(b"x-padding", b"p" * SLOW_LENGTH)])
    with serving(protocol) as (port, app):
        slow = asyncio.run(trickle(port, head, at_once=1, interval=PACE))
        assert slow.cut_off, slow
        assert slow.answer.raw == b""
        assert app.requests == 0


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_client_stalling_its_body_is_cut_off_and_the_app_sees_it_leave(
    protocol: type[asyncio.Protocol],
) -> None:
    head = request_head("POST", b"/", [(b"content-length", b"10")])
    with serving(protocol) as (port, app):
        answer = exchange(port, head + b"ab", patience=KEEP_ALIVE / 2)
        assert (answer.closed, answer.raw) == (True, b"")
        eventually(lambda: app.disconnects == 1, "the app never saw the client leave")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_client_trickling_its_body_is_cut_off(protocol: type[asyncio.Protocol]) -> None:
    request = post(b"/", b"b" * SLOW_LENGTH)
    at_once = request.index(b"\r\n\r\n") + 5
    with serving(protocol) as (port, app):
        slow = asyncio.run(trickle(port, request, at_once=at_once, interval=PACE))
        assert slow.cut_off, slow
        assert slow.answer.raw == b""
        eventually(lambda: app.disconnects == 1, "the app never saw the client leave")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_an_app_slower_than_the_deadlines_still_answers(protocol: type[asyncio.Protocol]) -> None:
    # The deadlines are for reading the request; once it is read, the app takes its time.
    with serving(protocol) as (port, _):
        answer = exchange(port, post(b"/slow", b"payload"), patience=KEEP_ALIVE / 2)
        assert answer.status == 200
        assert answer.raw.endswith(b"\r\n\r\npayload")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_kept_alive_connection_serves_requests_then_its_idle_wait_has_the_head_deadline(
    protocol: type[asyncio.Protocol],
) -> None:
    with serving(protocol) as (port, app), connected(port) as sock, sock.makefile("rb") as stream:
        for body in (b"first", b"second"):
            sock.sendall(post(b"/", body))
            assert read_response(stream).endswith(b"\r\n\r\n" + body)
        # Idle now: hung up on long before uvicorn's keep-alive timeout would.
        assert stream.read(1) == b""
        assert app.requests == 2


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_after_a_response_the_next_head_has_a_deadline_of_its_own(
    protocol: type[asyncio.Protocol],
) -> None:
    # Each byte of the second head resets uvicorn's keep-alive timer; the head deadline holds.
    head = request_head("GET", b"/", [(b"x-padding", b"p" * SLOW_LENGTH)])
    first = post(b"/", b"first")
    with serving(protocol) as (port, app):
        slow = asyncio.run(trickle(port, first + head, at_once=len(first) + 1, interval=PACE))
        assert slow.cut_off, slow
        assert slow.answer.raw.endswith(b"\r\n\r\nfirst")
        assert app.requests == 1


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_pipelined_requests_are_all_answered(protocol: type[asyncio.Protocol]) -> None:
    with serving(protocol) as (port, _), connected(port) as sock, sock.makefile("rb") as stream:
        sock.sendall(post(b"/slow", b"one") + post(b"/", b"two") + post(b"/", b"three"))
        answers = [read_response(stream) for _ in range(3)]
    assert [answer.rpartition(b"\r\n\r\n")[2] for answer in answers] == [b"one", b"two", b"three"]


def test_serve_uses_the_protocol_uvicorn_would_pick_with_deadlines_added() -> None:
    assert issubclass(HTTP_PROTOCOL, AutoHTTPProtocol)
    assert HTTP_PROTOCOL in (H11WithDeadlines, _httptools)


def test_uvicorn_loads_the_protocol_and_worker_processes_can_unpickle_it() -> None:
    config = uvicorn.Config(Echo(), http=HTTP_PROTOCOL, lifespan="off", log_config=None)
    config.load()
    assert config.http_protocol_class is HTTP_PROTOCOL
    # castgate serve --workers N hands the config to spawned processes, by pickling.
    assert pickle.loads(pickle.dumps(HTTP_PROTOCOL)) is HTTP_PROTOCOL
