"""Decision speed: castgate against other policy engines, side by side in one process.

Run by hand from the repository root::

    python benchmarks/peer_engines.py                    # full run, about ten minutes
    python benchmarks/peer_engines.py --quick            # tiny sizes (what the smoke test runs)
    python benchmarks/peer_engines.py --json out.json --plot benchmarks/peer_engines.png

What it does (benchmarks/README.md explains the method and the numbers):

1. Writes the reference policy of ``decision_speed.py`` and scaled variants of it (more stream keys,
   more blocked CIDRs, more rules) and compiles each with castgate; builds the hand-written floor
   of ``decision_speed.py``; loads the same policy into every other engine that imports here
   (``benchmarks/peers/``, one module per engine), timing each compile or load.
2. Checks agreement first: every engine must allow exactly what castgate allows on every timed
   event and on a few thousand random ones, or the run stops naming the event.
3. Times all of them interleaved in rounds, on the events castgate allows and those it denies,
   and reports medians and p99s per decision and each engine's cost relative to castgate's.
   Engines far too slow for a size are capped and reported with the reason instead of timed.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import peers  # before castgate: peers/__init__.py says why

# isort: split

import decision_speed as ds

from castgate.events import Decision, Effect, Event
from castgate.lang import PolicySet
from castgate.state import EMPTY_STATE

# Targets from the issue (benchmarks/README.md, "Targets").
TARGET_MEDIAN_NS = 2_000
TARGET_FLOOR_RATIO = 1.5
TARGET_PEER_RATIO = 10.0

CASTGATE = "castgate"
FLOOR = "floor"
CLASSES = ("allowed", "denied")


# Sizes --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    cases: tuple[ds.Case, ...]
    timed_events: int  # generated per case; the allowed and denied among them are timed
    check_events: int  # random events per engine and case, only checked for agreement...
    check_budget_s: float  # ...but no more seconds of them than this per engine and case
    probe_events: int  # timed one by one first: an engine slower than slow_ns is capped
    slow_ns: float
    rounds: int
    slice_s: float  # each round, each engine runs batches for about this long (at least one)
    budget_s: float  # an engine leaves the rounds once it has spent this long on a class...
    min_rounds: int  # ...but not before this many
    repeats: int


_REFERENCE = ds.REFERENCE_RULES

FULL = Sizes(
    cases=(
        ds.Case("small", 10, 3, _REFERENCE, "same", "the reference policy as shipped"),
        ds.Case("keys 1k", 1_000, 3, _REFERENCE, "same", "1,000 stream keys"),
        ds.Case("keys 100k", 100_000, 3, _REFERENCE, "same", "100,000 stream keys"),
        ds.Case("cidrs 10k", 10, 10_000, _REFERENCE, "same", "10,000 blocked CIDRs"),
        ds.Case("rules 1k", 10, 3, 1_000, "same", "980 extra rules on publish and play"),
    ),
    timed_events=300,
    check_events=3_000,
    check_budget_s=2.0,
    probe_events=20,
    slow_ns=10e6,
    rounds=15,
    slice_s=0.03,
    budget_s=2.0,
    min_rounds=2,
    repeats=3,
)

QUICK = Sizes(
    cases=(
        ds.Case("small", 10, 3, _REFERENCE, "same", "the reference policy as shipped"),
        ds.Case("keys 200", 200, 3, _REFERENCE, "same", "200 stream keys"),
        ds.Case("cidrs 50", 10, 50, _REFERENCE, "same", "50 blocked CIDRs"),
        ds.Case("rules 60", 10, 3, 60, "same", "40 extra rules on publish and play"),
    ),
    timed_events=60,
    check_events=150,
    check_budget_s=0.3,
    probe_events=4,
    slow_ns=10e6,
    rounds=2,
    slice_s=0.002,
    budget_s=0.1,
    min_rounds=1,
    repeats=1,
)

#: The sizes a case can vary, one panel of the plot each, with the label of its x axis.
SCALES = {"keys": "stream keys", "cidrs": "blocked CIDRs", "rules": "rules"}


# Contestants --------------------------------------------------------------------------------------


def allowed(decision: Decision) -> bool:
    """castgate's decision as allow or deny: a notification that a deny rule flags is a deny, as
    the peers express castgate's `done_flag_blocked`."""
    if decision.effect is Effect.ACK:
        return not decision.flagged
    return decision.effect is Effect.ALLOW


