"""Requests, fixtures and a served castgate app for the Nimble plugin's tests."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from requests_asgi import asgi_request
from starlette.requests import Request
from starlette.testclient import TestClient

from castgate import Batch, Event
from castgate.app import create_app
from castgate.settings import Settings
from castgate_nimble import Nimble

FIXTURES = Path(__file__).parents[2] / "fixtures" / "nimble"

#: The push-API token the signed fixtures in ``ppv/`` were signed with.
TOKEN = "castgate-test-push-token"

#: The other built-in vendors are left out, so these tests load only what they test.
OTHER_VENDORS = frozenset({"nginx_rtmp", "livepeer", "antmedia", "kls"})


def fixture(relative: str) -> bytes:
    return (FIXTURES / relative).read_bytes()


def fixture_json(relative: str) -> Any:
    return json.loads(fixture(relative))


def sign(sync_id: str, puzzle: str, token: str = TOKEN) -> str:
    """A push-API signature computed here independently of the plugin."""
    return base64.b64encode(hashlib.md5((sync_id + puzzle + token).encode()).digest()).decode()


def make_request(
    body: bytes,
    *,
    target: str = "/hooks/nimble",
    client: tuple[str, int] | None = ("10.9.8.7", 40000),
) -> Request:
    """A request as Nimble's handler calls send it: JSON with a length."""
    return asgi_request(
        body,
        target=target,
        headers=[(b"host", b"127.0.0.1")],
        content_type="application/json",
        client=client,
    )


def parse(
    body: bytes, route: str = "", *, token: str | None = TOKEN, **options: Any
) -> Event | Batch:
    return asyncio.run(Nimble(token).parse(make_request(body, **options), route))


def parse_auth(body: bytes, **options: Any) -> Event:
    event = parse(body, "", **options)
    assert isinstance(event, Event)
    return event


def parse_sync(body: bytes, *, token: str | None = TOKEN, **options: Any) -> Batch:
    batch = parse(body, "ppv", token=token, **options)
    assert isinstance(batch, Batch)
    return batch


def comparable(event: Event) -> dict[str, Any]:
    """The event as JSON data without its arrival time, as the expected fixtures hold it."""
    data = event.to_dict()
    del data["time"]
    return data


@contextmanager
def nimble_app(
    policy_dir: Path, *, token: str | None = TOKEN, explain: bool = False
) -> Iterator[TestClient]:
    """castgate's real app with the real plugins (Nimble only) and the policies in ``policy_dir``;
    the push-API token comes from the environment, as in production."""
    import os

    previous = os.environ.get("CASTGATE_NIMBLE_TOKEN")
    if token is None:
        os.environ.pop("CASTGATE_NIMBLE_TOKEN", None)
    else:
        os.environ["CASTGATE_NIMBLE_TOKEN"] = token
    try:
        settings = Settings(
            policies=(policy_dir,),
            disabled_plugins=OTHER_VENDORS,
            log_format="json",
            explain=explain,
        )
        with TestClient(create_app(settings)) as client:
            yield client
    finally:
        if previous is None:
            os.environ.pop("CASTGATE_NIMBLE_TOKEN", None)
        else:
            os.environ["CASTGATE_NIMBLE_TOKEN"] = previous
