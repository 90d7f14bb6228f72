"""Whatever reaches the Nimble endpoints, the answer is Nimble's deny or a 4xx, never a 5xx, and
never an allow for a body that does not name a stream (auth) or is not signed (PPV)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from castgate_nimble.auth import ALIASES

from .support import nimble_app, parse_sync, sign

POLICY = """
rule viewers { on play from nimble  allow }
rule banned { on update from nimble  deny "banned" if params.id == "bad" }
rule stay { on update from nimble  allow }
"""

_NAMING = set(ALIASES["app"]) | set(ALIASES["stream"]) | set(ALIASES["url"])


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    directory = tmp_path_factory.mktemp("policies")
    (directory / "fuzz.policy").write_text(POLICY)
    with nimble_app(directory) as started:
        yield started


_TEXT = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "",
            " ",
            "nil",
            "/live/cam1",
            "/live/cam1/playlist.m3u8?k=v",
            "http://e/a/b?x=1",
            "..",
            "/a/../b",
            "10.0.0.1",
            "[::1]:80",
            "\ud800",
            "bad",
            "1",
        ]
    ),
)
_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), _TEXT)
_JSON = st.recursive(
    _SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
_AUTH_KEYS = st.sampled_from(
    [
        "ip",
        "clientIp",
        "client_ip",
        "IP",
        "url",
        "URL",
        "uri",
        "app",
        "application",
        "stream",
        "streamName",
        "id",
        "sessionId",
        "protocol",
        "headers",
        "client_port",
        "x",
    ]
)
_AUTH_BODY = st.dictionaries(_AUTH_KEYS, st.one_of(_TEXT, _JSON), max_size=6)

_TREE_KEYS = st.sampled_from(
    [
        "VHost",
        "Application",
        "Instance",
        "Stream",
        "Player",
        "name",
        "id",
        "ip",
        "delta",
        "sessionid",
        "Publish",
        "Unpublish",
        "AppName",
        "StreamName",
    ]
)
_TREE = st.recursive(
    _SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(_TREE_KEYS, inner, max_size=4)
    ),
    max_leaves=20,
)


_NAME = st.one_of(
    st.sampled_from(["_defaultVHost_", "live", "cam1", "", "nil"]), st.text(max_size=6)
)
_PLAYER = st.fixed_dictionaries(
    {"id": st.one_of(st.sampled_from(["bad", "1", "2", "", "nil"]), st.integers(0, 3))},
    optional={"ip": _NAME, "delta": st.integers(), "sessionid": _NAME},
)


def _level(key: str, children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """One level of a well-formed PPV tree: a list of named nodes holding ``children``."""
    node = st.fixed_dictionaries({"name": _NAME, key: children})
    return st.one_of(st.lists(node, max_size=3), node)


_PPV_INFO = st.fixed_dictionaries(
    {
        "VHost": _level(
            "Application",
            _level("Instance", _level("Stream", _level("Player", st.lists(_PLAYER, max_size=4)))),
        )
    }
)


def _encoded(value: Any) -> bytes:
    return json.dumps(value).encode("utf-8", errors="surrogatepass")


@st.composite
def _sync_bodies(draw: st.DrawFn) -> tuple[bytes, bool]:
    """A sync body and whether it carries a valid signature."""
    sync_id, puzzle = draw(st.text(min_size=1, max_size=6)), draw(st.text(min_size=1, max_size=6))
    signed = draw(st.booleans())
    signature = sign(sync_id, puzzle) if signed else draw(st.text(max_size=24))
    body: dict[str, Any] = {"ID": sync_id, "Puzzle": puzzle, "Signature": signature}
    body.update(draw(st.dictionaries(st.sampled_from(["PayPerViewInfo", "Publish"]), _TREE)))
    if draw(st.booleans()):
        body["PayPerViewInfo"] = draw(_PPV_INFO)
    if draw(st.booleans()):
        body = {"ApiSyncRequest": body}
    return _encoded(body), signed


def _names_a_stream(body: bytes) -> bool:
    data = json.loads(body)
    return isinstance(data, dict) and any(
        key.lower().replace("_", "").replace("-", "") in _NAMING
        and isinstance(value, str)
        and value.strip() not in ("", "nil", "/")
        for key, value in data.items()
    )


_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_SETTINGS
@given(
    body=st.one_of(st.binary(max_size=200), _JSON.map(_encoded), _AUTH_BODY.map(_encoded)),
    path=st.sampled_from(["/hooks/nimble", "/hooks/nimble/auth"]),
)
def test_auth_endpoint(client: TestClient, body: bytes, path: str) -> None:
    response = client.post(path, content=body, follow_redirects=False)
    assert response.status_code in (200, 403)
    assert response.content == f'{{"status":{response.status_code}}}'.encode()
    if response.status_code == 200:
        assert _names_a_stream(body)


@_SETTINGS
@given(
    case=st.one_of(
        _sync_bodies(),
        st.binary(max_size=200).map(lambda b: (b, False)),
        _JSON.map(lambda v: (_encoded(v), False)),
    )
)
def test_ppv_endpoint(client: TestClient, case: tuple[bytes, bool]) -> None:
    body, signed = case
    response = client.post("/hooks/nimble/ppv", content=body)
    assert response.status_code in (200, 400, 403)
    answer = json.loads(response.content)
    assert set(answer) == {"DenyList"} and set(answer["DenyList"]) == {"ID"}
    denied = answer["DenyList"]["ID"]
    if response.status_code == 200:
        assert signed
        players = [e for e in parse_sync(body).events if e.action == "update"]
        assert denied == (["bad"] if any(e.params.get("id") == "bad" for e in players) else [])
    else:
        assert denied == []
    if response.status_code == 403:
        assert not signed


def test_the_fuzz_policy_lets_a_good_request_through(client: TestClient) -> None:
    # The properties above would pass vacuously if nothing were ever allowed.
    ok = client.post("/hooks/nimble", json={"url": "/live/cam1"})
    assert ok.status_code == 200
    sync = {"ID": "i", "Puzzle": "p", "Signature": sign("i", "p"), "PayPerViewInfo": {}}
    assert client.post("/hooks/nimble/ppv", json=sync).status_code == 200
