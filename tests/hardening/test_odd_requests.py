"""Bytes that are not UTF-8, control characters and broken escapes in the request line and the
headers, sent to every hook endpoint of a real ``castgate serve``.

Each is answered, with a 4xx (uvicorn's 400 for what HTTP forbids, a 404 for a path no route
has, the vendor's refusal for the rest); never a 5xx, never a hang-up without an answer. And the
server goes on serving.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from castgate.plugins import load_plugins
from hardening.castgate_process import PUBLISH, Served, castgate_serve, publish_is_admitted
from hardening.raw_http import exchange, request_head
from hardening.vendor_requests import hook_path

ENDPOINTS = sorted(
    hook_path(vendor.name, route)
    for vendor in load_plugins().vendors.values()
    for route in vendor.routes
)

_EMPTY = [(b"content-length", b"0")]


def _line(method: bytes, target: bytes, headers: list[tuple[bytes, bytes]] = _EMPTY) -> bytes:
    """A request from its raw request line, which may hold anything."""
    lines = [method + b" " + target + b" HTTP/1.1", b"host: 127.0.0.1"]
    return b"\r\n".join(lines + [name + b": " + value for name, value in headers]) + b"\r\n\r\n"


#: name -> the request for a hook path; each is no valid request of any vendor.
ODD_REQUESTS = {
    "raw byte in the path": lambda path: _line(b"POST", path + b"/\xff"),
    "invalid UTF-8 escaped in the path": lambda path: _line(b"POST", path + b"%ff%c0%af"),
    "NUL escaped in the path": lambda path: _line(b"POST", path + b"%00"),
    "encoded slash in the path": lambda path: _line(b"POST", path + b"%2f..%2f"),
    "control byte in the path": lambda path: _line(b"POST", path + b"\x01"),
    "raw byte in the query": lambda path: _line(b"GET", path + b"?node=\xff&call=\xfe"),
    "invalid UTF-8 escaped in the query": lambda path: _line(
        b"GET", path + b"?node=%ff%fe&call=%c0%af&name=%ed%a0%80&app=%80"
    ),
    "broken escapes in the query": lambda path: _line(b"POST", path + b"?%&%%&%zz&=&&node=%"),
    "question marks in the query": lambda path: _line(b"GET", path + b"??&?=?&node=?"),
    "a query past the head limit": lambda path: _line(b"GET", path + b"?q=" + b"%ff" * 10_000),
    "absolute-form target": lambda path: _line(b"POST", b"http://\xff" + path),
    "raw byte in the method": lambda path: _line(b"PO\xffST", path),
    "lower-case method": lambda path: _line(b"post", path),
    "bytes that are not UTF-8 in a header value": lambda path: _line(
        b"POST", path, [*_EMPTY, (b"x-odd", b"\xff\xfe\xc0\xaf"), (b"user-agent", b"\x80")]
    ),
    "bytes that are not UTF-8 as the charset": lambda path: _line(
        b"POST", path, [*_EMPTY, (b"content-type", b"application/json; charset=\xff\xfe")]
    ),
    "bytes that are not UTF-8 as the host": lambda path: _line(
        b"POST", path, [*_EMPTY, (b"host", b"\xff.example")]
    ),
    "NUL in a header value": lambda path: _line(b"POST", path, [*_EMPTY, (b"x-odd", b"a\x00b")]),
    "space in a header name": lambda path: _line(b"POST", path, [*_EMPTY, (b"x odd", b"1")]),
    "raw byte in a header name": lambda path: _line(b"POST", path, [*_EMPTY, (b"x-\xff", b"1")]),
    "folded header line": lambda path: _line(b"POST", path, [*_EMPTY, (b"x-odd", b"a\r\n b")]),
    "bare CR in a header value": lambda path: _line(b"POST", path, [*_EMPTY, (b"x-odd", b"a\rb")]),
    "a header past the head limit": lambda path: _line(
        b"POST", path, [*_EMPTY, (b"x-odd", b"\xff" * 70_000)]
    ),
    "Content-Length that is no number": lambda path: _line(
        b"POST", path, [(b"content-length", b"\xff1")]
    ),
    "negative Content-Length": lambda path: _line(b"POST", path, [(b"content-length", b"-1")]),
    "two Content-Lengths": lambda path: _line(
        b"POST", path, [(b"content-length", b"0"), (b"content-length", b"5")]
    ),
    "unknown Transfer-Encoding": lambda path: _line(
        b"POST", path, [(b"transfer-encoding", b"gzip\xff")]
    ),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with castgate_serve(tmp_path_factory.mktemp("odd")) as served:
        yield served


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("odd", sorted(ODD_REQUESTS))
def test_odd_bytes_in_the_request_line_or_headers_get_a_4xx(
    server: Served, path: str, odd: str
) -> None:
    answer = exchange(server.port, ODD_REQUESTS[odd](path.encode()))
    assert answer.status is not None, f"hung up without an answer: {answer!r}"
    assert 400 <= answer.status < 500, answer.raw
    assert answer.closed


def test_odd_header_bytes_do_not_keep_a_valid_publish_from_being_admitted(server: Served) -> None:
    head, _, body = PUBLISH.partition(b"\r\n\r\n")
    odd = b"\r\nuser-agent: \xff\xfe\x80\r\nx-forwarded-for: \xff, ::1, not an address"
    answer = exchange(server.port, head + odd + b"\r\n\r\n" + body)
    assert answer.status == 200


def test_after_all_of_that_the_server_still_admits_a_publish_and_logged_no_exception(
    server: Served,
) -> None:
    # Runs last, on the server the tests above sent every odd request to.
    assert publish_is_admitted(server)
    assert exchange(server.port, request_head("GET", b"/healthz", [])).status == 200
    log = server.log_text()
    assert "Traceback" not in log
    assert "Exception in ASGI application" not in log
