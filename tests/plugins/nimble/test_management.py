"""The management API client against a fake Nimble on loopback that checks salt and hash the way
Nimble's reference describes them, lists sessions and records what it is asked to drop."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import pytest
from served import served
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from castgate_nimble.management import ManagementError, NimbleManagement, Session, sessions_from

TOKEN = "nimble-management-token"

SESSIONS = [
    {"id": 101, "app": "live", "stream": "cam1", "ip": "203.0.113.5", "protocol": "HLS", "bw": 5},
    {"id": "s-102", "app": "live", "stream": "cam1", "ip": "198.51.100.7", "protocol": "SLDP"},
    {"app": "live", "stream": "cam2", "ip": "192.0.2.1"},  # no id: cannot be dropped
]


@dataclass
class FakeNimble:
    """What the fake server saw, and what it answers."""

    token: str | None = TOKEN
    sessions: Any = field(default_factory=lambda: SESSIONS)
    deleted: list[Any] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)
    salts: list[str] = field(default_factory=list)
    queries: list[bytes] = field(default_factory=list)
    status: int = 200
    delay: float = 0.0

    def refusal(self, request: Request) -> Response | None:
        query: bytes = request.scope["query_string"]
        self.queries.append(query)
        if self.token is None:
            return None
        pairs = dict(part.partition(b"=")[::2] for part in query.split(b"&"))
        salt, raw_hash = pairs.get(b"salt", b""), pairs.get(b"hash", b"")
        if b"+" in raw_hash:
            # A raw "+" reads as a space in a query string: Nimble would compare the wrong hash.
            return PlainTextResponse("hash not percent-encoded", 403)
        if not salt.isdigit():
            return PlainTextResponse("no salt", 403)
        expected = base64.b64encode(
            hashlib.md5(salt + b"/" + self.token.encode()).digest()
        ).decode()
        received = unquote(raw_hash.decode("ascii"))
        if received != expected:
            return PlainTextResponse("wrong hash", 403)
        self.salts.append(salt.decode())
        self.hashes.append(received)
        return None

    def app(self) -> Starlette:
        async def sessions(request: Request) -> Response:
            refused = self.refusal(request)
            if refused is not None:
                return refused
            await asyncio.sleep(self.delay)
            if self.status != 200:
                return PlainTextResponse("internal trouble", self.status)
            if isinstance(self.sessions, bytes):
                return Response(self.sessions, media_type="application/json")
            return JSONResponse(self.sessions)

        async def delete(request: Request) -> Response:
            refused = self.refusal(request)
            if refused is not None:
                return refused
            self.deleted.append(json.loads(await request.body()))
            return JSONResponse({"status": "Ok"})

        return Starlette(
            routes=[
                Route("/manage/sessions", sessions, methods=["GET"]),
                Route("/manage/sessions/delete", delete, methods=["POST"]),
            ]
        )


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[FakeNimble, str]]:
    fake = FakeNimble()
    with served(fake.app()) as base:
        yield fake, base


@pytest.fixture
def nimble(server: tuple[FakeNimble, str]) -> tuple[FakeNimble, str]:
    """The module's fake Nimble, as good as new."""
    fake, base = server
    fresh = FakeNimble()
    for name in fresh.__dataclass_fields__:
        setattr(fake, name, getattr(fresh, name))
    return fake, base


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


async def _list(base: str, token: str | None = TOKEN, **options: Any) -> list[Session]:
    async with NimbleManagement(base, token, **options) as api:
        return await api.list_sessions()


async def _delete(base: str, ids: Any, token: str | None = TOKEN) -> None:
    async with NimbleManagement(base, token) as api:
        await api.delete_sessions(ids)


def test_list_sessions(nimble: tuple[FakeNimble, str]) -> None:
    fake, base = nimble
    sessions = run(_list(base))
    assert [(s.id, s.app, s.stream, s.ip, s.protocol) for s in sessions] == [
        ("101", "live", "cam1", "203.0.113.5", "HLS"),
        ("s-102", "live", "cam1", "198.51.100.7", "SLDP"),
    ]
    assert sessions[0].raw == SESSIONS[0]
    assert len(fake.hashes) == 1


def test_each_call_has_its_own_salt(nimble: tuple[FakeNimble, str]) -> None:
    fake, base = nimble

    async def many() -> None:
        async with NimbleManagement(base, TOKEN) as api:
            for _ in range(5):
                await api.list_sessions()

    run(many())
    assert len(set(fake.salts)) == 5


def test_a_hash_with_a_plus_is_percent_encoded_and_accepted(nimble: tuple[FakeNimble, str]) -> None:
    fake, base = nimble

    async def until_plus() -> None:
        async with NimbleManagement(base, TOKEN) as api:
            # About one hash in three holds a "+"; stop at the first the server accepted.
            for _ in range(200):
                await api.list_sessions()
                if "+" in fake.hashes[-1]:
                    return

    run(until_plus())
    assert "+" in fake.hashes[-1]
    assert b"%2B" in fake.queries[-1]


def test_the_fake_nimble_refuses_an_unencoded_plus(nimble: tuple[FakeNimble, str]) -> None:
    fake, base = nimble
    salt = next(s for s in range(10_000) if "+" in _hash(s))
    raw, encoded = _hash(salt), _hash(salt).replace("+", "%2B")
    assert _status_of(base, f"/manage/sessions?salt={salt}&hash={raw}") == 403
    assert _status_of(base, f"/manage/sessions?salt={salt}&hash={encoded}") == 200
    assert fake.hashes == [raw]


def _status_of(base: str, target: str) -> int:
    host, port = base.removeprefix("http://").split(":")
    request = f"GET {target} HTTP/1.1\r\nHost: n\r\nConnection: close\r\n\r\n"
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(request.encode())
        status_line = connection.recv(4096).split(b"\r\n", 1)[0]
    return int(status_line.split()[1])


