"""Vendors and functions for the language's own tests: small, real implementations of the public
interfaces, so the language is tested without depending on any vendor plugin."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import pytest
from starlette.requests import Request
from starlette.responses import Response

from castgate import (
    ACTIONS,
    Decision,
    Event,
    MalformedRequest,
    PolicyFunction,
    ResponseField,
    Vendor,
)


class TestVendor(Vendor):
    """Speaks every core action and renders a few kinds of response data."""

    __test__ = False
    name = "testvendor"
    actions = ACTIONS
    response_fields: ClassVar[Mapping[str, ResponseField]] = {
        "rename": ResponseField("string", "a new stream name"),
        "tags": ResponseField("list"),
        "meta": ResponseField("object"),
        "limit": ResponseField("number"),
    }

    async def parse(self, request: Request, route: str) -> Event:
        raise MalformedRequest("testvendor does not serve requests")

    def render(self, decision: Decision, event: Event) -> Response:
        return Response(status_code=200 if decision.allowed else 403)

    def render_malformed(self, error: MalformedRequest, route: str) -> Response:
        return Response(error.reason, status_code=400)

    def validate_response(self, data: Mapping[str, Any]) -> list[str]:
        limit = data.get("limit")
        if isinstance(limit, int) and limit < 0:
            return ["limit must not be negative"]
        return []


class OtherVendor(TestVendor):
    __test__ = False
    name = "othervendor"
    actions = frozenset({"publish", "play"})
    response_fields: ClassVar[Mapping[str, ResponseField]] = {}


def _fail(value: object) -> object:
    raise RuntimeError("upstream unavailable")


VENDORS: dict[str, Vendor] = {"testvendor": TestVendor(), "othervendor": OtherVendor()}
FUNCTIONS = {
    "test.fail": PolicyFunction("test.fail", ("string",), "bool", _fail, "always raises"),
    "test.country": PolicyFunction(
        "test.country", ("ip",), "string", lambda ip: "DE" if ip.startswith("10.") else "US"
    ),
}


@pytest.fixture
def vendors() -> dict[str, Vendor]:
    return VENDORS


@pytest.fixture
def functions() -> dict[str, PolicyFunction]:
    return FUNCTIONS
