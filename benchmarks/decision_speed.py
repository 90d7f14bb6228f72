"""Decision speed: castgate's compiled policies against the same decisions written by hand.

Run by hand from the repository root::

    python benchmarks/decision_speed.py             # full run, about two minutes
    python benchmarks/decision_speed.py --quick     # tiny sizes, seconds (what the smoke test runs)
    python benchmarks/decision_speed.py --json out.json --repeats 5

What it does (benchmarks/README.md explains the method and the numbers):

1. Compiles the reference policy (``benchmarks/policies/reference``, 20 rules) and scaled variants
   of it (more stream keys, more blocked CIDRs, more rules) in a temporary directory.
2. Builds, for each variant, the *floor*: the same decision written by hand in plain Python as
   tightly as a good engineer would (set lookups, sorted integer ranges searched with bisect, a
   ``re``-compiled pattern, a precomputed time-window test with zoneinfo).
3. Generates a fixed, seeded mix of events and asserts that castgate and the floor return equal
   :class:`~castgate.events.Decision` objects for every one of them (plus several thousand random
   events used only for that check).
4. Times both side by side, interleaved, per outcome class (allowed, denied, acknowledged), and
   reports medians and p99s per decision, the castgate/floor ratio and each case's ratio to the
   small policy; then times compiling 10,000 generated rules and loading large data files.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import ipaddress
import json
import os
import platform
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from castgate.events import ACTIONS, NOTIFICATIONS, Decision, Effect, Event
from castgate.lang import PolicySet, compile_sources
from castgate.lang.builtins import BUILTINS, LoadContext
from castgate.lang.checker import check_policies
from castgate.lang.compiler import compile_rules
from castgate.lang.parser import parse_policy
from castgate.state import EMPTY_STATE
from castgate.vendor import Vendor

HERE = Path(__file__).resolve().parent
REFERENCE_DIR = HERE / "policies" / "reference"
POLICY_NAME = "reference.policy"
KEYS_FILE = "stream-keys.txt"
BLOCKED_FILE = "blocked.txt"

#: The vendor every timed event comes from; generated rules also name a second one, never seen.
VENDOR = "nginx_rtmp"
OTHER_VENDOR = "othervendor"

Decide = Callable[[Event, Any], Decision]

# Targets from the brief (benchmarks/README.md, "Targets").
TARGET_MEDIAN_NS = 2_000
TARGET_P99_NS = 5_000
TARGET_FLOOR_RATIO = 1.5
TARGET_SCALE_RATIO = 2.0
TARGET_COMPILE_S = 1.0


# Sizes --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One policy variant: how many keys, blocked CIDRs and rules, and what the extra rules are."""

    name: str
    keys: int
    cidrs: int
    #: Rules in total; the reference policy has 20, the rest are generated.
    rules: int
    #: ``other``: extra rules for apps, actions and a vendor the events never have (the index
    #: should make them free); ``same``: extra rules for the actions and apps the events have,
    #: which every matching event must visit.
    extra: str = "other"
    what: str = ""


@dataclass(frozen=True)
class Sizes:
    cases: tuple[Case, ...]
    timed_events: int  # events in the timed mix of each case
    check_events: int  # extra random events, only checked for agreement
    batch_rounds: int  # batches per implementation and outcome class
    call_rounds: int  # passes of per-call timing over each class
    repeats: int  # whole runs; every reported number is the median over them
    compile_rules: int
    compile_runs: int
    load_keys: int
    load_cidrs: int
    #: Seconds each implementation may spend on one class's batches (and again on its calls).
    budget_s: float = 1.0
    min_rounds: int = 20


REFERENCE_RULES = 20

FULL = Sizes(
    cases=(
        Case("small", 10, 3, REFERENCE_RULES, "other", "the reference policy as shipped"),
        Case("keys 1k", 1_000, 3, REFERENCE_RULES, "other", "1,000 stream keys"),
        Case("keys 100k", 100_000, 3, REFERENCE_RULES, "other", "100,000 stream keys"),
        Case("cidrs 10k", 10, 10_000, REFERENCE_RULES, "other", "10,000 blocked CIDRs"),
        Case("rules 1k other", 10, 3, 1_000, "other", "980 extra rules, other apps/actions"),
        Case("rules 1k same", 10, 3, 1_000, "same", "980 extra rules, same actions"),
        Case("large", 100_000, 10_000, 1_000, "other", "100k keys, 10k CIDRs, 1k rules (other)"),
        Case("large same", 100_000, 10_000, 1_000, "same", "100k keys, 10k CIDRs, 1k rules (same)"),
    ),
    timed_events=600,
    check_events=3_000,
    batch_rounds=120,
    call_rounds=25,
    repeats=3,
    compile_rules=10_000,
    compile_runs=3,
    load_keys=100_000,
    load_cidrs=10_000,
)

QUICK = Sizes(
    cases=(
        Case("small", 10, 3, REFERENCE_RULES, "other", "the reference policy as shipped"),
        Case("keys 1k", 1_000, 3, REFERENCE_RULES, "other", "1,000 stream keys"),
        Case("cidrs 200", 10, 200, REFERENCE_RULES, "other", "200 blocked CIDRs"),
        Case("rules 60 other", 10, 3, 60, "other", "40 extra rules, other apps/actions"),
        Case("rules 60 same", 10, 3, 60, "same", "40 extra rules, same actions"),
        Case("large", 1_000, 200, 60, "other", "1k keys, 200 CIDRs, 60 rules (other)"),
    ),
    timed_events=120,
    check_events=300,
    batch_rounds=4,
    call_rounds=1,
    repeats=1,
    compile_rules=200,
    compile_runs=1,
    load_keys=1_000,
    load_cidrs=200,
    budget_s=0.05,
    min_rounds=1,
)


# Data files and generated rules -------------------------------------------------------------------


@dataclass
class PolicyData:
    """What one case's policy reads, as the generator made it (the floor loads the files itself)."""

    directory: Path
    keys: list[str]
    blocked: list[str]  # CIDR text, as written to the file
    #: For ``same`` cases: generated deny rules by the stream name they deny, and generated allow
    #: rules by the key they admit, each mapped to the decision the rule makes.
    gen_deny: dict[str, Decision] = field(default_factory=dict)
    gen_allow: dict[str, Decision] = field(default_factory=dict)
    rule_count: int = 0


