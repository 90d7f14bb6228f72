"""The Nimble enforcer ends sessions through the (fake) management API."""

from __future__ import annotations

import pytest

from castgate import LiveSession
from castgate_nimble.enforcer import NimbleEnforcer
from castgate_nimble.management import ManagementError

from .test_management import TOKEN, FakeNimble, nimble, run, server

__all__ = ["nimble", "server"]  # the fixtures this module borrows


def live(session: str, ip: str = "203.0.113.5", node: str = "edge1") -> LiveSession:
    return LiveSession("nimble", "viewer", "live", "cam1", ip, node, session, 0.0, "revoked")


def test_configuration_from_the_environment() -> None:
    assert NimbleEnforcer.from_env({}) is None
    single = NimbleEnforcer.from_env({"CASTGATE_NIMBLE_API": "http://127.0.0.1:8082"})
    assert single is not None and single.apis == {"": "http://127.0.0.1:8082"}
    several = NimbleEnforcer.from_env(
        {"CASTGATE_NIMBLE_API": "edge1=http://10.0.0.1:8082, edge2=http://10.0.0.2:8082"}
    )
    assert several is not None
    assert several.apis == {"edge1": "http://10.0.0.1:8082", "edge2": "http://10.0.0.2:8082"}


def test_sessions_are_ended_by_id_or_by_address(nimble: tuple[FakeNimble, str]) -> None:
    fake, base = nimble
    enforcer = NimbleEnforcer({"edge1": base}, TOKEN)
    run(enforcer.end_sessions([live("101"), live("unknown-id", ip="198.51.100.7")]))
    assert fake.deleted == [[101, "s-102"]]


def test_a_session_nimble_no_longer_lists_deletes_nothing(nimble: tuple[FakeNimble, str]) -> None:
    fake, base = nimble
    run(NimbleEnforcer({"": base}, TOKEN).end_sessions([live("999", ip="192.0.2.99")]))
    assert fake.deleted == []


def test_an_unknown_node_is_an_error_naming_it() -> None:
    with pytest.raises(ManagementError, match="edge9"):
        run(
            NimbleEnforcer({"edge1": "http://127.0.0.1:9"}, None).end_sessions(
                [live("1", node="edge9")]
            )
        )


def test_a_wrong_token_fails_without_showing_it(nimble: tuple[FakeNimble, str]) -> None:
    _, base = nimble
    with pytest.raises(ManagementError) as raised:
        run(NimbleEnforcer({"": base}, "wrong-token").end_sessions([live("101")]))
    assert "wrong-token" not in str(raised.value)
