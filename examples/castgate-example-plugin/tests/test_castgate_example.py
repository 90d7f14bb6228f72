"""How to test a castgate plugin: the pieces alone, then through castgate itself.

The tests below the first two need the plugin installed (``pip install -e .``), because castgate
finds plugins through their entry points, exactly as it will in production.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from castgate_example.countries import country
from starlette.testclient import TestClient

from castgate.app import create_app
from castgate.plugins import load_plugins
from castgate.settings import Settings

POLICY = """
rule home_viewers {
  on play from example
  allow if example.country(client.ip) == "DE"
}
rule relay {
  on publish from example
  allow with { redirect: "rtmp://192.0.2.1/live/" + stream.name } if params.key == "k1"
}
"""


def test_country_knows_the_documentation_ranges() -> None:
    assert country("192.0.2.10") == "DE"
    assert country("2001:db8::1") == "FR"


@pytest.mark.parametrize("ip", ["10.0.0.1", "not an address", ""])
def test_country_of_an_unknown_address_is_missing(ip: str) -> None:
    assert country(ip) is None


def test_castgate_finds_the_plugin_through_its_entry_point() -> None:
    registry = load_plugins()
    assert registry.vendors["example"].name == "example"
    assert registry.functions["example.country"].returns == "string"
    assert registry.provider_of("example").distribution == "castgate-example-plugin"


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    (tmp_path / "example.policy").write_text(POLICY)
    return TestClient(create_app(Settings(policies=(tmp_path,), log_format="text")))


def test_a_viewer_from_de_is_allowed(client: TestClient) -> None:
    with client:
        response = client.post("/hooks/example", json={"action": "play", "ip": "192.0.2.7"})
    assert response.status_code == 200
    assert response.json() == {"allowed": True, "reason": "allowed by rule home_viewers"}


def test_a_viewer_from_elsewhere_is_denied(client: TestClient) -> None:
    with client:
        response = client.post("/hooks/example", json={"action": "play", "ip": "203.0.113.7"})
    assert response.status_code == 403
    assert response.json()["allowed"] is False


def test_response_data_is_rendered(client: TestClient) -> None:
    body = {"action": "publish", "stream": "cam1", "params": {"key": "k1"}}
    with client:
        response = client.post("/hooks/example", json=body)
    assert response.json()["redirect"] == "rtmp://192.0.2.1/live/cam1"


def test_a_malformed_request_is_a_400_with_the_reason(client: TestClient) -> None:
    with client:
        response = client.post("/hooks/example", json={"action": "dance"})
    assert response.status_code == 400
    assert response.json()["reason"].startswith("action must be one of")