def make_keys(rng: random.Random, count: int) -> list[str]:
    keys: set[str] = set()
    while len(keys) < count:
        keys.add(f"k{rng.getrandbits(64):016x}")
    return sorted(keys)


#: Blocked blocks are drawn from 128.0.0.0/2 (one per /16, so they never overlap) and from
#: 2001:db8:b000::/36; "clean" client addresses are drawn from outside both.
_BLOCK_SPACE4 = ipaddress.IPv4Network("128.0.0.0/2")
_BLOCK_SPACE6 = ipaddress.IPv6Network("2001:db8:b000::/36")
_REFERENCE_BLOCKED = ("198.51.100.0/24", "203.0.113.0/25", "2001:db8:bad::/48")


def make_blocked(rng: random.Random, count: int) -> list[str]:
    """``count`` random, non-overlapping CIDR blocks: the reference three, then generated ones
    (nine in ten IPv4, prefix /16 to /28; the rest IPv6 /48 to /64)."""
    blocks = list(_REFERENCE_BLOCKED[:count])
    extra = count - len(blocks)
    if extra <= 0:
        return blocks
    n6 = extra // 10
    n4 = extra - n6
    base4 = int(_BLOCK_SPACE4.network_address)
    for slot in rng.sample(range(2**14), n4):  # 16,384 /16 slots in the /2
        prefix = rng.randint(16, 28)
        offset = rng.randrange(2 ** (prefix - 16)) << (32 - prefix)
        first = base4 + (slot << 16) + offset
        blocks.append(f"{ipaddress.IPv4Address(first)}/{prefix}")
    base6 = int(_BLOCK_SPACE6.network_address)
    for slot in rng.sample(range(2**12), n6):  # 4,096 /48 slots in the /36
        prefix = rng.randint(48, 64)
        offset = rng.randrange(2 ** (prefix - 48)) << (128 - prefix)
        first = base6 + (slot << 80) + offset
        blocks.append(f"{ipaddress.IPv6Address(first)}/{prefix}")
    return blocks


def _other_rule(i: int, rng: random.Random) -> str:
    """A rule no timed event can reach: another app, another action or another vendor."""
    a, b = rng.randrange(256), rng.randrange(256)
    kind = i % 6
    if kind == 0:
        return (
            f"rule gen_other_{i} {{ on publish app gapp{i}\n"
            f"  allow if params.key in keys and client.ip in [172.{16 + a % 16}.{b}.0/24] }}"
        )
    if kind == 1:
        return (
            f"rule gen_other_{i} {{ on play app gapp{i}\n"
            f'  deny "gen {i}" if not (stream.name matches "^g{i}-[a-z]+$") }}'
        )
    if kind == 2:
        return (
            f"rule gen_other_{i} {{ on update, publish app gapp{i}, gapp{i + 1}\n"
            f'  allow if params.token == "tok-{i}" and now in showtime }}'
        )
    if kind == 3:
        # Loopback never reaches a streaming server's webhook, so this never matches.
        return (
            f"rule gen_other_{i} {{ on disconnect, record_done\n"
            f'  deny "gen {i}" if client.ip in [127.{a}.0.0/16] }}'
        )
    if kind == 4:
        return (
            f"rule gen_other_{i} {{ on publish, play from {OTHER_VENDOR}\n"
            f'  deny "gen {i}" if stream.name startswith "x{i}" }}'
        )
    return (
        f"rule gen_other_{i} {{ on play app gapp{i}\n"
        f'  allow if params.tier in ["t{a}", "t{b}"] or client.ip in office }}'
    )


def generated_rules(
    count: int, extra: str, rng: random.Random
) -> tuple[str, dict[str, Decision], dict[str, Decision]]:
    """Policy text for ``count`` extra rules, and (for ``same``) what the floor needs to know."""
    lines = ["", "# Generated by benchmarks/decision_speed.py."]
    gen_deny: dict[str, Decision] = {}
    gen_allow: dict[str, Decision] = {}
    for i in range(count):
        if extra == "other":
            lines.append(_other_rule(i, rng))
        elif i % 2 == 0:
            name, reason, stream = f"gen_deny_{i}", f"gen {i}", f"forbidden-{i}"
            lines.append(
                f"rule {name} {{ on publish, play\n"
                f'  deny "{reason}" if stream.name == "{stream}" }}'
            )
            gen_deny[stream] = Decision(Effect.DENY, reason, name)
        else:
            name, key = f"gen_allow_{i}", f"guest-{i}"
            lines.append(f'rule {name} {{ on publish, play\n  allow if params.key == "{key}" }}')
            gen_allow[key] = Decision(Effect.ALLOW, f"allowed by rule {name}", name)
    return "\n".join(lines) + "\n", gen_deny, gen_allow


def write_case(case: Case, root: Path, seed: int) -> PolicyData:
    rng = random.Random(f"{seed}:{case.keys}:{case.cidrs}")
    directory = root / re.sub(r"\W+", "_", case.name)
    directory.mkdir(parents=True)
    # The smallest case uses the shipped keys file; larger ones generate theirs.
    shipped = _read_list(REFERENCE_DIR / KEYS_FILE)
    keys = shipped if case.keys == len(shipped) else make_keys(rng, case.keys)
    blocked = make_blocked(rng, case.cidrs)
    (directory / KEYS_FILE).write_text("\n".join(keys) + "\n", encoding="utf-8")
    (directory / BLOCKED_FILE).write_text("\n".join(blocked) + "\n", encoding="utf-8")
    text = (REFERENCE_DIR / POLICY_NAME).read_text(encoding="utf-8")
    extra = case.rules - REFERENCE_RULES
    gen_deny: dict[str, Decision] = {}
    gen_allow: dict[str, Decision] = {}
    if extra > 0:
        more, gen_deny, gen_allow = generated_rules(extra, case.extra, random.Random(seed))
        text += more
    (directory / POLICY_NAME).write_text(text, encoding="utf-8")
    return PolicyData(directory, keys, blocked, gen_deny, gen_allow, case.rules)


class _StubVendor(Vendor):
    """A vendor that only exists so that rules can say ``from <name>``; it serves nothing."""

    actions: ClassVar[frozenset[str]] = ACTIONS

    async def parse(self, request: Any, route: str) -> Event:
        raise NotImplementedError

    def render(self, decision: Decision, event: Event) -> Any:
        raise NotImplementedError

    def render_malformed(self, error: Any, route: str) -> Any:
        raise NotImplementedError