@dataclass
class Contestant:
    name: str
    version: str
    #: What the timing loop calls: ``(event, state) -> Decision or bool``.
    decide: Callable[[Event, Any], object]
    #: The same decision as allow or deny, for the agreement check.
    allows: Callable[[Event], bool]
    load_s: float


def _timed_load(load: Callable[[], Any]) -> tuple[Any, float]:
    gc.collect()  # the previous case's garbage is not this load's cost
    t0 = time.perf_counter()
    loaded = load()
    return loaded, time.perf_counter() - t0


def _castgate_shaped(name: str, version: str, decide: ds.Decide, load_s: float) -> Contestant:
    """castgate or the floor: both return castgate's Decision."""
    return Contestant(
        name, version, decide, lambda event: allowed(decide(event, EMPTY_STATE)), load_s
    )


def _peer(peer: peers.Peer, facts: peers.Facts) -> Contestant:
    decide, load_s = _timed_load(lambda: peer.build(facts))
    return Contestant(
        peer.name, peer.version, decide, lambda event: decide(event, EMPTY_STATE), load_s
    )


#: An event and whether castgate allows it.
Expected = tuple[Event, bool]


def check(contestant: Contestant, event: Event, expected: bool) -> None:
    answer = contestant.allows(event)
    if answer is not expected:
        raise AssertionError(
            f"{contestant.name} disagrees with castgate on {event!r}:\n"
            f" castgate: {'allow' if expected else 'deny'}\n"
            f" {contestant.name}: {'allow' if answer else 'deny'}"
        )


