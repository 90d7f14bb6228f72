"""Ending sessions: through a vendor's enforcer, or at the next update for vendors without one."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from castgate import Decision, Effect, Enforcer, Event, LiveSession
from castgate.lang import compile_sources
from castgate.revocation import end_sessions, recheck, sweep_lifetimes
from castgate.state import LIFETIME_ENDED, lifetime_decision
from castgate.state.memory import MemoryState


class RecordingEnforcer(Enforcer):
    vendor = "kicky"

    def __init__(self, fail: bool = False) -> None:
        self.ended: list[LiveSession] = []
        self.fail = fail

    async def end_sessions(self, sessions: Sequence[LiveSession]) -> None:
        if self.fail:
            raise ConnectionError("management API refused the connection")
        self.ended.extend(sessions)


def opened(state: MemoryState, vendor: str, session: str, **response: object) -> None:
    event = Event(
        vendor=vendor,
        action="play",
        app="live",
        stream="cam1",
        session_id=session,
        client_ip="192.0.2.1",
        params={"token": session},
    )
    state.record(event, Decision(Effect.ALLOW, "ok", "viewers", dict(response)))


def test_a_reloaded_policy_ends_sessions_it_denies() -> None:
    state = MemoryState()
    kicker = RecordingEnforcer()
    opened(state, "kicky", "good")
    opened(state, "kicky", "bad")
    opened(state, "plain", "bad")
    policy = compile_sources(
        [("p.policy", 'rule viewers { on play  allow if params.token == "good" }\n', Path())],
        vendors={},
        functions={},
        env={},
    )
    assert asyncio.run(recheck(policy, state, {"kicky": kicker})) == 2
    assert [(s.vendor, s.vendor_session) for s in kicker.ended] == [("kicky", "bad")]
    assert kicker.ended[0].reason == "the reloaded policy denies it: no rule allowed this request"
    # the enforcer ended it, so it is gone; the other vendor's is marked for its next update
    left = {(s.vendor, s.vendor_session): s for s in state.live()}
    assert set(left) == {("kicky", "good"), ("plain", "bad")}
    marked = left[("plain", "bad")]
    update = Event(vendor="plain", action="update", role="viewer", session_id="bad")
    ended = lifetime_decision(marked.ends, marked.rule, update, marked.ended_because)
    assert ended is not None and ended.reason.startswith("the reloaded policy denies it")


def test_sessions_past_their_lifetime_are_ended_through_the_enforcer() -> None:
    state = MemoryState()
    kicker = RecordingEnforcer()
    opened(state, "kicky", "short", lifetime=-1)
    opened(state, "kicky", "long", lifetime=3600)
    assert asyncio.run(sweep_lifetimes(state, {"kicky": kicker})) == 1
    assert [(s.vendor_session, s.reason) for s in kicker.ended] == [("short", LIFETIME_ENDED)]
    assert [s.vendor_session for s in state.live()] == ["long"]


def test_a_failing_enforcer_leaves_the_session_marked_for_its_next_update() -> None:
    state = MemoryState()
    opened(state, "kicky", "s1")
    [session] = state.live()
    asyncio.run(
        end_sessions(state, {"kicky": RecordingEnforcer(fail=True)}, [(session, "revoked by test")])
    )
    [still] = state.live()
    assert (still.ends, still.ended_because) == (0.0, "revoked by test")