def bench_vendors() -> dict[str, Vendor]:
    vendors: dict[str, Vendor] = {}
    for name in (VENDOR, OTHER_VENDOR):
        cls = type(f"Stub_{name}", (_StubVendor,), {"name": name})
        vendors[name] = cls()
    return vendors


def compile_case(data: PolicyData) -> PolicySet:
    path = data.directory / POLICY_NAME
    source = path.read_text(encoding="utf-8")
    return compile_sources(
        [(str(path), source, data.directory)], vendors=bench_vendors(), functions={}, env={}
    )


# The floor: the reference policy written by hand --------------------------------------------------

_ZONE = ZoneInfo("Europe/Berlin")
_V4_MAPPED = bytes(10) + b"\xff\xff"
DEFAULT_DENY = Decision(Effect.DENY, "no rule allowed this request")
ACKNOWLEDGED = Decision(Effect.ACK, "notification acknowledged")


def _read_list(path: Path) -> list[str]:
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry:
            entries.append(entry)
    return entries


@dataclass(frozen=True)
class Ranges:
    """Disjoint integer ranges per address family, sorted by start, for bisect."""

    starts4: list[int]
    ends4: list[int]
    starts6: list[int]
    ends6: list[int]

    @classmethod
    def of(cls, cidrs: Sequence[str]) -> Ranges:
        spans: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
        for text in cidrs:
            net = ipaddress.ip_network(text)
            first = int(net.network_address)
            spans[net.version].append((first, first + net.num_addresses - 1))
        merged: dict[int, tuple[list[int], list[int]]] = {}
        for version, items in spans.items():
            starts: list[int] = []
            ends: list[int] = []
            for first, last in sorted(items):
                if ends and first <= ends[-1] + 1:
                    ends[-1] = max(ends[-1], last)
                else:
                    starts.append(first)
                    ends.append(last)
            merged[version] = (starts, ends)
        return cls(*merged[4], *merged[6])


def _decision(kind: str, rule: str, reason: str | None = None) -> Decision:
    if kind == "deny":
        return Decision(Effect.DENY, reason or f"denied by rule {rule}", rule)
    return Decision(Effect.ALLOW, reason or f"allowed by rule {rule}", rule)


def make_floor(data: PolicyData) -> Decide:
    """The policy in ``data.directory`` as one hand-written function ``(event, state) -> Decision``.

    It reads the data files itself (not through castgate) so that the agreement check also checks
    castgate's loaders. Each decision it returns is prebuilt, as castgate's are."""
    keys = frozenset(_read_list(data.directory / KEYS_FILE))
    blocked = Ranges.of(_read_list(data.directory / BLOCKED_FILE))
    studio = Ranges.of(["10.20.0.0/16", "10.21.0.0/16", "2001:db8:10::/48"])
    office = Ranges.of(["192.168.10.0/24", "192.168.11.0/24"])
    reserved = frozenset({"admin", "internal", "system", "test"})
    name_ok = re.compile(r"[a-z0-9_-]{1,64}").fullmatch  # RE2's `$` is \Z: no trailing newline
    gen_deny = data.gen_deny
    gen_allow = data.gen_allow
    zone = _ZONE
    local_time = datetime.fromtimestamp
    pton = socket.inet_pton
    af4, af6 = socket.AF_INET, socket.AF_INET6
    from_bytes = int.from_bytes
    notifications = NOTIFICATIONS

    d_blocklist = _decision("deny", "blocklist", "blocked network")
    d_bad_name = _decision("deny", "bad_name", "bad stream name")
    d_reserved = _decision("deny", "reserved_name", "reserved stream name")
    d_no_test = _decision("deny", "no_test_on_live", "test streams stay off live")
    d_needs_key = _decision("deny", "update_needs_key", "update without a key")
    d_studio_ingest = _decision("allow", "studio_ingest")
    d_office_ingest = _decision("allow", "office_ingest")
    d_keyed_ingest = _decision("allow", "keyed_ingest")
    d_weekend_ingest = _decision("allow", "weekend_ingest")
    d_keyed_update = _decision("allow", "keyed_update")
    d_studio_update = _decision("allow", "studio_update")
    d_public_play = _decision("allow", "public_play")
    d_token_play = _decision("allow", "token_play")
    d_premium_play = _decision("allow", "premium_play")
    d_vod_play = _decision("allow", "vod_play")
    d_studio_play = _decision("allow", "studio_play")
    d_connect = _decision("allow", "connect_known")
    d_discover = _decision("allow", "discover_studio")
    ack_flagged = Decision(Effect.ACK, "blocked network", "done_flag_blocked", flagged=True)
    ack_done = Decision(Effect.ACK, "allowed by rule done_ack", "done_ack")

    b4s, b4e, b6s, b6e = blocked.starts4, blocked.ends4, blocked.starts6, blocked.ends6
    s4s, s4e, s6s, s6e = studio.starts4, studio.ends4, studio.starts6, studio.ends6
    o4s, o4e = office.starts4, office.ends4
    nothing: list[int] = []

    def inside(starts: list[int], ends: list[int], value: int) -> bool:
        i = bisect_right(starts, value)
        return i > 0 and value <= ends[i - 1]

    def decide(e: Event, s: Any) -> Decision:
        action = e.action
        # The client address as (family ranges, integer), once per event.
        text = e.client_ip
        value = -1
        bs, be, ss, se, os_, oe = nothing, nothing, nothing, nothing, nothing, nothing
        if ":" in text:
            try:
                packed = pton(af6, text)
            except OSError:
                pass
            else:
                if packed[:12] == _V4_MAPPED:
                    value = from_bytes(packed[12:], "big")
                    bs, be, ss, se, os_, oe = b4s, b4e, s4s, s4e, o4s, o4e
                else:
                    value = from_bytes(packed, "big")
                    bs, be, ss, se = b6s, b6e, s6s, s6e
        elif text:
            try:
                value = from_bytes(pton(af4, text), "big")
            except OSError:
                pass
            else:
                bs, be, ss, se, os_, oe = b4s, b4e, s4s, s4e, o4s, o4e

        if action == "publish":
            if inside(bs, be, value):
                return d_blocklist
            name = e.stream
            if not (name and name_ok(name)):
                return d_bad_name
            if name in reserved:
                return d_reserved
            app = e.app
            if app == "live" and name.startswith("test-"):
                return d_no_test
            if gen_deny and name in gen_deny:
                return gen_deny[name]
            if app == "live":
                if inside(ss, se, value):
                    return d_studio_ingest
                if e.params.get("key") in keys:
                    local = local_time(e.time, zone)
                    day = local.weekday()
                    second = local.hour * 3600 + local.minute * 60 + local.second
                    if day < 5 and 21600 <= second < 84600:
                        return d_keyed_ingest
                    if day >= 5 and 28800 <= second < 72000:
                        return d_weekend_ingest
            elif app == "studio":
                if inside(ss, se, value):
                    return d_studio_ingest
                if inside(os_, oe, value):
                    local = local_time(e.time, zone)
                    second = local.hour * 3600 + local.minute * 60 + local.second
                    if local.weekday() < 5 and 21600 <= second < 84600:
                        return d_office_ingest
            if gen_allow:
                found = gen_allow.get(e.params.get("key"))  # type: ignore[arg-type]
                if found is not None:
                    return found
            return DEFAULT_DENY

        if action == "play":
            if inside(bs, be, value):
                return d_blocklist
            name = e.stream
            if name in reserved:
                return d_reserved
            if gen_deny and name in gen_deny:
                return gen_deny[name]
            app = e.app
            params = e.params
            if app == "public":
                return d_public_play
            if app == "live":
                token = params.get("token")
                if isinstance(token, str) and token.startswith("v1.") and len(token) >= 16:
                    return d_token_play
            elif app == "premium":
                tier = params.get("tier")
                if tier == "gold" or tier == "platinum":
                    return d_premium_play
            elif app == "vod" and (params.get("key") in keys or inside(os_, oe, value)):
                return d_vod_play
            if inside(ss, se, value):
                return d_studio_play
            if gen_allow:
                found = gen_allow.get(params.get("key"))  # type: ignore[arg-type]
                if found is not None:
                    return found
            return DEFAULT_DENY

        if action == "update":
            if inside(bs, be, value):
                return d_blocklist
            key = e.params.get("key")
            if key is None or key == "":
                return d_studio_update if inside(ss, se, value) else d_needs_key
            if key in keys:
                return d_keyed_update
            if inside(ss, se, value):
                return d_studio_update
            return DEFAULT_DENY

        if action == "connect":
            if inside(bs, be, value):
                return d_blocklist
            if inside(ss, se, value) or inside(os_, oe, value) or e.params.get("key") in keys:
                return d_connect
            return DEFAULT_DENY

        if action == "publish_done" or action == "play_done":
            return ack_flagged if inside(bs, be, value) else ack_done

        if action == "discover":
            return d_discover if inside(ss, se, value) else DEFAULT_DENY

        return ACKNOWLEDGED if action in notifications else DEFAULT_DENY

    return decide


