"""Hostile input with the sessions shared in a real Redis (``--state redis://``): whatever name a
vendor plugin accepts must be storable there, or refused before; never a server error."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest
from redis_server import RedisServer
from starlette.testclient import TestClient

from castgate.app import create_app
from castgate.settings import Settings

pytestmark = pytest.mark.redis

#: Ant Media requests naming their stream with a JSON escape of a lone surrogate, which the Ant
#: Media plugin accepts (it reads JSON with lone surrogates allowed), with what must answer them:
#: admitted and recorded, like any other name (not refused as if Redis were down).
LONE_SURROGATE_NAMES = {
    "event hook": (
        "/hooks/antmedia",
        b'{"action":"liveStreamStarted","id":"\\ud800","app":"live"}',
        (200,),
    ),
    "publish authentication": (
        "/hooks/antmedia/publish",
        b'{"appName":"LiveApp","streamId":"\\ud800","mode":"live"}',
        (200,),
    ),
    "play authentication": (
        "/hooks/antmedia/play",
        b'{"appName":"LiveApp","streamId":"\\ud800","mode":"play"}',
        (200,),
    ),
}


@pytest.fixture(scope="module")
def shared_state_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    policies = tmp_path_factory.mktemp("policies")
    # Admits everything, so every request that is read goes on to be recorded in Redis.
    (policies / "everything.policy").write_text("rule everything {\n  allow\n}\n")
    redis = RedisServer(tmp_path_factory.mktemp("redis"))
    redis.start()
    try:
        app = create_app(Settings(policies=(policies,), state=redis.url))
        # A 500 is what is under test here, so it must come back as an answer, not raise.
        with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as client:
            yield client
    finally:
        redis.stop()


def post_json(client: TestClient, path: str, body: bytes) -> httpx.Response:
    return client.post(path, content=body, headers={"content-type": "application/json"})


@pytest.mark.parametrize("case", sorted(LONE_SURROGATE_NAMES))
def test_the_same_requests_naming_a_plain_stream_are_admitted(
    shared_state_app: TestClient, case: str
) -> None:
    path, body, _ = LONE_SURROGATE_NAMES[case]
    plain = body.replace(b"\\ud800", b"cam1")
    assert post_json(shared_state_app, path, plain).status_code == 200


@pytest.mark.parametrize("case", sorted(LONE_SURROGATE_NAMES))
def test_a_stream_named_with_a_lone_surrogate_is_answered_without_a_server_error(
    shared_state_app: TestClient, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    path, body, answers = LONE_SURROGATE_NAMES[case]
    assert post_json(shared_state_app, path, body).status_code in answers
    # And recorded: before the fix the record script's cjson refused the name's \u escape, the
    # decision stood and "session state unavailable ... not recorded" was logged.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
