"""The compile pipeline and the garbage collector: paused during a compile, its survivors aged
without a scan (frozen with the rest where the process froze its heap), nothing left frozen or
uncollectable, no reference cycles in a compiled policy, and the collector's state restored even
when the policy does not compile."""

from __future__ import annotations

import gc
import sys
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from castgate.events import ACTIONS, Event
from castgate.lang import PolicyError, PolicySet, compile_policies, compile_sources
from castgate.plugins import load_plugins
from castgate.state import EMPTY_STATE

GOOD = "\n".join(
    f'rule r{i} {{ on publish app a{i % 7}  allow if params.key == "k{i}" }}' for i in range(1000)
)
BAD = 'rule r { on publish  allow if params.key == 1 + "x" }'


def _compile(text: str) -> PolicySet:
    return compile_sources([("p.policy", text, Path())], vendors={}, functions={}, env={})


class _Cycle:
    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def collector_on() -> Iterator[None]:
    """The collector on, but never starting a collection of its own, so that the tests see what
    the compile left in each generation."""
    was_enabled = gc.isenabled()
    thresholds = gc.get_threshold()
    gc.collect()
    gc.enable()
    gc.set_threshold(1_000_000_000)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        if not was_enabled:
            gc.disable()


def _young() -> int:
    return len(gc.get_objects(generation=0))


@pytest.mark.usefixtures("collector_on")
def test_the_collector_is_on_again_after_a_compile_and_after_a_failed_one() -> None:
    _compile(GOOD)
    assert gc.isenabled()
    with pytest.raises(PolicyError):
        _compile(BAD)
    assert gc.isenabled()


def test_a_paused_collector_stays_paused() -> None:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        _compile(GOOD)
        assert not gc.isenabled()
        with pytest.raises(PolicyError):
            _compile(BAD)
        assert not gc.isenabled()
    finally:
        if was_enabled:
            gc.enable()


@pytest.mark.usefixtures("collector_on")
def test_a_compile_leaves_no_young_objects_and_nothing_frozen() -> None:
    assert gc.get_freeze_count() == 0
    policy = _compile(GOOD)
    # Left young, the policy's objects would be scanned by the next young collection, on a
    # request; left frozen, garbage among them would never be collected.
    assert _young() < 1000
    assert gc.get_freeze_count() == 0
    assert policy.rules


def test_a_compile_after_a_full_collection_starts_no_collection() -> None:
    started: list[int] = []

    def record(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append(info["generation"])

    was_enabled = gc.isenabled()
    gc.enable()
    gc.collect()
    gc.callbacks.append(record)
    try:
        policy = _compile(GOOD)
    finally:
        gc.callbacks.remove(record)
        if not was_enabled:
            gc.disable()
    assert started == []
    assert policy.rules


@pytest.mark.usefixtures("collector_on")
def test_a_failed_compile_leaves_nothing_frozen() -> None:
    with pytest.raises(PolicyError):
        _compile(BAD)
    assert gc.get_freeze_count() == 0


@pytest.mark.usefixtures("collector_on")
def test_garbage_from_before_a_compile_is_still_collected() -> None:
    cycle = weakref.ref(_Cycle())
    assert cycle() is not None
    _compile(GOOD)
    gc.collect()
    assert cycle() is None


@pytest.mark.usefixtures("collector_on")
def test_garbage_aged_unscanned_is_collected_once_a_quarter_of_the_heap_was(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As a policy replaced by a reload is, when reference cycles hold it.
    monkeypatch.setattr(sys, "getallocatedblocks", lambda: 1000)
    cycle = weakref.ref(_Cycle())
    _compile(GOOD)
    assert cycle() is not None
    _compile(GOOD)
    assert cycle() is None


@pytest.mark.usefixtures("collector_on")
def test_compiles_small_beside_the_heap_do_not_scan_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "getallocatedblocks", lambda: 1_000_000_000)
    full = gc.get_stats()[2]["collections"]
    for _ in range(3):
        _compile(GOOD)
    assert gc.get_stats()[2]["collections"] == full


@pytest.mark.usefixtures("collector_on")
def test_a_compile_in_a_process_that_froze_its_heap_freezes_the_policy_without_a_scan() -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        collections = [generation["collections"] for generation in gc.get_stats()]
        policy = _compile(GOOD)
        # Before: a young collection scanned the whole new policy, with the GIL held (0.24 s
        # for 10,000 rules in `castgate serve`, every request waiting).
        assert [generation["collections"] for generation in gc.get_stats()] == collections
        assert gc.get_freeze_count() > frozen + 10 * len(policy.rules)
        assert _young() < 1000
    finally:
        gc.unfreeze()


#: The secrets the shipped policies read from the environment.
_KEYS = {"CASTGATE_SIGNING_KEY": "a-signing-key", "CASTGATE_AMS_TICKET_KEY": "a-ticket-key"}


def _shipped_policies() -> list[Path]:
    folders = (Path(__file__).resolve().parents[2] / "policies").iterdir()
    return sorted(folder for folder in folders if list(folder.glob("*.policy")))


@pytest.mark.parametrize("folder", _shipped_policies(), ids=lambda folder: folder.name)
def test_a_replaced_policy_holds_no_reference_cycles(folder: Path) -> None:
    # What lets `castgate serve` keep its heap frozen across reloads: the policy a reload
    # replaces is freed by reference counting alone, generated functions and index included.
    registry = load_plugins()
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        policy = compile_policies(
            [folder], vendors=registry.vendors, functions=registry.functions, env=_KEYS
        )
        for vendor in registry.vendors:
            for action in sorted(ACTIONS):
                policy.decide(Event(vendor, action, "live", "cam1"), EMPTY_STATE)
                policy.decide(Event(vendor, action, "live", "cam1"), EMPTY_STATE, explain=True)
        freed = weakref.ref(policy)
        del policy
        assert freed() is None
        assert gc.collect() == 0
    finally:
        if enabled:
            gc.enable()