# Events -------------------------------------------------------------------------------------------

#: Monday 2026-03-23 00:00 in Berlin; events fall in the two weeks after, across the DST change.
_EPOCH = datetime(2026, 3, 23, tzinfo=_ZONE).timestamp()
_SPAN = 14 * 86400


class EventMaker:
    """Seeded events for one case: clean, studio, office and blocked addresses; good, bad, missing
    keys; good and bad names; every action the reference policy names."""

    def __init__(self, data: PolicyData, seed: int) -> None:
        self.rng = random.Random(seed)
        self.keys = data.keys
        self.blocked = data.blocked
        self.gen_deny = sorted(data.gen_deny)
        self.gen_allow = sorted(data.gen_allow)

    # pieces

    def clean_ip(self) -> str:
        rng = self.rng
        if rng.random() < 0.15:
            return str(ipaddress.IPv6Address((0x2A00 << 112) | rng.getrandbits(100)))
        # 11.0.0.0 - 63.255.255.255: outside the blocked space, studio and office.
        return str(ipaddress.IPv4Address(rng.randrange(11 << 24, 64 << 24)))

    def studio_ip(self) -> str:
        rng = self.rng
        if rng.random() < 0.2:
            base = int(ipaddress.IPv6Address("2001:db8:10::"))
            return str(ipaddress.IPv6Address(base + rng.getrandbits(80)))
        return f"10.{rng.choice((20, 21))}.{rng.randrange(256)}.{rng.randrange(1, 255)}"

    def office_ip(self) -> str:
        return f"192.168.{self.rng.choice((10, 11))}.{self.rng.randrange(1, 255)}"

    def blocked_ip(self) -> str:
        net = ipaddress.ip_network(self.rng.choice(self.blocked))
        return str(net.network_address + self.rng.randrange(net.num_addresses))

    def some_ip(self) -> str:
        roll = self.rng.random()
        if roll < 0.15:
            return self.studio_ip()
        if roll < 0.25:
            return self.office_ip()
        if roll < 0.35:
            return self.blocked_ip()
        if roll < 0.38:
            return self.rng.choice(("", "not-an-ip", "::ffff:10.20.1.2", "::ffff:198.51.100.7"))
        return self.clean_ip()

    def good_name(self) -> str:
        rng = self.rng
        return rng.choice(("cam", "show", "match", "room", "feed")) + f"-{rng.randrange(10_000)}"

    def bad_name(self) -> str:
        return self.rng.choice(
            ("Cam-1", "cam 1", "cam\n", "", "x" * 65, "caméra", "show.1", "a/b", "test-x\n")
        )

    def some_name(self) -> str:
        roll = self.rng.random()
        if roll < 0.7:
            return self.good_name()
        if roll < 0.8:
            return self.bad_name()
        if roll < 0.88:
            return self.rng.choice(("admin", "internal", "system", "test"))
        return f"test-{self.rng.randrange(100)}"

    def good_key(self) -> str:
        return self.rng.choice(self.keys)

    def some_params(self) -> dict[str, str]:
        rng = self.rng
        params: dict[str, str] = {}
        roll = rng.random()
        if roll < 0.45:
            params["key"] = self.good_key()
        elif roll < 0.6:
            params["key"] = f"k{rng.getrandbits(64):016x}"
        elif roll < 0.65:
            params["key"] = ""
        roll = rng.random()
        if roll < 0.3:
            params["token"] = "v1." + "".join(rng.choices("abcdef0123456789", k=rng.randint(8, 24)))
        elif roll < 0.4:
            params["token"] = rng.choice(("v2.abcdefabcdefabcdef", "", "v1."))
        if rng.random() < 0.3:
            params["tier"] = rng.choice(("gold", "platinum", "silver", ""))
        return params

    def event(self, action: str, app: str, stream: str, params: dict[str, str], ip: str) -> Event:
        rng = self.rng
        return Event(
            vendor=VENDOR,
            action=action,
            app=app,
            stream=stream,
            params=params,
            client_ip=ip,
            client_port=rng.randrange(1024, 65536),
            session_id=str(rng.getrandbits(32)),
            node="edge-1",
            time=_EPOCH + rng.random() * _SPAN,
        )

    # mixes

    def timed_mix(self, count: int) -> list[Event]:
        """The timed events: realistic proportions of publish, play, update, connect and done,
        with enough good keys, studio addresses and times in the windows to make about half of
        the decisions allows."""
        rng = self.rng
        events = []
        for _ in range(count):
            roll = rng.random()
            if roll < 0.35:
                app = rng.choice(("live", "live", "live", "studio", "other"))
                kind = rng.random()
                if kind < 0.2:
                    ip, params = self.studio_ip(), {}
                elif kind < 0.55:
                    ip, params = self.clean_ip(), {"key": self.good_key()}
                elif kind < 0.65:
                    ip, params = self.office_ip(), {}
                elif kind < 0.75:
                    ip, params = self.blocked_ip(), {"key": self.good_key()}
                else:
                    ip, params = self.clean_ip(), self.some_params()
                name = self.good_name() if rng.random() < 0.8 else self.some_name()
                events.append(self.event("publish", app, name, params, ip))
            elif roll < 0.7:
                app = rng.choice(("public", "live", "live", "premium", "vod", "events"))
                events.append(
                    self.event("play", app, self.some_name(), self.some_params(), self.some_ip())
                )
            elif roll < 0.82:
                ip = self.studio_ip() if rng.random() < 0.2 else self.some_ip()
                params = self.some_params()
                events.append(self.event("update", "live", self.good_name(), params, ip))
            elif roll < 0.9:
                events.append(self.event("connect", "live", "", self.some_params(), self.some_ip()))
            else:
                action = rng.choice(("publish_done", "play_done"))
                events.append(self.event(action, "live", self.good_name(), {}, self.some_ip()))
        return events

    def check_mix(self, count: int) -> list[Event]:
        """Untimed events for the agreement check only: every action, random apps, names, keys,
        addresses, and the values generated rules test for."""
        rng = self.rng
        apps = ("live", "studio", "public", "premium", "vod", "events", "", "gapp3", "Live")
        events = []
        for _ in range(count):
            action = rng.choice(sorted(ACTIONS))
            name = self.some_name()
            params = self.some_params()
            if self.gen_deny and rng.random() < 0.1:
                name = rng.choice(self.gen_deny)
            if self.gen_allow and rng.random() < 0.1:
                params["key"] = rng.choice(self.gen_allow)
            ip = self.some_ip()
            events.append(self.event(action, rng.choice(apps), name, params, ip))
        return events


