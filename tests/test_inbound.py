"""Who may call the hooks: shared secret, source networks, trusted proxies, rate limits and
vendor signatures, through the real app with real plugins (testcam, signedcam)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from distributions import Site
from starlette.testclient import TestClient

from castgate.app import create_app
from castgate.gate import StartupError
from castgate.settings import (
    Settings,
    parse_hook_secret,
    parse_networks,
    parse_rate,
    parse_signing_keys,
)

BUILT_IN_VENDORS = frozenset({"nginx_rtmp", "livepeer", "antmedia", "kls", "nimble"})
SECRET = "s3cret-for-hooks-0123"
SIGNING_KEY = "ome-style-signing-key"
PLAY = {"action": "play", "stream": "cam1"}


@pytest.fixture
def policy_dir(tmp_path: Path, site: Site) -> Path:
    site.install_testcam()
    site.install_signedcam()
    directory = tmp_path / "policies"
    directory.mkdir()
    (directory / "main.policy").write_text("rule viewers { on play allow }\n")
    return directory


def client_for(policy_dir: Path, *, caller: str = "192.0.2.10", **changes: Any) -> TestClient:
    settings = Settings(
        policies=(policy_dir,), disabled_plugins=BUILT_IN_VENDORS, log_format="json", **changes
    )
    return TestClient(create_app(settings), client=(caller, 40000))


@pytest.fixture
def guarded(policy_dir: Path) -> Iterator[TestClient]:
    with client_for(policy_dir, hook_secret=parse_hook_secret(SECRET)) as client:
        yield client


def test_without_the_secret_a_hook_is_refused_with_401(guarded: TestClient) -> None:
    response = guarded.post("/hooks/testcam", json=PLAY)
    assert (response.status_code, response.text) == (401, "missing or wrong hook secret")


@pytest.mark.parametrize(
    "headers",
    [{"X-Castgate-Secret": SECRET}, {"Authorization": f"Bearer {SECRET}"}],
    ids=["x-castgate-secret", "bearer"],
)
def test_the_secret_in_a_header_admits_the_request(
    guarded: TestClient, headers: dict[str, str]
) -> None:
    response = guarded.post("/hooks/testcam", json=PLAY, headers=headers)
    assert response.status_code == 200
    assert response.json()["effect"] == "allow"


def test_the_secret_in_the_path_admits_the_request_to_the_same_hook(guarded: TestClient) -> None:
    response = guarded.post(f"/s/{SECRET}/hooks/testcam", json=PLAY)
    assert response.status_code == 200
    assert response.json()["effect"] == "allow"


@pytest.mark.parametrize("wrong", [SECRET[:-1], SECRET + "x", "", SECRET.upper()])
def test_a_wrong_secret_is_refused_wherever_it_is(guarded: TestClient, wrong: str) -> None:
    assert guarded.post(f"/s/{wrong}/hooks/testcam", json=PLAY).status_code == 401
    headers = {"X-Castgate-Secret": wrong}
    assert guarded.post("/hooks/testcam", json=PLAY, headers=headers).status_code == 401


def test_the_secret_prefix_leads_only_to_hooks(guarded: TestClient) -> None:
    assert guarded.get(f"/s/{SECRET}/healthz").status_code == 404


def test_health_and_metrics_need_no_secret(guarded: TestClient) -> None:
    assert guarded.get("/healthz").status_code == 200
    assert guarded.get("/readyz").status_code == 200
    assert guarded.get("/metrics").status_code == 200


def test_the_secret_never_reaches_the_log(
    guarded: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    guarded.post(f"/s/{SECRET}/hooks/testcam", json=PLAY)
    guarded.post(f"/s/{SECRET}x/hooks/testcam", json=PLAY)
    guarded.post("/hooks/testcam", json=PLAY, headers={"X-Castgate-Secret": SECRET[:-1]})
    text = "\n".join(
        record.getMessage() + json.dumps(getattr(record, "fields", {}))
        for record in caplog.records
        if record.name.startswith("castgate")  # the test's own HTTP client logs its URLs
    )
    assert "refused a hook request" in text
    assert SECRET[:-1] not in text


def test_refusals_are_counted_by_reason(guarded: TestClient) -> None:
    guarded.post("/hooks/testcam", json=PLAY)
    guarded.post("/hooks/testcam", json=PLAY)
    assert 'castgate_hook_refusals_total{reason="secret"} 2.0' in guarded.get("/metrics").text


def test_only_listed_networks_may_call(policy_dir: Path) -> None:
    networks = parse_networks("10.0.0.0/8, 2001:db8::/32")
    with client_for(policy_dir, caller="192.0.2.10", hook_networks=networks) as outside:
        response = outside.post("/hooks/testcam", json=PLAY)
        assert (response.status_code, response.text) == (403, "source address not allowed")
        assert outside.get("/healthz").status_code == 200
    for caller in ("10.9.8.7", "2001:db8::5", "::ffff:10.1.1.1"):
        with client_for(policy_dir, caller=caller, hook_networks=networks) as inside:
            assert inside.post("/hooks/testcam", json=PLAY).status_code == 200, caller


def test_a_trusted_proxy_names_the_caller_and_nobody_else_can(policy_dir: Path) -> None:
    settings: dict[str, Any] = {
        "hook_networks": parse_networks("10.0.0.0/8"),
        "trusted_proxies": parse_networks("192.0.2.1"),
    }
    forwarded = {"X-Forwarded-For": "203.0.113.9, 10.1.2.3"}
    with client_for(policy_dir, caller="192.0.2.1", **settings) as via_proxy:
        assert via_proxy.post("/hooks/testcam", json=PLAY, headers=forwarded).status_code == 200
        # The leftmost entry is the client's own claim; only the proxy's (rightmost) counts.
        spoofed = {"X-Forwarded-For": "10.1.2.3, 203.0.113.9"}
        assert via_proxy.post("/hooks/testcam", json=PLAY, headers=spoofed).status_code == 403
    with client_for(policy_dir, caller="192.0.2.77", **settings) as untrusted:
        assert untrusted.post("/hooks/testcam", json=PLAY, headers=forwarded).status_code == 403


def test_a_caller_over_its_rate_is_refused_with_429_and_others_are_not(policy_dir: Path) -> None:
    app_settings = Settings(
        policies=(policy_dir,),
        disabled_plugins=BUILT_IN_VENDORS,
        log_format="json",
        hook_rate=5.0,
    )
    app = create_app(app_settings)
    with TestClient(app, client=("192.0.2.10", 1)) as busy:
        statuses = [busy.post("/hooks/testcam", json=PLAY).status_code for _ in range(40)]
        # A second's worth (5) passes at once; the rest of a burst of 40 cannot all refill.
        assert statuses[:5] == [200] * 5
        assert statuses.count(429) >= 20
    with TestClient(app, client=("192.0.2.20", 1)) as quiet:
        assert quiet.post("/hooks/testcam", json=PLAY).status_code == 200


def signed(body: bytes, key: str = SIGNING_KEY) -> dict[str, str]:
    from castgate_signedcam import SIGNATURE  # installed by the policy_dir fixture

    signature: str = SIGNATURE.sign(key.encode(), body)
    return {"X-Signedcam-Signature": signature, "Content-Type": "application/json"}


@pytest.fixture
def signing(policy_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("SIGNEDCAM_KEY", SIGNING_KEY)
    keys = parse_signing_keys("signedcam=SIGNEDCAM_KEY")
    with client_for(policy_dir, signing_keys=keys) as client:
        yield client


def test_a_correctly_signed_request_is_decided(signing: TestClient) -> None:
    body = json.dumps(PLAY).encode()
    response = signing.post("/hooks/signedcam", content=body, headers=signed(body))
    assert response.status_code == 200
    assert response.json()["allowed"] is True


def test_the_signature_is_checked_over_the_exact_bytes(signing: TestClient) -> None:
    body = json.dumps(PLAY).encode()
    # The same JSON, serialised differently: a receiver that re-serialises would accept it.
    respaced = json.dumps(PLAY, indent=1).encode()
    response = signing.post("/hooks/signedcam", content=respaced, headers=signed(body))
    assert (response.status_code, response.text) == (
        403,
        "X-Signedcam-Signature does not match the body",
    )


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing X-Signedcam-Signature header"),
        ({"X-Signedcam-Signature": "not base64 !!"}, "X-Signedcam-Signature does not match"),
        ({"X-Signedcam-Signature": ""}, "X-Signedcam-Signature does not match"),
    ],
)
def test_a_missing_or_garbled_signature_is_refused(
    signing: TestClient, headers: dict[str, str], reason: str
) -> None:
    response = signing.post("/hooks/signedcam", content=json.dumps(PLAY).encode(), headers=headers)
    assert response.status_code == 403
    assert response.text.startswith(reason)


def test_a_signature_made_with_another_key_is_refused(signing: TestClient) -> None:
    body = json.dumps(PLAY).encode()
    response = signing.post("/hooks/signedcam", content=body, headers=signed(body, "other"))
    assert response.status_code == 403
    assert 'castgate_hook_refusals_total{reason="signature"} 1.0' in signing.get("/metrics").text


def test_padded_and_unpadded_base64url_signatures_are_both_accepted(signing: TestClient) -> None:
    body = json.dumps(PLAY).encode()
    headers = signed(body)
    unpadded = headers["X-Signedcam-Signature"]
    headers["X-Signedcam-Signature"] = unpadded + "=" * (-len(unpadded) % 4)
    assert signing.post("/hooks/signedcam", content=body, headers=headers).status_code == 200


def test_a_signing_key_for_an_unknown_or_unsigned_vendor_or_unset_variable_stops_startup(
    policy_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SIGNEDCAM_KEY", raising=False)
    keys = parse_signing_keys("nosuch=X,testcam=Y,signedcam=SIGNEDCAM_KEY")
    with pytest.raises(StartupError) as refused, client_for(policy_dir, signing_keys=keys):
        pass
    report = str(refused.value)
    assert "no vendor 'nosuch' is loaded" in report
    assert "vendor 'testcam' does not sign its requests" in report
    assert "SIGNEDCAM_KEY (key for signedcam) is not set" in report


@pytest.mark.parametrize(
    ("forwarded", "status"),
    [
        ("10.1.2.3:4711", 200),  # some balancers write the port
        ("[2001:db8::1]:443", 403),  # bracketed IPv6 with a port, outside 10/8
        ("203.0.113.9:4444", 403),
        ("unknown", 403),  # not an address: nobody, never the proxy itself
        ("", 403),
    ],
)
def test_an_unreadable_forwarded_hop_is_nobody_not_the_proxy(
    policy_dir: Path, forwarded: str, status: int
) -> None:
    settings: dict[str, Any] = {
        "hook_networks": parse_networks("10.0.0.0/8, 192.0.2.1"),
        "trusted_proxies": parse_networks("192.0.2.1"),
    }
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    with client_for(policy_dir, caller="192.0.2.1", **settings) as via_proxy:
        assert via_proxy.post("/hooks/testcam", json=PLAY, headers=headers).status_code == status


def test_a_rate_under_one_per_second_still_admits_its_first_request(policy_dir: Path) -> None:
    with client_for(policy_dir, hook_rate=parse_rate("30/m")) as client:
        statuses = [client.post("/hooks/testcam", json=PLAY).status_code for _ in range(3)]
    assert statuses == [200, 429, 429]


def test_under_a_root_path_the_hooks_are_still_guarded(policy_dir: Path) -> None:
    settings = Settings(
        policies=(policy_dir,),
        disabled_plugins=BUILT_IN_VENDORS,
        log_format="json",
        hook_secret=parse_hook_secret(SECRET),
    )
    with TestClient(create_app(settings), root_path="/castgate") as client:
        assert client.post("/castgate/hooks/testcam", json=PLAY).status_code == 401
        headers = {"X-Castgate-Secret": SECRET}
        answer = client.post("/castgate/hooks/testcam", json=PLAY, headers=headers)
        assert answer.status_code == 200
