"""Every hook endpoint of every loaded vendor, fuzzed through castgate's real ASGI app.

Whatever a client sends (bytes, broken UTF-8, lone surrogates, JSON nested past any parser,
numbers past any float, repeated keys, forms of random keys, real requests with a field
dropped, retyped, repeated or cut short, under any method and Content-Type) the answer is a 2xx
or a 4xx, never a 5xx or a redirect, nothing raises, and no plugin fails in a way the app has to
catch and log. Under a policy that allows everything, a request that lacks what its vendor
requires (:mod:`hardening.vendor_requests`) is never admitted: garbage cannot pass for a
request just because the policy would have said yes.

Endpoints come from the plugins that load, so a new vendor is fuzzed as soon as it is installed;
its requirements and seed requests belong in ``vendor_requests.py``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from castgate.app import create_app
from castgate.plugins import load_plugins
from castgate.settings import Settings
from hardening.strategies import hook_requests, vocabulary
from hardening.vendor_requests import (
    NIMBLE_TOKEN,
    REQUIREMENTS,
    HookRequest,
    admits,
    hook_path,
    meets_requirements,
    seeds,
)

#: Allows everything, so only the vendor's own checks stand between a request and an admitting
#: answer; on the way it reads every field a policy can, so the engine meets each fuzzed value.
PERMISSIVE_POLICY = """
rule reads_every_field {
  deny "never" if stream.name == "castgate-never"
      or app matches "^castgate-never$"
      or stream.name startswith "castgate-never"
      or app contains "castgate-never"
      or params.key == "castgate-never"
      or params["x-y"] in ["castgate-never"]
      or len(params) < 0
      or len(raw) < 0
      or raw.body.url == "castgate-never"
      or client.port < 0
      or client.ip in [192.0.2.255/32]
      or session.id == "castgate-never"
      or node == "castgate-never"
      or role == "castgate-never"
}

rule everything {
  allow
}
"""

ENDPOINTS = sorted(
    (vendor.name, route) for vendor in load_plugins().vendors.values() for route in vendor.routes
)

_FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class _Errors(logging.Handler):
    """Errors castgate logs: a plugin or the policy failed and the app had to catch it."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def errors() -> Iterator[_Errors]:
    handler = _Errors()
    logger = logging.getLogger("castgate")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def _client(policies: tuple[Path, ...] | None) -> TestClient:
    settings = Settings() if policies is None else Settings(policies=policies)
    return TestClient(
        create_app(settings),
        follow_redirects=False,
        # A streaming server on this host: local networks are what the default policy trusts.
        client=("127.0.0.1", 40000),
    )


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, TestClient]]:
    """The app under the permissive policy and under the shipped default policy."""
    directory = tmp_path_factory.mktemp("permissive")
    (directory / "everything.policy").write_text(PERMISSIVE_POLICY)
    with pytest.MonkeyPatch.context() as env:
        # Nimble reads its push-API token when the plugin loads, in each app's startup.
        env.setenv("CASTGATE_NIMBLE_TOKEN", NIMBLE_TOKEN)
        env.delenv("CASTGATE_NIMBLE_API", raising=False)
        with _client((directory,)) as permissive, _client(None) as default:
            yield {"permissive": permissive, "default": default}


def send(client: TestClient, request: HookRequest) -> httpx.Response:
    headers = {} if request.content_type is None else {"content-type": request.content_type}
    return client.request(request.method, request.target, content=request.body, headers=headers)


@functools.cache
def requests_to(vendor: str, route: str) -> st.SearchStrategy[HookRequest]:
    known = seeds(vendor, route)
    return hook_requests(hook_path(vendor, route), known, vocabulary(known))


def check_answer(
    vendor: str, route: str, request: HookRequest, response: httpx.Response, errors: _Errors
) -> None:
    status = response.status_code
    assert 200 <= status < 300 or 400 <= status < 500, f"{status} for {request!r}"
    assert not errors.records, [record.getMessage() for record in errors.records]
    if admits(vendor, status) and vendor in REQUIREMENTS:
        assert meets_requirements(vendor, route, request), f"admitted {request!r}"


def _endpoint_id(endpoint: tuple[str, str]) -> str:
    vendor, route = endpoint
    return f"{vendor}/{route}" if route else vendor


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=_endpoint_id)
@settings(_FUZZ, max_examples=120)
@given(data=st.data())
def test_under_a_policy_that_allows_everything_garbage_is_never_admitted(
    apps: dict[str, TestClient], errors: _Errors, endpoint: tuple[str, str], data: st.DataObject
) -> None:
    vendor, route = endpoint
    request = data.draw(requests_to(vendor, route), label="request")
    errors.records.clear()
    check_answer(vendor, route, request, send(apps["permissive"], request), errors)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=_endpoint_id)
@settings(_FUZZ, max_examples=40)
@given(data=st.data())
def test_under_the_shipped_policy_hostile_requests_get_a_vendor_answer(
    apps: dict[str, TestClient], errors: _Errors, endpoint: tuple[str, str], data: st.DataObject
) -> None:
    vendor, route = endpoint
    request = data.draw(requests_to(vendor, route), label="request")
    errors.records.clear()
    check_answer(vendor, route, request, send(apps["default"], request), errors)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=_endpoint_id)
def test_every_endpoint_has_requirements_and_real_requests_to_mutate(
    endpoint: tuple[str, str],
) -> None:
    vendor, route = endpoint
    assert vendor in REQUIREMENTS, f"add what {vendor} requires to hardening/vendor_requests.py"
    assert seeds(vendor, route), f"add {vendor}'s fixture requests to hardening/vendor_requests.py"


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=_endpoint_id)
def test_the_permissive_policy_admits_real_requests_and_only_those_meeting_requirements(
    apps: dict[str, TestClient], endpoint: tuple[str, str]
) -> None:
    # Without this, "never admitted" above could hold because nothing is ever admitted.
    vendor, route = endpoint
    admitted = [
        request
        for request in seeds(vendor, route)
        if admits(vendor, send(apps["permissive"], request).status_code)
    ]
    assert admitted
    assert all(meets_requirements(vendor, route, request) for request in admitted)