def check_agreement(policy: PolicySet, floor: Decide, events: Sequence[Event]) -> int:
    """Assert castgate and the floor decide every event the same; return how many were checked."""
    for event in events:
        ours = policy.decide(event, EMPTY_STATE)
        theirs = floor(event, EMPTY_STATE)
        assert ours == theirs, (
            f"castgate and the floor disagree on {event!r}:\n castgate: {ours!r}\n floor:    "
            f"{theirs!r}"
        )
    return len(events)


def classify(policy: PolicySet, events: Sequence[Event]) -> dict[str, list[Event]]:
    by_effect: dict[str, list[Event]] = {"allowed": [], "denied": [], "acknowledged": []}
    names = {Effect.ALLOW: "allowed", Effect.DENY: "denied", Effect.ACK: "acknowledged"}
    for event in events:
        by_effect[names[policy.decide(event, EMPTY_STATE).effect]].append(event)
    return {k: v for k, v in by_effect.items() if v}


# Timing -------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of ``values``."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def timer_overhead_ns(samples: int = 20_000) -> float:
    """Median cost of two back-to-back ``perf_counter_ns`` calls, what per-call timing adds."""
    pc = time.perf_counter_ns
    gaps = []
    for _ in range(samples):
        t0 = pc()
        t1 = pc()
        gaps.append(t1 - t0)
    return statistics.median(gaps)


def empty_loop_ns(events: Sequence[Event], runs: int = 31) -> float:
    """Median time of the batch loop with no call in it, to subtract from each batch."""
    pc = time.perf_counter_ns
    spent = []
    for _ in range(runs):
        t0 = pc()
        for _event in events:
            pass
        spent.append(pc() - t0)
    return statistics.median(spent)


def time_batches(fns: Sequence[Decide], events: Sequence[Event], rounds: int) -> list[list[float]]:
    """Per-decision cost of each function, one value per batch (one pass over ``events``): the
    batch's time minus the empty loop's, divided by the number of events. Functions take turns
    inside each round, and the order flips every round, so drift in the machine's speed hits all
    of them alike."""
    pc = time.perf_counter_ns
    state = EMPTY_STATE
    n = len(events)
    loop = empty_loop_ns(events)
    means: list[list[float]] = [[] for _ in fns]
    order = list(range(len(fns)))
    for _ in range(rounds):
        for i in order:
            fn = fns[i]
            t0 = pc()
            for event in events:
                fn(event, state)
            t1 = pc()
            means[i].append((t1 - t0 - loop) / n)
        order.reverse()
    return means


def time_calls(fns: Sequence[Decide], events: Sequence[Event], rounds: int) -> list[list[float]]:
    """Per-call cost of each function on each event, minus the timer's own overhead; same
    interleaving as :func:`time_batches`."""
    pc = time.perf_counter_ns
    state = EMPTY_STATE
    overhead = timer_overhead_ns()
    samples: list[list[float]] = [[] for _ in fns]
    order = list(range(len(fns)))
    for _ in range(rounds):
        for i in order:
            fn = fns[i]
            out = samples[i]
            append = out.append
            for event in events:
                t0 = pc()
                fn(event, state)
                t1 = pc()
                append(t1 - t0 - overhead)
        order.reverse()
    return samples


