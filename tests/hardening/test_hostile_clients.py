"""Slow and hostile clients against a real ``castgate serve``: they hold connections, trickle
or stall their requests, send too much or send bytes that are not text, and meanwhile a
streaming server's publish is still answered, and answered right.

No test here times the server. The deadlines it keeps (castgate.connections) are only asserted
as "the slow client was cut off before it was done", and the publish as "answered while every
slow client still held its connection".
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from castgate.connections import BODY_TIMEOUT_SECONDS, HEAD_TIMEOUT_SECONDS
from castgate.plugins import load_plugins
from hardening.castgate_process import PUBLISH, Served, castgate_serve, publish_is_admitted
from hardening.raw_http import Answer, Trickled, exchange, post, request_head, trickle
from hardening.vendor_requests import hook_path

#: castgate's limit on a request body (README; refused with 413 before any plugin reads it).
MAX_BODY_BYTES = 1024 * 1024

SLOW_CLIENTS = 40

ENDPOINTS = sorted(
    hook_path(vendor.name, route)
    for vendor in load_plugins().vendors.values()
    for route in vendor.routes
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with castgate_serve(tmp_path_factory.mktemp("hostile")) as served:
        yield served


async def _hold_and_publish(
    server: Served, slow_clients: list[tuple[bytes, int]]
) -> tuple[Answer, int, list[Trickled]]:
    """Start every slow client, publish once all have sent their first bytes, and report the
    publish's answer, how many slow clients still held their connection when it came, and how
    each slow client fared."""
    started = [asyncio.Event() for _ in slow_clients]
    clients = [
        asyncio.create_task(trickle(server.port, data, at_once=at_once, started=event))
        for (data, at_once), event in zip(slow_clients, started, strict=True)
    ]
    await asyncio.gather(*(event.wait() for event in started))
    answer = await asyncio.to_thread(exchange, server.port, PUBLISH)
    holding = sum(not client.done() for client in clients)
    return answer, holding, await asyncio.gather(*clients)


def test_clients_trickling_their_request_heads_are_cut_off_and_a_publish_is_answered_meanwhile(
    server: Served,
) -> None:
    # Each would need far longer than the head deadline to send its head, a byte a second.
    head = request_head("POST", b"/hooks/nginx_rtmp", [(b"x-padding", b"p" * 60)])
    assert len(head) > 4 * HEAD_TIMEOUT_SECONDS
    answer, holding, slow = asyncio.run(_hold_and_publish(server, [(head, 1)] * SLOW_CLIENTS))
    assert (answer.status, answer.closed) == (200, True)
    assert holding == SLOW_CLIENTS
    assert all(client.cut_off for client in slow), slow
    # Their heads never reached the app: nothing was answered, they were hung up on.
    assert all(client.answer.raw == b"" for client in slow)
    assert publish_is_admitted(server)


def test_clients_trickling_or_stalling_their_bodies_are_cut_off_and_a_publish_is_answered(
    server: Served,
) -> None:
    body = b"call=publish&" + b"x" * 60
    head = request_head(
        "POST",
        b"/hooks/nginx_rtmp",
        [(b"content-type", b"application/x-www-form-urlencoded"), (b"content-length", b"1000")],
    )
    assert len(body) > 4 * BODY_TIMEOUT_SECONDS
    # Half send the head and then the body a byte a second; half send the head and a tenth of
    # the body they declared, then nothing.
    trickling = (head + body, len(head) + 1)
    stalling = (head + body[:10], len(head) + 10)
    half = SLOW_CLIENTS // 2
    answer, holding, slow = asyncio.run(
        _hold_and_publish(server, [trickling] * half + [stalling] * half)
    )
    assert (answer.status, answer.closed) == (200, True)
    assert holding == SLOW_CLIENTS
    assert all(client.answer.closed for client in slow), slow
    assert all(client.cut_off for client in slow[:half])
    # Hung up on by the connection's deadline: never admitted, never a server error.
    assert {client.answer.status for client in slow} == {None}
    assert publish_is_admitted(server)


@pytest.mark.parametrize("path", ENDPOINTS)
def test_a_body_over_the_limit_is_refused_with_413_before_the_rest_arrives(
    server: Served, path: str
) -> None:
    # Twice the limit declared, one byte over it sent: the answer cannot wait for the rest.
    head = request_head(
        "POST", path.encode(), [(b"content-length", str(2 * MAX_BODY_BYTES).encode())]
    )
    answer = exchange(server.port, head + b"{" * (MAX_BODY_BYTES + 1))
    assert answer.status == 413
    assert answer.header(b"connection") == b"close"
    assert answer.closed


def test_a_chunked_body_over_the_limit_is_refused_with_413(server: Served) -> None:
    head = request_head("POST", b"/hooks/livepeer", [(b"transfer-encoding", b"chunked")])
    # Exactly one byte over, so the server has read all that was sent when it hangs up.
    sizes = [65536] * (MAX_BODY_BYTES // 65536) + [1]
    chunks = b"".join(b"%x\r\n%s\r\n" % (size, b"x" * size) for size in sizes)
    answer = exchange(server.port, head + chunks)
    assert (answer.status, answer.closed) == (413, True)


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize(
    "content_type",
    [b"application/json", b"application/x-www-form-urlencoded", b"text/plain; charset=utf-8"],
)
def test_a_body_that_is_not_utf8_is_refused_in_the_vendors_way(
    server: Served, path: str, content_type: bytes
) -> None:
    body = b"\xff\xfe{\xc3(\xed\xa0\x80=\x80&\xc0\xaf}"
    answer = exchange(server.port, post(path.encode(), body, content_type))
    assert answer.status in (400, 403), answer.raw
    assert answer.closed


def test_after_all_of_that_the_server_still_admits_a_publish_and_logged_no_exception(
    server: Served,
) -> None:
    # Runs last, on the server the tests above abused.
    assert publish_is_admitted(server)
    log = server.log_text()
    assert "Traceback" not in log
    assert "Exception in ASGI application" not in log
