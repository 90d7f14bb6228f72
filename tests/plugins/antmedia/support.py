"""Requests built from an ASGI scope, the request fixtures, and a real app with a real policy."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from requests_asgi import asgi_request
from starlette.requests import Request
from starlette.testclient import TestClient

from castgate import Event
from castgate.app import create_app
from castgate.settings import Settings
from castgate_antmedia import AntMedia

FIXTURES = Path(__file__).parents[2] / "fixtures" / "antmedia"
JSON_TYPE = "application/json; charset=UTF-8"
FORM_TYPE = "application/x-www-form-urlencoded"
AUTH_TYPE = "application/json"
PEER = ("10.1.2.3", 40000)

#: The other built-in vendors, left out so that these tests exercise antmedia alone.
OTHER_VENDORS = frozenset({"nginx_rtmp", "livepeer", "kls", "nimble"})


@dataclass(frozen=True, slots=True)
class Fixture:
    """One request of tests/fixtures/antmedia and what it must become (see the README there)."""

    name: str
    body: bytes
    route: str
    content_type: str
    event: dict[str, Any]
    answer: dict[str, Any]


def fixtures() -> list[Fixture]:
    found = []
    for expected in sorted(FIXTURES.rglob("*.expected.json")):
        name = str(expected.relative_to(FIXTURES)).removesuffix(".expected.json")
        spec = json.loads(expected.read_text())
        found.append(
            Fixture(
                name=name,
                body=(FIXTURES / f"{name}.body").read_bytes(),
                route=spec["route"],
                content_type=spec["content_type"],
                event=spec["event"],
                answer=spec["answer"],
            )
        )
    return found


def fixture(name: str) -> Fixture:
    return next(each for each in fixtures() if each.name == name)


def make_request(
    body: bytes = b"",
    *,
    target: str = "/hooks/antmedia",
    content_type: str | None = JSON_TYPE,
    client: tuple[str, int] | None = PEER,
    content_length: str | None = None,
) -> Request:
    """A request as Ant Media Server's HTTP client sends it."""
    return asgi_request(
        body,
        target=target,
        headers=[(b"host", b"castgate:8070")],
        content_type=content_type,
        content_length=content_length,
        client=client,
    )


def parse(body: bytes, route: str = "", **options: Any) -> Event:
    """``AntMedia().parse`` on a request built by :func:`make_request`."""
    return asyncio.run(AntMedia().parse(make_request(body, **options), route))


def parse_fixture(item: Fixture) -> Event:
    return parse(item.body, item.route, content_type=item.content_type)


def as_expected(event: Event, expected: Mapping[str, Any]) -> dict[str, Any]:
    """``event.to_dict()``, with the arrival time blanked where the fixture expects one."""
    data = event.to_dict()
    if expected["time"] is None:
        data["time"] = None
    return data


@contextmanager
def gate(policy_dir: Path) -> Iterator[TestClient]:
    """The real castgate app deciding with the policies in ``policy_dir``."""
    settings = Settings(policies=(policy_dir,), disabled_plugins=OTHER_VENDORS, log_format="json")
    with TestClient(create_app(settings)) as client:
        yield client