def summarize(batch: Sequence[float], calls: Sequence[float]) -> dict[str, float]:
    return {
        "batch_median_ns": statistics.median(batch),
        "batch_p99_ns": percentile(batch, 99),
        "call_median_ns": statistics.median(calls),
        "call_p99_ns": percentile(calls, 99),
        "batches": len(batch),
        "calls": len(calls),
    }


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextlib.contextmanager
def _quiet_gc() -> Iterator[None]:
    """Collect before timing so one case's garbage is not charged to the next; GC stays on."""
    gc.collect()
    yield


# Compile and load times ---------------------------------------------------------------------------


def compile_rule_text(i: int, rng: random.Random) -> str:
    """One of six rule shapes for the compile benchmark: IP lists, regexes, equality, windows,
    prefix tests, `or` of lists; over 500 apps and four actions."""
    app = f"a{i % 500}"
    x, y = rng.randrange(256), rng.randrange(256)
    kind = i % 6
    if kind == 0:
        return (
            f"rule c{i} {{ on publish app {app}\n"
            f"  allow if client.ip in [10.{x}.{y}.0/24, 2001:db8:{i:x}::/48] }}"
        )
    if kind == 1:
        return (
            f"rule c{i} {{ on play app {app}\n"
            f'  deny "c{i}" if not (stream.name matches "^c{i}_[a-z0-9]{{1,32}}$") }}'
        )
    if kind == 2:
        return (
            f"rule c{i} {{ on publish, update app {app}\n"
            f'  allow if params.key == "key-{i}" and now in showtime }}'
        )
    if kind == 3:
        return (
            f"rule c{i} {{ on play\n"
            f'  allow if params.token startswith "t{i}." and len(params.token) > 10 }}'
        )
    if kind == 4:
        return (
            f"rule c{i} {{ on connect\n"
            f'  deny "c{i}" if client.ip in [198.{x}.{y}.0/24] or params.key in keys }}'
        )
    return (
        f"rule c{i} {{ on update app {app}\n"
        f'  allow if params.tier in ["gold-{i}", "silver-{i}"] and client.ip in studio }}'
    )


