"""The in-memory session registry: opening, refreshing, closing, expiry, ordering, rates."""

from __future__ import annotations

from typing import Any

import pytest

from castgate import Decision, Effect, Event
from castgate.state.memory import MemoryState

ALLOW = Decision(Effect.ALLOW, "ok", "r")
DENY = Decision(Effect.DENY, "no", "r")
ACK = Decision(Effect.ACK, "ack")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def state(clock: Clock) -> MemoryState:
    return MemoryState(idle=60, max_age=3600, clock=clock)


def event(action: str, **fields: Any) -> Event:
    values: dict[str, Any] = {
        "vendor": "v",
        "app": "live",
        "stream": "cam1",
        "client_ip": "192.0.2.1",
        "session_id": "7",
        "node": "edge1",
        "time": 1_000_000.0,
    }
    values.update(fields)
    return Event(action=action, **values)


def publishers(state: MemoryState, stream: str = "cam1") -> int:
    return state.count("publisher", "stream", stream)


def test_an_allowed_publish_opens_and_its_done_closes(state: MemoryState) -> None:
    state.record(event("publish", params={"key": "k1"}), ALLOW)
    assert publishers(state) == 1
    assert state.count("publisher", "app", "live") == 1
    assert state.count("any", "client", "192.0.2.1") == 1
    assert state.count("publisher", "key", "k1") == 1
    assert state.count("viewer", "stream", "cam1") == 0
    state.record(event("publish_done"), ACK)
    assert publishers(state) == 0
    assert state.count("publisher", "key", "k1") == 0


def test_a_denied_publish_opens_nothing(state: MemoryState) -> None:
    state.record(event("publish"), DENY)
    assert publishers(state) == 0


def test_done_closes_every_role_of_the_connection(state: MemoryState) -> None:
    state.record(event("publish"), ALLOW)
    state.record(event("play"), ALLOW)
    assert state.count("any", "stream", "cam1") == 2
    state.record(event("done"), ACK)
    assert state.count("any", "stream", "cam1") == 0


def test_a_retried_start_counts_once(state: MemoryState) -> None:
    for _ in range(3):
        state.record(event("publish_started"), ACK)
    assert publishers(state) == 1


def test_an_end_that_arrives_before_its_start_wins(state: MemoryState) -> None:
    state.record(event("publish_done", time=1_000_010.0), ACK)
    state.record(event("publish_started", time=1_000_005.0), ACK)
    assert publishers(state) == 0
    # a new session with the same id, started after that end, is a real new session
    state.record(event("publish_started", time=1_000_020.0), ACK)
    assert publishers(state) == 1


def test_a_session_that_stops_getting_updates_expires(state: MemoryState, clock: Clock) -> None:
    state.record(event("publish", role="publisher"), ALLOW)
    state.record(event("update", role="publisher"), ALLOW)
    clock.now += 59
    assert publishers(state) == 1
    clock.now += 2
    assert publishers(state) == 0


def test_a_session_without_updates_lives_until_max_age(state: MemoryState, clock: Clock) -> None:
    state.record(event("publish_started"), ACK)
    clock.now += 3599
    assert publishers(state) == 1
    clock.now += 2
    assert publishers(state) == 0


def test_an_update_for_an_unknown_session_opens_it(state: MemoryState) -> None:
    state.record(event("update", role="publisher"), ALLOW)
    assert publishers(state) == 1


def test_a_denied_update_closes_the_session(state: MemoryState) -> None:
    state.record(event("publish"), ALLOW)
    state.record(event("update", role="publisher"), DENY)
    assert publishers(state) == 0


def test_sessions_are_told_apart_by_node_and_id(state: MemoryState) -> None:
    state.record(event("publish", session_id="1"), ALLOW)
    state.record(event("publish", session_id="1", node="edge2"), ALLOW)
    state.record(event("publish", session_id="2", stream="cam2"), ALLOW)
    assert publishers(state) == 2 and publishers(state, "cam2") == 1


def test_a_returning_publisher_is_recognised(state: MemoryState, clock: Clock) -> None:
    state.record(event("publish", session_id="1", params={"key": "k1"}), ALLOW)
    clock.now += 20
    comeback = event("publish", session_id="2", params={"key": "k1"})
    assert state.returning(comeback, 30)
    assert not state.returning(comeback, 10)
    assert not state.returning(event("publish", session_id="2", params={"key": "k2"}), 30)
    assert not state.returning(
        event("publish", session_id="2", client_ip="192.0.2.9", params={"key": "k1"}), 30
    )
    # Both count until the stale one's done event arrives or it stops getting updates.
    state.record(comeback, ALLOW)
    assert publishers(state) == 2
    state.record(event("publish_done", session_id="1", time=1_000_030.0), ACK)
    assert [s.vendor_session for s in state.live()] == ["2"]


def test_denials_are_counted_per_address_within_the_window(
    state: MemoryState, clock: Clock
) -> None:
    for _ in range(3):
        state.record(event("publish"), DENY)
        clock.now += 10
    assert state.rate("deny", "192.0.2.1", 60) == 3
    assert state.rate("deny", "192.0.2.1", 15) == 1
    assert state.rate("deny", "192.0.2.2", 60) == 0
    state.record(event("publish_done"), DENY)  # a notification is never a denial
    assert state.rate("deny", "192.0.2.1", 60) == 3


def test_a_lifetime_from_the_decision_is_kept(state: MemoryState) -> None:
    state.record(event("publish"), Decision(Effect.ALLOW, "ok", "r", {"lifetime": 60}))
    session = state.session_for(event("update", role="publisher"))
    assert session is not None and session.ends == 1_000_060.0 and session.rule == "r"


def test_a_close_is_remembered_for_ten_minutes(state: MemoryState, clock: Clock) -> None:
    state.record(event("publish_done", time=1_000_010.0), ACK)
    clock.now += 599
    state.record(event("publish_started", time=1_000_005.0), ACK)
    assert publishers(state) == 0
    clock.now += 2
    state.record(event("publish_started", time=1_000_005.0), ACK)
    assert publishers(state) == 1
