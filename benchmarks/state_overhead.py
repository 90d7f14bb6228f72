"""What session state adds to a decision: memory backend in-process, Redis over loopback.

Run by hand: ``python benchmarks/state_overhead.py [--quick] [--redis redis://127.0.0.1:6379/0]``.
Without ``--redis`` it starts its own redis-server on a free loopback port (Debian package
redis-server). It prints medians and p99 per decision and the ratios, all measured in one run.

- baseline: ``PolicySet.decide`` on the memory state, nothing recorded;
- memory: the server's local path, decide then record (open and close a session each time);
- redis: the server's shared path, snapshot, decide, record (the Lua scripts) and close; the
  same against a policy that reads no ``sessions.*`` (no snapshot: one round trip);
- redis ping: one bare loopback round trip, the unit the Redis figures are compared with.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from castgate import Decision, Effect, Event
from castgate.lang import compile_sources
from castgate.state import EMPTY_STATE
from castgate.state.memory import MemoryState
from castgate.state.redis import RedisState

COUNTING = """
rule one_publisher_per_key {
  on publish
  deny "ExistStreamName" if sessions.key_publishers(params.key) >= 1
}
rule publishers { on publish  allow if params.key in ["k1", "k2", "k3"] }
"""
PLAIN = 'rule publishers { on publish  allow if params.key in ["k1", "k2", "k3"] }\n'


def _event(i: int) -> Event:
    return Event(
        vendor="bench",
        action="publish",
        app="live",
        stream=f"cam{i % 1000}",
        params={"key": "k1"},
        client_ip="192.0.2.1",
        session_id=str(i),
        node="n",
    )


def _done(event: Event) -> Event:
    return Event(
        vendor=event.vendor,
        action="publish_done",
        app=event.app,
        stream=event.stream,
        params=event.params,
        client_ip=event.client_ip,
        session_id=event.session_id,
        node=event.node,
    )


ACK = Decision(Effect.ACK, "ack")


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_us": round(statistics.median(ordered) * 1e6, 3),
        "p99_us": round(ordered[int(len(ordered) * 0.99) - 1] * 1e6, 3),
    }


def bench_memory(n: int) -> dict[str, dict[str, float]]:
    policy = compile_sources([("b.policy", COUNTING, Path())], vendors={}, functions={}, env={})
    state = MemoryState()
    events = [_event(i) for i in range(n)]
    base: list[float] = []
    local: list[float] = []
    clock = time.perf_counter
    for event in events:  # interleaved, so both see the same machine noise
        started = clock()
        policy.decide(event, state)
        base.append(clock() - started)
        started = clock()
        decision = policy.decide(event, state)
        state.record(event, decision)
        local.append(clock() - started)
        state.record(_done(event), ACK)  # close it again, outside the timing
    return {"decide": _percentiles(base), "decide+record": _percentiles(local)}


async def bench_redis(url: str, n: int) -> dict[str, dict[str, float]]:
    counting = compile_sources([("c.policy", COUNTING, Path())], vendors={}, functions={}, env={})
    assert not compile_sources(
        [("p.policy", PLAIN, Path())], vendors={}, functions={}, env={}
    ).reads_sessions
    plain = compile_sources([("p.policy", PLAIN, Path())], vendors={}, functions={}, env={})
    store = RedisState(url, timeout=2.0)
    ping: list[float] = []
    shared: list[float] = []
    single: list[float] = []
    clock = time.perf_counter
    try:
        for i in range(n):
            event = _event(i)
            started = clock()
            await store.ping()
            ping.append(clock() - started)
            started = clock()
            snapshot = await store.snapshot(event)
            decision = counting.decide(event, snapshot)
            await store.record(event, decision, snapshot)
            shared.append(clock() - started)
            await store.record(_done(event), ACK, None)
            started = clock()
            decision = plain.decide(event, EMPTY_STATE)
            await store.record(event, decision, None)
            single.append(clock() - started)
            await store.record(_done(event), ACK, None)
    finally:
        await store.close()
    return {
        "redis ping (1 round trip)": _percentiles(ping),
        "redis, policy reads sessions (snapshot + record)": _percentiles(shared),
        "redis, policy reads no sessions (record only)": _percentiles(single),
    }


def _start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("needs redis-server (Debian package redis-server) or --redis URL")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    process.kill()
    sys.exit("redis-server did not start")


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few iterations (a smoke test)")
    parser.add_argument("--redis", help="use this Redis instead of starting one")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    n = 200 if args.quick else 20_000
    results = bench_memory(n)
    with tempfile.TemporaryDirectory() as scratch:
        process = None
        url = args.redis
        if url is None:
            process, url = _start_redis(Path(scratch))
        try:
            results |= asyncio.run(bench_redis(url, n // 10))
        finally:
            if process is not None:
                process.terminate()
                process.wait(timeout=10)
    memory = results["decide+record"]["median_us"] - results["decide"]["median_us"]
    results["summary"] = {
        "memory_adds_median_us": round(memory, 3),
        "redis_sessions_in_round_trips": round(
            results["redis, policy reads sessions (snapshot + record)"]["median_us"]
            / results["redis ping (1 round trip)"]["median_us"],
            2,
        ),
        "redis_plain_in_round_trips": round(
            results["redis, policy reads no sessions (record only)"]["median_us"]
            / results["redis ping (1 round trip)"]["median_us"],
            2,
        ),
    }
    for name, figures in results.items():
        print(f"{name:52} {json.dumps(figures)}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