def probe(contestant: Contestant, events: Sequence[Expected], sizes: Sizes) -> list[float]:
    """The cost of a few events spread over the timed ones, each called alone (and checked),
    after one call to warm up: an engine too slow for this size is found in seconds, before
    anything else, not after minutes."""
    check(contestant, *events[0])
    step = max(1, len(events) // sizes.probe_events)
    spent = []
    for event, expected in events[step // 2 :: step]:
        t0 = time.perf_counter_ns()
        check(contestant, event, expected)
        spent.append(time.perf_counter_ns() - t0)
        if sum(spent) > sizes.check_budget_s * 1e9:
            break
    return spent


def check_all(
    contestant: Contestant,
    timed: Sequence[Expected],
    extra: Sequence[Expected],
    budget_s: float = float("inf"),
) -> int:
    """Check every timed event, then random ones until the budget is spent; return how many."""
    for event, expected in timed:
        check(contestant, event, expected)
    deadline = time.perf_counter() + budget_s
    checked = len(timed)
    for event, expected in extra:
        if time.perf_counter() > deadline:
            break
        check(contestant, event, expected)
        checked += 1
    return checked


# Preparing a case ---------------------------------------------------------------------------------


@dataclass
class Entry:
    """One engine in one case: timed, or capped with the reason."""

    name: str
    version: str
    load_s: float | None = None
    #: Events compared with castgate's answer (for castgate: the answers it gave).
    events_checked: int = 0
    probe_ns: float | None = None
    capped: str | None = None


@dataclass
class Prepared:
    case: ds.Case
    contestants: list[Contestant]  # castgate first, then the floor, then the peers timed here
    entries: list[Entry]  # every engine, in report order
    classes: dict[str, list[Event]]


def admit_peer(
    peer: peers.Peer,
    facts: peers.Facts,
    timed: Sequence[Expected],
    extra: Sequence[Expected],
    sizes: Sizes,
) -> tuple[Entry, Contestant | None]:
    """Load a peer, probe it and check it: the contestant to time, or ``None`` if it is capped."""
    entry = Entry(peer.name, peer.version, capped=peer.limits.refuse(facts))
    if entry.capped is not None:
        return entry, None
    contestant = _peer(peer, facts)
    entry.load_s = contestant.load_s
    costs = probe(contestant, timed, sizes)
    entry.probe_ns = statistics.mean(costs)
    if entry.probe_ns > sizes.slow_ns:
        entry.events_checked = 1 + len(costs)
        entry.capped = (
            f"~{entry.probe_ns / 1e6:,.0f} ms a decision (the mean of its probe), more than the"
            f" {sizes.slow_ns / 1e6:.0f} ms cap"
        )
        return entry, None
    entry.events_checked = check_all(contestant, timed, extra, sizes.check_budget_s)
    return entry, contestant


def by_outcome(policy: PolicySet, events: Sequence[Event]) -> dict[str, list[Event]]:
    """The events castgate allows and those it denies (notifications are acknowledged: untimed)."""
    names = {Effect.ALLOW: "allowed", Effect.DENY: "denied"}
    classes: dict[str, list[Event]] = {label: [] for label in CLASSES}
    for event in events:
        label = names.get(policy.decide(event, EMPTY_STATE).effect)
        if label is not None:
            classes[label].append(event)
    return classes


def prepare(
    case: ds.Case,
    sizes: Sizes,
    peer_list: Sequence[peers.Peer],
    root: Path,
    seed: int,
    say: Callable[[str], None],
) -> Prepared:
    data = ds.write_case(case, root, seed)
    policy, compile_s = _timed_load(lambda: ds.compile_case(data))
    floor, floor_s = _timed_load(lambda: ds.make_floor(data))
    castgate = _castgate_shaped(CASTGATE, metadata.version("castgate"), policy.decide, compile_s)
    floor_contestant = _castgate_shaped(FLOOR, "-", floor, floor_s)

    maker = ds.EventMaker(data, seed)
    timed_events = maker.timed_mix(sizes.timed_events)
    extra_events = maker.check_mix(sizes.check_events)
    timed = [(e, castgate.allows(e)) for e in timed_events]
    extra = [(e, castgate.allows(e)) for e in extra_events if e.action in peers.POLICY_ACTIONS]

    contestants = [castgate, floor_contestant]
    entries = [
        Entry(CASTGATE, castgate.version, compile_s, len(timed) + len(extra)),
        Entry(FLOOR, "-", floor_s, check_all(floor_contestant, timed, extra)),
    ]
    facts = peers.Facts.read(data.directory, data.gen_deny, data.gen_allow)
    for peer in peer_list:
        say(f"  {case.name}: loading {peer.name}")
        entry, contestant = admit_peer(peer, facts, timed, extra, sizes)
        entries.append(entry)
        if contestant is not None:
            contestants.append(contestant)
    return Prepared(case, contestants, entries, by_outcome(policy, timed_events))


# Timing -------------------------------------------------------------------------------------------


def _batches(
    decide: Callable[[Event, Any], object], events: Sequence[Event], slice_s: float, loop_ns: float
) -> list[float]:
    """Passes over ``events`` for about ``slice_s`` (at least one): the mean cost per decision
    of each pass, the empty loop's time taken off."""
    pc = time.perf_counter_ns
    state = EMPTY_STATE
    n = len(events)
    stop = pc() + slice_s * 1e9
    means = []
    while True:
        t0 = pc()
        for event in events:
            decide(event, state)
        t1 = pc()
        means.append((t1 - t0 - loop_ns) / n)
        if t1 >= stop:
            return means


def _calls(
    decide: Callable[[Event, Any], object], events: Sequence[Event], overhead_ns: float
) -> list[float]:
    """Each decision of one pass timed alone, the timer's own cost taken off."""
    pc = time.perf_counter_ns
    state = EMPTY_STATE
    samples = []
    append = samples.append
    for event in events:
        t0 = pc()
        decide(event, state)
        t1 = pc()
        append(t1 - t0 - overhead_ns)
    return samples


def time_class(
    contestants: Sequence[Contestant], events: Sequence[Event], sizes: Sizes
) -> list[dict[str, float]]:
    """Every contestant on one class of events, interleaved: each round, each contestant runs
    batches for one time slice and then one pass of per-call timing; the order flips every round
    so that the machine's slow spells hit all alike. A slow contestant leaves once it has spent
    its budget (after ``min_rounds``), so one slow engine cannot stretch the run."""
    gc.collect()
    for contestant in contestants:  # warm up, and castgate builds its index
        for event in events:
            contestant.decide(event, EMPTY_STATE)
    loop_ns = ds.empty_loop_ns(events)
    overhead_ns = ds.timer_overhead_ns()
    batches: list[list[float]] = [[] for _ in contestants]
    calls: list[list[float]] = [[] for _ in contestants]
    spent = [0.0 for _ in contestants]
    order = list(range(len(contestants)))
    for round_number in range(sizes.rounds):
        for i in order:
            if round_number >= sizes.min_rounds and spent[i] > sizes.budget_s:
                continue
            t0 = time.perf_counter()
            decide = contestants[i].decide
            batches[i] += _batches(decide, events, sizes.slice_s, loop_ns)
            calls[i] += _calls(decide, events, overhead_ns)
            spent[i] += time.perf_counter() - t0
        order.reverse()
    return [ds.summarize(b, c) for b, c in zip(batches, calls, strict=True)]


def time_case(prepared: Prepared, sizes: Sizes) -> dict[str, dict[str, dict[str, float]]]:
    """``{engine: {class: stats}}`` for the contestants of one case."""
    out: dict[str, dict[str, dict[str, float]]] = {c.name: {} for c in prepared.contestants}
    for label, events in prepared.classes.items():
        stats = time_class(prepared.contestants, events, sizes)
        for contestant, figures in zip(prepared.contestants, stats, strict=True):
            out[contestant.name][label] = figures
    return out


# Running ------------------------------------------------------------------------------------------


def measure_case(
    case: ds.Case,
    sizes: Sizes,
    repeats: int,
    peer_list: Sequence[peers.Peer],
    root: Path,
    seed: int,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Prepare one case, time it ``repeats`` times and let it go: one case's engines at a time
    in memory, so that the collector's full passes do not walk every case's data."""
    say(f"{case.name}: {case.keys:,} keys, {case.cidrs:,} CIDRs, {case.rules:,} rules")
    prepared = prepare(case, sizes, peer_list, root, seed, say)
    runs = []
    for repeat in range(repeats):
        say(f"  {case.name}: timing, repeat {repeat + 1}/{repeats}")
        runs.append(time_case(prepared, sizes))
    return _case_result(prepared, ds.median_of(runs))


def run(
    *,
    quick: bool = False,
    repeats: int | None = None,
    seed: int = 20260323,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the whole benchmark and return the results (the ``--json`` document)."""
    sizes = QUICK if quick else FULL
    repeats = repeats or sizes.repeats
    say = progress or (lambda _message: None)
    peer_list, missing = peers.load_peers()
    with tempfile.TemporaryDirectory(prefix="castgate-peers-") as tmp:
        cases = [
            measure_case(case, sizes, repeats, peer_list, Path(tmp), seed, say)
            for case in sizes.cases
        ]
    return {
        "benchmark": "peer_engines",
        "quick": quick,
        "seed": seed,
        "repeats": repeats,
        "machine": ds.machine(),
        "method": {
            "median": "median over batches of the mean cost per decision in a batch "
            "(one pass over the class's events, minus the empty loop)",
            "p99": "99th percentile of per-call timings, minus the timer's own overhead",
            "vs_castgate": "the engine's median / castgate's median, same class and case",
            "across_repeats": "every number is the median of its value over the repeats",
        },
        "engines": _engines(peer_list, missing),
        "agreement": {
            "agreed": True,
            "disagreements": 0,
            "events_checked": sum(
                e["events_checked"] for c in cases for e in c["engines"] if e["name"] != CASTGATE
            ),
        },
        "cases": cases,
        "targets": targets(cases),
    }


def _engines(peer_list: Sequence[peers.Peer], missing: Sequence[peers.Missing]) -> dict[str, Any]:
    return {
        "measured": [
            {
                "name": p.name,
                "package": p.package,
                "version": p.version,
                "precomputed": p.precomputed,
            }
            for p in peer_list
        ],
        "skipped": [{"module": m.module, "reason": m.reason} for m in missing],
    }


def _case_result(prepared: Prepared, timing: dict[str, Any]) -> dict[str, Any]:
    case = prepared.case
    castgate = timing[CASTGATE]
    engines = []
    for entry in prepared.entries:
        classes = timing.get(entry.name, {})
        for label, stats in classes.items():
            stats["events"] = len(prepared.classes[label])
            stats["vs_castgate"] = stats["batch_median_ns"] / castgate[label]["batch_median_ns"]
        engines.append(
            {
                "name": entry.name,
                "version": entry.version,
                "timed": entry.capped is None,
                "capped": entry.capped,
                "load_s": entry.load_s,
                "probe_ns": entry.probe_ns,
                "events_checked": entry.events_checked,
                "classes": classes,
            }
        )
    return {
        "name": case.name,
        "what": case.what,
        "keys": case.keys,
        "cidrs": case.cidrs,
        "rules": case.rules,
        "engines": engines,
    }


def targets(cases: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Each target on the small case, the worse of allowed and denied, and whether it is met."""
    engines = {e["name"]: e for e in cases[0]["engines"]}
    castgate, floor = engines[CASTGATE]["classes"], engines[FLOOR]["classes"]
    median = max(castgate[k]["batch_median_ns"] for k in CLASSES)
    floor_ratio = max(castgate[k]["batch_median_ns"] / floor[k]["batch_median_ns"] for k in CLASSES)
    peer_ratios = {}
    for name, engine in engines.items():
        if name in (CASTGATE, FLOOR):
            continue
        if engine["timed"]:
            peer_ratios[name] = min(engine["classes"][k]["vs_castgate"] for k in CLASSES)
        elif engine["probe_ns"] is not None:  # capped as too slow: its probe is the estimate
            peer_ratios[name] = engine["probe_ns"] / median
    slowest_peer = min(peer_ratios.values(), default=float("inf"))
    return {
        "median_le_2us": {"value_ns": median, "met": median <= TARGET_MEDIAN_NS},
        "floor_ratio_le_1_5": {"value": floor_ratio, "met": floor_ratio <= TARGET_FLOOR_RATIO},
        "peers_at_least_10x": {
            "value": slowest_peer,
            "per_engine": peer_ratios,
            "met": slowest_peer >= TARGET_PEER_RATIO,
        },
    }


# Reporting ----------------------------------------------------------------------------------------


def _us(ns: float) -> str:
    """Microseconds with about three significant digits."""
    us = ns / 1000
    return f"{us:.2f}" if us < 10 else f"{us:.1f}" if us < 100 else f"{us:,.0f}"


def _ratio(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:,.0f}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}" if value < 10 else f"{value:.1f}"


def _capped_cell(engine: dict[str, Any]) -> str:
    if engine["probe_ns"] is not None:
        return f"capped (~{_us(engine['probe_ns'])})"
    return "capped"


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    checked = results["agreement"]["events_checked"]
    lines = [
        f"castgate against other policy engines - {m['cpu']} ({m['cpus']} CPUs), Python "
        f"{m['python']}, {m['date']}, {results['repeats']} repeat(s)"
        f"{' (quick)' if results['quick'] else ''}",
        f"agreement: every engine allowed exactly what castgate allowed ({checked} checks)",
    ]
    lines += [f"skipped {s['module']}: {s['reason']}" for s in results["engines"]["skipped"]]
    lines += [
        "",
        "times in microseconds per decision; med = median of batch means, p99 = per-call p99;",
        "x cg = the engine's med / castgate's med",
        f"{'case':<10} {'engine':<18} {'class':<8} {'n':>4} {'med':>8} {'p99':>8} {'x cg':>8}"
        f" {'load s':>8} {'checked':>7}",
    ]
    for case in results["cases"]:
        for engine in case["engines"]:
            head = f"{case['name']:<10} {engine['name']:<18}"
            tail = f"{_seconds(engine['load_s']):>8} {engine['events_checked']:>7}"
            if not engine["timed"]:
                lines.append(f"{head} {'':<8} {'':>4} {_capped_cell(engine):>26} {tail}")
                lines.append(f"{'':<29} {engine['capped']}")
                continue
            for label, stats in engine["classes"].items():
                lines.append(
                    f"{head} {label:<8} {stats['events']:>4} {_us(stats['batch_median_ns']):>8}"
                    f" {_us(stats['call_p99_ns']):>8} {_ratio(stats['vs_castgate']):>8} {tail}"
                )
    lines += ["", "targets (small case, the worse of allowed and denied):"]
    for name, target in results["targets"].items():
        value = {k: v for k, v in target.items() if k not in ("met", "per_engine")}
        lines.append(f"  {'MET   ' if target['met'] else 'MISSED'} {name}: {value}")
    return "\n".join(lines)


def markdown(results: dict[str, Any]) -> str:
    """The result tables as Markdown, for benchmarks/README.md."""
    small = results["cases"][0]
    rows = [
        "| engine | version | allowed med | allowed p99 | denied med | denied p99 "
        "| x castgate (allowed / denied) | load (ms) | events checked |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for engine in small["engines"]:
        load = "-" if engine["load_s"] is None else f"{engine['load_s'] * 1000:,.1f}"
        if not engine["timed"]:
            rows.append(
                f"| {engine['name']} | {engine['version']} | {_capped_cell(engine)} | | | | "
                f"| {load} | {engine['events_checked']} |"
            )
            continue
        a, d = engine["classes"]["allowed"], engine["classes"]["denied"]
        rows.append(
            f"| {engine['name']} | {engine['version']} | {_us(a['batch_median_ns'])} "
            f"| {_us(a['call_p99_ns'])} | {_us(d['batch_median_ns'])} | {_us(d['call_p99_ns'])} "
            f"| {_ratio(a['vs_castgate'])} / {_ratio(d['vs_castgate'])} | {load} "
            f"| {engine['events_checked']:,} |"
        )
    tables = [
        _scale_table(results, "median per decision (us), allowed / denied", _median_cell),
        _scale_table(results, "p99 per decision (us), allowed / denied", _p99_cell),
        _scale_table(results, "x castgate, allowed / denied", _ratio_cell),
        _scale_table(results, "compile or load (s)", lambda e: _seconds(e["load_s"])),
    ]
    caps = ["| case | engine | why capped |", "|---|---|---|"]
    for case in results["cases"]:
        caps += [
            f"| {case['name']} | {e['name']} | {e['capped']} |"
            for e in case["engines"]
            if not e["timed"]
        ]
    return "\n\n".join(["\n".join(rows), *tables, "\n".join(caps)])


def _both(engine: dict[str, Any], show: Callable[[dict[str, float]], str]) -> str:
    """One figure for allowed and denied events each, or ``capped``."""
    if not engine["timed"]:
        return "capped"
    return " / ".join(show(engine["classes"][label]) for label in CLASSES)


def _median_cell(engine: dict[str, Any]) -> str:
    """Medians, or the probe's estimate of a capped engine (in the same unit)."""
    if not engine["timed"]:
        return _capped_cell(engine)
    return _both(engine, lambda stats: _us(stats["batch_median_ns"]))


def _p99_cell(engine: dict[str, Any]) -> str:
    return _both(engine, lambda stats: _us(stats["call_p99_ns"]))


def _ratio_cell(engine: dict[str, Any]) -> str:
    return _both(engine, lambda stats: _ratio(stats["vs_castgate"]))


def _scale_table(results: dict[str, Any], title: str, cell: Callable[[dict[str, Any]], str]) -> str:
    """One row per engine, one column per case."""
    cases = results["cases"]
    rows = [
        f"| {title} | " + " | ".join(case["name"] for case in cases) + " |",
        "|---|" + "---:|" * len(cases),
    ]
    for name in [engine["name"] for engine in cases[0]["engines"]]:
        entries = [next(e for e in case["engines"] if e["name"] == name) for case in cases]
        rows.append(f"| {name} | " + " | ".join(cell(entry) for entry in entries) + " |")
    return "\n".join(rows)


def _decision_cost(engine: dict[str, Any]) -> tuple[float, bool] | None:
    """What the plot shows of an engine in a case, in microseconds: the mean of its allowed and
    denied medians (``True``: timed), or its probe when it was capped as too slow (``False``)."""
    if engine["timed"]:
        medians = [engine["classes"][k]["batch_median_ns"] for k in CLASSES]
        return statistics.mean(medians) / 1000, True
    if engine["probe_ns"] is not None:
        return engine["probe_ns"] / 1000, False
    return None


def _styles(names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """castgate black and bold, the floor grey and dashed, each peer a colour of its own."""
    import matplotlib.pyplot as plt

    # tab10 without its grey, which is the floor's
    palette = [plt.get_cmap("tab10")(i) for i in (0, 1, 2, 3, 4, 5, 6, 8, 9)]
    markers = "s^vDP*Xhp<>"
    styles = {
        CASTGATE: {"color": "black", "linewidth": 2.5, "marker": "o"},
        FLOOR: {"color": "grey", "linestyle": "--", "linewidth": 2, "marker": "o"},
    }
    peer_names = [name for name in names if name not in styles]
    for i, name in enumerate(peer_names):
        styles[name] = {
            "color": palette[i % len(palette)],
            "linewidth": 1.5,
            "marker": markers[i % len(markers)],
        }
    return styles


def _plot_panel(axis: Any, cases: Sequence[dict[str, Any]], size: str, styles: dict) -> None:
    """One engine a line over the cases that vary ``size``: solid between timed points, dotted
    on to hollow points, the probes of capped engines."""
    by_name = [{engine["name"]: engine for engine in c["engines"]} for c in cases]
    for name, style in styles.items():
        points = [(c[size], _decision_cost(e[name])) for c, e in zip(cases, by_name, strict=True)]
        known = [(x, cost) for x, cost in points if cost is not None]
        if not known:
            continue
        xs = [x for x, _ in known]
        axis.plot(xs, [cost[0] for _, cost in known], color=style["color"], linestyle=":")
        timed = [(x, cost[0]) for x, cost in known if cost[1]]
        capped = [(x, cost[0]) for x, cost in known if not cost[1]]
        if timed:
            axis.plot(*zip(*timed, strict=True), **style)
        if capped:
            axis.plot(
                *zip(*capped, strict=True),
                marker=style["marker"],
                markersize=8,
                markerfacecolor="white",
                linestyle="none",
                color=style["color"],
            )


def plot(results: dict[str, Any], path: Path) -> None:
    """Per-decision cost against each list size, one panel per size that varies, log scales."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    cases = results["cases"]
    small = cases[0]
    styles = _styles([engine["name"] for engine in small["engines"]])
    figure, axes = plt.subplots(1, len(SCALES), figsize=(15, 6.5), sharey=True)
    for axis, (size, label) in zip(axes, SCALES.items(), strict=True):
        others = [other for other in SCALES if other != size]
        panel = [c for c in cases if all(c[o] == small[o] for o in others)]
        _plot_panel(axis, panel, size, styles)
        ticks = sorted({c[size] for c in panel})
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xticks(ticks, [f"{tick:,}" for tick in ticks])
        axis.set_xticks([], minor=True)
        axis.set_xlabel(label)
        axis.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel("microseconds per decision (log)")
    handles = [Line2D([], [], **style) for style in styles.values()]
    figure.legend(handles, list(styles), loc="upper center", ncol=5, frameon=False)
    m = results["machine"]
    figure.text(
        0.5,
        0.01,
        "Filled: the mean of the allowed and denied medians, timed. Hollow: the engine was capped"
        " as too slow; the mean of its probe (events spread over the timed ones, one by one).\n"
        f"The reference policy (20 rules, 10 keys, 3 CIDRs) scaled one size at a time."
        f" {m['cpus']} CPUs, Python {m['python']}, {m['date']}.",
        ha="center",
        fontsize=9,
    )
    figure.tight_layout(rect=(0, 0.05, 1, 0.9))
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, seconds")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--repeats", type=int, help="whole timing runs to take medians over")
    parser.add_argument("--plot", type=Path, help="draw the per-decision cost plot (PNG) here")
    parser.add_argument("--seed", type=int, default=20260323)
    parser.add_argument("--silent", action="store_true", help="no progress lines on stderr")
    parser.add_argument(
        "--markdown",
        type=Path,
        help="read results from this JSON file, print Markdown tables (and draw --plot)",
    )
    args = parser.parse_args(argv)
    if args.markdown is not None:
        results = json.loads(args.markdown.read_text(encoding="utf-8"))
        print(markdown(results))
    else:
        progress = None if args.silent else (lambda m: print(m, file=sys.stderr, flush=True))
        results = run(quick=args.quick, repeats=args.repeats, seed=args.seed, progress=progress)
        print(render(results))
        if args.json is not None:
            args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if args.plot is not None:
        plot(results, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