def compile_benchmark(sizes: Sizes, root: Path, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    directory = root / "compile"
    directory.mkdir()
    (directory / KEYS_FILE).write_text("\n".join(make_keys(rng, 10)) + "\n", encoding="utf-8")
    header = (
        'let keys = lines("stream-keys.txt")\n'
        "let studio = [10.20.0.0/16, 2001:db8:10::/48]\n"
        'let showtime = weekdays mon..fri 06:00..23:30 "Europe/Berlin"\n'
    )
    text = header + "\n".join(compile_rule_text(i, rng) for i in range(sizes.compile_rules))
    path = directory / "many.policy"
    path.write_text(text, encoding="utf-8")
    vendors = bench_vendors()
    event = Event(VENDOR, "publish", "a7", "c7_x", {"key": "key-8"}, "10.1.2.3", time=_EPOCH)

    def compile_now() -> PolicySet:
        return compile_sources([(str(path), text, directory)], vendors=vendors, functions={})

    totals, paused, first_decisions = [], [], []
    for _ in range(sizes.compile_runs):
        gc.collect()
        t0 = time.perf_counter()
        policy = compile_now()
        totals.append(time.perf_counter() - t0)
        # The index of rules by (vendor, action, app) is built on the first decision for each
        # (vendor, action): time that first call, which a request pays after every reload.
        t0 = time.perf_counter()
        policy.decide(event, EMPTY_STATE)
        first_decisions.append(time.perf_counter() - t0)
        del policy
        # The same with the cyclic garbage collector paused around the call (see the README).
        with _gc_paused():
            t0 = time.perf_counter()
            compile_now()
            paused.append(time.perf_counter() - t0)
    # Stage by stage, with the functions compile_sources calls, the collector paused so that each
    # stage shows its own cost and not the collections its garbage triggers.
    with _gc_paused():
        t0 = time.perf_counter()
        parsed = parse_policy(text, str(path))
        t1 = time.perf_counter()
        checked = check_policies([(parsed, directory)], vendors=vendors, functions={}, env={})
        t2 = time.perf_counter()
        compile_rules(checked)
        t3 = time.perf_counter()
    del parsed, checked
    result: dict[str, Any] = {
        "rules": sizes.compile_rules,
        "runs": sizes.compile_runs,
        "compile_s": statistics.median(totals),
        "compile_gc_paused_s": statistics.median(paused),
        "parse_s": t1 - t0,
        "check_s": t2 - t1,
        "closures_s": t3 - t2,
        "first_decision_s": statistics.median(first_decisions),
    }

    # The index's worst case: every rule names its own app. The first decision builds the
    # candidates of every app named for the event's (vendor, action).
    distinct = "\n".join(
        f'rule app_{i} {{ on publish app app{i}  allow if params.key == "k{i}" }}'
        for i in range(sizes.compile_rules)
    )
    with _gc_paused():
        policy = compile_sources(
            [("apps.policy", distinct, directory)], vendors=vendors, functions={}
        )
    t0 = time.perf_counter()
    policy.decide(Event(VENDOR, "publish", "app7", params={"key": "k7"}), EMPTY_STATE)
    result["first_decision_distinct_apps_s"] = time.perf_counter() - t0
    del policy

    # Data files: a lines() file of load_keys keys and a cidrs() file of load_cidrs blocks.
    (directory / "big-keys.txt").write_text(
        "\n".join(make_keys(rng, sizes.load_keys)) + "\n", encoding="utf-8"
    )
    (directory / "big-blocked.txt").write_text(
        "\n".join(make_blocked(rng, sizes.load_cidrs)) + "\n", encoding="utf-8"
    )
    for label, function, file_name in (
        ("keys", "lines", "big-keys.txt"),
        ("cidrs", "cidrs", "big-blocked.txt"),
    ):
        field_name = "params.key" if function == "lines" else "client.ip"
        source = (
            f'let data = {function}("{file_name}")\n'
            f"rule r {{ on publish allow if {field_name} in data }}\n"
        )
        runs = []
        for _ in range(max(3, sizes.compile_runs)):
            gc.collect()
            t0 = time.perf_counter()
            compile_sources([("load.policy", source, directory)], vendors=vendors, functions={})
            runs.append(time.perf_counter() - t0)
        result[f"load_{label}_count"] = sizes.load_keys if label == "keys" else sizes.load_cidrs
        result[f"load_{label}_s"] = statistics.median(runs)
        # The load function alone (read, hash, split, build the set or ranges).
        alone = []
        for _ in range(3):
            gc.collect()
            context = LoadContext(directory, directory, {})
            t0 = time.perf_counter()
            BUILTINS[function].impl(context, file_name)
            alone.append(time.perf_counter() - t0)
        result[f"load_{label}_function_s"] = statistics.median(alone)
    return result


# Running ------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


@dataclass
class Prepared:
    case: Case
    policy: PolicySet
    floor: Decide
    classes: dict[str, list[Event]]
    checked: int
    compile_s: float


def prepare(case: Case, sizes: Sizes, root: Path, seed: int) -> Prepared:
    data = write_case(case, root, seed)
    t0 = time.perf_counter()
    policy = compile_case(data)
    compile_s = time.perf_counter() - t0
    floor = make_floor(data)
    maker = EventMaker(data, seed)
    timed = maker.timed_mix(sizes.timed_events)
    checked = check_agreement(policy, floor, timed)
    checked += check_agreement(policy, floor, maker.check_mix(sizes.check_events))
    classes = classify(policy, timed)
    classes["mix"] = timed
    return Prepared(case, policy, floor, classes, checked, compile_s)


def time_case(prepared: Prepared, sizes: Sizes) -> dict[str, Any]:
    fns: list[Decide] = [prepared.policy.decide, prepared.floor]
    out: dict[str, Any] = {}
    for label, events in prepared.classes.items():
        with _quiet_gc():
            # Warm both (and castgate's lazily built index) before the clock starts; the warm-up
            # pass also sizes the run: slow cases (hundreds of rules visited) get fewer rounds.
            spent = []
            for fn in fns:
                t0 = time.perf_counter()
                for event in events:
                    fn(event, EMPTY_STATE)
                spent.append(time.perf_counter() - t0)
            batch_rounds, call_rounds = _rounds(sizes, max(spent))
            batches = time_batches(fns, events, batch_rounds)
            calls = time_calls(fns, events, call_rounds)
        out[label] = {
            "events": len(events),
            "castgate": summarize(batches[0], calls[0]),
            "floor": summarize(batches[1], calls[1]),
        }
    return out


def _rounds(sizes: Sizes, pass_s: float) -> tuple[int, int]:
    """Batch and per-call rounds: as configured, but at most about ``sizes.budget_s`` seconds of
    each, and never fewer than ``sizes.min_rounds``."""
    fit = max(sizes.min_rounds, int(sizes.budget_s / max(pass_s, 1e-9)))
    return min(sizes.batch_rounds, fit), min(sizes.call_rounds, fit)


def median_of(dicts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Field-wise median of equally shaped nested dicts of numbers."""
    first = dicts[0]
    merged: dict[str, Any] = {}
    for key, value in first.items():
        if isinstance(value, dict):
            merged[key] = median_of([d[key] for d in dicts])
        elif isinstance(value, int | float) and not isinstance(value, bool):
            merged[key] = statistics.median(d[key] for d in dicts)
        else:
            merged[key] = value
    return merged


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
    with tempfile.TemporaryDirectory(prefix="castgate-bench-") as tmp:
        root = Path(tmp)
        prepared = []
        for case in sizes.cases:
            say(f"preparing {case.name}: {case.keys} keys, {case.cidrs} CIDRs, {case.rules} rules")
            prepared.append(prepare(case, sizes, root, seed))
        runs: list[dict[str, Any]] = []
        for repeat in range(repeats):
            timings: dict[str, Any] = {}
            for item in prepared:
                say(f"repeat {repeat + 1}/{repeats}: timing {item.case.name}")
                timings[item.case.name] = time_case(item, sizes)
            runs.append(timings)
        say("timing compilation and data file loads")
        compile_result = compile_benchmark(sizes, root, seed)

    timing = median_of(runs)
    small = sizes.cases[0].name
    cases = []
    for item in prepared:
        result = timing[item.case.name]
        for label, stats in result.items():
            cg, fl = stats["castgate"], stats["floor"]
            stats["ratio_to_floor"] = cg["batch_median_ns"] / fl["batch_median_ns"]
            base = timing[small].get(label)
            stats["ratio_to_small"] = (
                None
                if base is None
                else cg["batch_median_ns"] / base["castgate"]["batch_median_ns"]
            )
            # The floor's own ratio shows how much of castgate's is the machine or the data
            # (bigger sets cost the floor too), not the engine.
            stats["floor_ratio_to_small"] = (
                None if base is None else fl["batch_median_ns"] / base["floor"]["batch_median_ns"]
            )
        cases.append(
            {
                "name": item.case.name,
                "what": item.case.what,
                "keys": item.case.keys,
                "cidrs": item.case.cidrs,
                "rules": item.case.rules,
                "extra_rules": item.case.extra,
                "compile_s": item.compile_s,
                "events_checked": item.checked,
                "classes": result,
            }
        )
    checked = sum(c["events_checked"] for c in cases)
    return {
        "benchmark": "decision_speed",
        "quick": quick,
        "seed": seed,
        "repeats": repeats,
        "machine": machine(),
        "method": {
            "median": "median over batches of the mean cost per decision in a batch "
            "(one pass over the class's events, minus the empty loop)",
            "p99": "99th percentile of per-call timings, minus the timer's own overhead",
            "across_repeats": "every number is the median of its value over the repeats",
        },
        "agreement": {"events_checked": checked, "disagreements": 0, "agreed": True},
        "cases": cases,
        "compile": compile_result,
        "per_repeat": _per_repeat(runs),
        "targets": targets(cases, compile_result, small),
    }


def _per_repeat(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Each repeat's batch medians (castgate, floor) per case and class, to judge the noise."""
    out: dict[str, Any] = {}
    for case, classes in runs[0].items():
        out[case] = {
            label: {
                side: [run[case][label][side]["batch_median_ns"] for run in runs]
                for side in ("castgate", "floor")
            }
            for label in classes
        }
    return out


def targets(cases: list[dict[str, Any]], compile_result: dict[str, Any], small: str) -> dict:
    """Each target with the measured value and whether it is met."""
    by_name = {c["name"]: c for c in cases}
    reference = by_name[small]["classes"]
    decided = [label for label in ("allowed", "denied") if label in reference]
    out: dict[str, Any] = {}
    worst_median = max(reference[k]["castgate"]["batch_median_ns"] for k in decided)
    worst_p99 = max(reference[k]["castgate"]["call_p99_ns"] for k in decided)
    worst_ratio = max(reference[k]["ratio_to_floor"] for k in decided)
    out["median_le_2us"] = {"value_ns": worst_median, "met": worst_median <= TARGET_MEDIAN_NS}
    out["p99_le_5us"] = {"value_ns": worst_p99, "met": worst_p99 <= TARGET_P99_NS}
    out["floor_ratio_le_1_5"] = {"value": worst_ratio, "met": worst_ratio <= TARGET_FLOOR_RATIO}
    large = by_name.get("large")
    if large is not None:
        scale = max(large["classes"][k]["ratio_to_small"] for k in decided)
        out["large_ratio_le_2"] = {"value": scale, "met": scale <= TARGET_SCALE_RATIO}
    seconds = compile_result["compile_s"]
    out["compile_lt_1s"] = {
        "rules": compile_result["rules"],
        "value_s": seconds,
        "met": seconds < TARGET_COMPILE_S,
    }
    return out


# Reporting ----------------------------------------------------------------------------------------


def _us(ns: float) -> str:
    return f"{ns / 1000:.2f}"


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"castgate decision speed - {m['cpu']} ({m['cpus']} CPUs), Python {m['python']}, "
        f"{m['date']}, {results['repeats']} repeat(s){' (quick)' if results['quick'] else ''}",
        f"agreement: castgate and the floor agreed on all {results['agreement']['events_checked']}"
        " events",
        "",
        "times in microseconds per decision; med = median of batch means, p99 = per-call p99",
        f"{'case':<16} {'class':<13} {'n':>4} {'cg med':>7} {'cg p99':>7} {'fl med':>7}"
        f" {'fl p99':>7} {'cg/fl':>6} {'vs small':>8} {'(floor)':>7}",
    ]
    for case in results["cases"]:
        for label, stats in case["classes"].items():
            cg, fl = stats["castgate"], stats["floor"]
            ratio_small = stats["ratio_to_small"]
            floor_small = stats["floor_ratio_to_small"]
            lines.append(
                f"{case['name']:<16} {label:<13} {stats['events']:>4} "
                f"{_us(cg['batch_median_ns']):>7} {_us(cg['call_p99_ns']):>7} "
                f"{_us(fl['batch_median_ns']):>7} {_us(fl['call_p99_ns']):>7} "
                f"{stats['ratio_to_floor']:>6.2f} "
                f"{'' if ratio_small is None else f'{ratio_small:.2f}':>8} "
                f"{'' if floor_small is None else f'({floor_small:.2f})':>7}"
            )
    c = results["compile"]
    lines += [
        "",
        f"compile {c['rules']} rules: {c['compile_s']:.3f} s; with the GC paused "
        f"{c['compile_gc_paused_s']:.3f} s (parse {c['parse_s']:.3f}, check {c['check_s']:.3f}, "
        f"closures {c['closures_s']:.3f})",
        f"first decision after loading (index build): {c['first_decision_s'] * 1000:.1f} ms; "
        f"with {c['rules']} rules for {c['rules']} apps: "
        f"{c['first_decision_distinct_apps_s'] * 1000:.1f} ms",
        f"load {c['load_keys_count']} keys: {c['load_keys_s']:.3f} s "
        f"(lines() alone {c['load_keys_function_s']:.3f} s); "
        f"load {c['load_cidrs_count']} CIDRs: {c['load_cidrs_s']:.3f} s "
        f"(cidrs() alone {c['load_cidrs_function_s']:.3f} s)",
        "",
        "targets:",
    ]
    for name, target in results["targets"].items():
        value = {k: v for k, v in target.items() if k != "met"}
        lines.append(f"  {'MET   ' if target['met'] else 'MISSED'} {name}: {value}")
    return "\n".join(lines)


def markdown(results: dict[str, Any]) -> str:
    """The results table as Markdown, for benchmarks/README.md."""
    rows = [
        "| case | class | n | castgate med | castgate p99 | floor med | floor p99 | cg/fl "
        "| vs small (floor) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for case in results["cases"]:
        for label, stats in case["classes"].items():
            cg, fl = stats["castgate"], stats["floor"]
            ratio_small, floor_small = stats["ratio_to_small"], stats["floor_ratio_to_small"]
            versus = "" if ratio_small is None else f"{ratio_small:.2f} ({floor_small:.2f})"
            rows.append(
                f"| {case['name']} | {label} | {stats['events']} | {_us(cg['batch_median_ns'])} "
                f"| {_us(cg['call_p99_ns'])} | {_us(fl['batch_median_ns'])} "
                f"| {_us(fl['call_p99_ns'])} | {stats['ratio_to_floor']:.2f} | {versus} |"
            )
    c = results["compile"]
    rows += [
        "",
        "| compile and load | seconds |",
        "|---|---:|",
        f"| compile {c['rules']:,} rules (`compile_sources`) | {c['compile_s']:.2f} |",
        f"| the same, garbage collector paused | {c['compile_gc_paused_s']:.2f} |",
        f"| of which parse / check / closures | {c['parse_s']:.2f} / {c['check_s']:.2f} / "
        f"{c['closures_s']:.2f} |",
        f"| first decision after loading them (index build) | {c['first_decision_s']:.4f} |",
        f"| first decision, {c['rules']:,} rules for {c['rules']:,} apps "
        f"| {c['first_decision_distinct_apps_s']:.4f} |",
        f"| load {c['load_keys_count']:,} keys (`lines()`: compile / function alone) "
        f"| {c['load_keys_s']:.3f} / {c['load_keys_function_s']:.3f} |",
        f"| load {c['load_cidrs_count']:,} CIDRs (`cidrs()`: compile / function alone) "
        f"| {c['load_cidrs_s']:.3f} / {c['load_cidrs_function_s']:.3f} |",
    ]
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a few seconds")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--repeats", type=int, help="whole timing runs to take medians over")
    parser.add_argument("--seed", type=int, default=20260323)
    parser.add_argument("--silent", action="store_true", help="no progress lines on stderr")
    parser.add_argument(
        "--markdown", type=Path, help="read results from this JSON file and print Markdown tables"
    )
    args = parser.parse_args(argv)
    if args.markdown is not None:
        print(markdown(json.loads(args.markdown.read_text(encoding="utf-8"))))
        return 0
    progress = None if args.silent else (lambda m: print(m, file=sys.stderr, flush=True))
    results = run(quick=args.quick, repeats=args.repeats, seed=args.seed, progress=progress)
    print(render(results))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