def _hash(salt: int) -> str:
    return base64.b64encode(hashlib.md5(f"{salt}/{TOKEN}".encode()).digest()).decode()


def test_auth_query() -> None:
    api = NimbleManagement("http://127.0.0.1:8082", TOKEN)
    salt = next(s for s in range(10_000) if "+" in _hash(s) and "/" in _hash(s))
    query = api.auth_query(salt)
    encoded = _hash(salt).replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    assert query == f"salt={salt}&hash={encoded}"
    assert NimbleManagement("http://127.0.0.1:8082").auth_query(5) == ""
    run(api.aclose())


def test_a_wrong_token_is_a_clear_error_that_does_not_show_the_token(
    nimble: tuple[FakeNimble, str],
) -> None:
    _, base = nimble
    with pytest.raises(ManagementError) as caught:
        run(_list(base, token="not-the-token"))
    message = str(caught.value)
    assert message == (f"GET /manage/sessions on {base}: refused (403); check management_token")
    assert "not-the-token" not in message


def test_without_a_token_no_query_is_sent(nimble: tuple[FakeNimble, str]) -> None:
    fake, base = nimble
    fake.token = None
    assert len(run(_list(base, token=None))) == 2
    assert fake.queries == [b""]


def test_delete_sessions_sends_the_ids_as_a_json_array(nimble: tuple[FakeNimble, str]) -> None:
    fake, base = nimble
    run(_delete(base, ["s-102", 7]))
    assert fake.deleted == [["s-102", 7]]


def test_listed_sessions_are_deleted_with_the_id_nimble_listed(
    nimble: tuple[FakeNimble, str],
) -> None:
    fake, base = nimble

    async def kick_cam1() -> None:
        async with NimbleManagement(base, TOKEN) as api:
            sessions = await api.list_sessions()
            await api.delete_sessions(s for s in sessions if s.stream == "cam1")

    run(kick_cam1())
    assert fake.deleted == [[101, "s-102"]]


def test_deleting_nothing_calls_nothing(nimble: tuple[FakeNimble, str]) -> None:
    fake, base = nimble
    run(_delete(base, []))
    assert (fake.deleted, fake.queries) == ([], [])


def test_an_error_status_is_reported(nimble: tuple[FakeNimble, str]) -> None:
    fake, base = nimble
    fake.status = 500
    with pytest.raises(ManagementError, match=r"GET /manage/sessions on .*: HTTP 500 'internal"):
        run(_list(base))


def test_an_answer_that_is_not_json_is_reported(nimble: tuple[FakeNimble, str]) -> None:
    fake, base = nimble
    fake.sessions = b"<html>"
    with pytest.raises(ManagementError, match="the answer is not JSON"):
        run(_list(base))


@pytest.mark.parametrize("answer", [{"status": "error"}, "Ok", 5])
def test_an_answer_without_a_session_list_is_reported(
    nimble: tuple[FakeNimble, str], answer: Any
) -> None:
    fake, base = nimble
    fake.sessions = answer
    with pytest.raises(ManagementError, match="no session list in the answer"):
        run(_list(base))


def test_an_empty_list_is_no_sessions(nimble: tuple[FakeNimble, str]) -> None:
    fake, base = nimble
    for answer in ([], {"sessions": []}):
        fake.sessions = answer
        assert run(_list(base)) == []


def test_a_slow_nimble_times_out(nimble: tuple[FakeNimble, str]) -> None:
    fake, base = nimble
    fake.delay = 0.5
    with pytest.raises(ManagementError, match="no answer in time"):
        run(_list(base, timeout=0.1))


def test_an_unreachable_nimble_is_reported() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there now
    with pytest.raises(ManagementError, match="ConnectError"):
        run(_list(f"http://127.0.0.1:{port}"))


@pytest.mark.parametrize(
    "url", ["127.0.0.1:8082", "ftp://127.0.0.1", "http://", "http://h:1/x?salt=1"]
)
def test_a_bad_base_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="management URL"):
        NimbleManagement(url)


@pytest.mark.parametrize(
    "data",
    [
        SESSIONS,
        {"sessions": SESSIONS},
        {"SessionList": SESSIONS},
        {"status": "Ok", "Sessions": SESSIONS},
    ],
)
def test_list_shapes(data: Any) -> None:
    assert [s.id for s in sessions_from(data)] == ["101", "s-102"]


def test_field_spellings() -> None:
    [session] = sessions_from(
        [{"SessionID": "x", "Application": "a", "stream_name": "s", "client_ip": "i", "Proto": "p"}]
    )
    assert (session.id, session.app, session.stream, session.ip, session.protocol) == (
        "x",
        "a",
        "s",
        "i",
        "p",
    )


def test_sessions_grouped_per_stream_inherit_app_and_stream() -> None:
    data = [
        {"app": "live", "stream": "cam1", "sessions": [{"id": 1, "ip": "i1"}, {"id": 2}]},
        {"app": "live", "stream": "cam2", "clients": [{"id": "3", "stream": "own"}]},
    ]
    sessions = sessions_from(data)
    assert [(s.id, s.app, s.stream) for s in sessions] == [
        ("1", "live", "cam1"),
        ("2", "live", "cam1"),
        ("3", "live", "own"),
    ]
    assert sessions[0].raw == {"app": "live", "stream": "cam1", "id": 1, "ip": "i1"}
    assert sessions[0].wire_id == 1


@pytest.mark.parametrize("data", [None, "text", 5, {}, {"x": 1}, [1, "a", None], [{"ip": "i"}]])
def test_nothing_usable_is_no_sessions(data: Any) -> None:
    assert sessions_from(data) == []
