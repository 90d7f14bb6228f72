"""Candidate sets decided by generated functions: the same decisions as evaluating each rule's
closures one by one, for random policies over every shape the generated source writes out."""

from __future__ import annotations

import gc
import random
import weakref
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from castgate import Decision, Effect, Event, PolicyFunction, Vendor
from castgate.lang import compile_sources
from castgate.lang.functions import DependencyError
from castgate.lang.policyset import PolicySet
from castgate.state import EMPTY_STATE

from .test_policyset_index import EVERY_OUTCOME, EXTRA_FUNCTIONS

DEFAULT_DENY = Decision(Effect.DENY, "no rule allowed this request")
ACKNOWLEDGED = Decision(Effect.ACK, "notification acknowledged")

HEADER = (
    'let names = ["a", "b"]\n'
    'let named = lines("named.txt")\n'
    "let office = [192.168.10.0/24, 2001:db8::/32]\n"
    'let hours = weekdays mon..fri 06:00..18:00 "Europe/Berlin"\n'
    'let nights = weekdays sat 22:00..06:00 "Europe/Berlin"\n'
    'let there = weekdays mon..fri 09:00..17:00 "America/New_York"\n'
    "let limit = 3\n"
)


def _compile(
    text: str, directory: Path, vendors: dict[str, Vendor], functions: dict[str, PolicyFunction]
) -> PolicySet:
    (directory / "named.txt").write_text("a\nc\nA\n", encoding="utf-8")
    return compile_sources(
        [("p.policy", HEADER + text, directory)],
        vendors=vendors,
        functions={**functions, **EXTRA_FUNCTIONS},
        env={},
    )


def _by_closures(policy: PolicySet, event: Event) -> Decision | str:
    """The procedure of docs/policy-language.md, "How a decision is made", as plainly as it can be
    written: each candidate's condition closure in turn, denies first."""
    found = policy.candidates(event.vendor, event.action, event.app)
    decision = DEFAULT_DENY
    for rule in (*found.denies, *found.allows):
        try:
            if rule.condition is None or rule.condition(event, EMPTY_STATE):
                if rule.decision is not None:
                    decision = rule.decision
                else:
                    assert rule.response is not None
                    data = rule.response(event, EMPTY_STATE)
                    decision = Decision(Effect.ALLOW, rule.reason, rule.name, data)
                break
        except DependencyError:
            return "DependencyError"
        except Exception as err:
            text = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
            decision = Decision(
                Effect.DENY, f"rule {rule.name} failed: {text}", rule.name, failed=True
            )
            break
    if not found.notification:
        return decision
    if decision.rule is None:
        return ACKNOWLEDGED
    flagged = decision.effect is Effect.DENY
    return replace(decision, effect=Effect.ACK, response={}, flagged=flagged)


def _generated(policy: PolicySet, event: Event) -> Decision | str:
    try:
        decision = policy.decide(event, EMPTY_STATE)
    except DependencyError:
        return "DependencyError"
    finally:
        # the generated function decided, not a walk over closures
        assert policy.candidates(event.vendor, event.action, event.app).run is not None
    return decision


# Random policies ---------------------------------------------------------------------------------

TEXT = ["a", "b", "c", "5", "A", "", "ab-1", "bé"]
FIELDS = [
    "stream.name",
    "app",
    "node",
    "role",
    "session.id",
    "vendor",
    "params.key",
    "params.n",
    "raw.x",
    "params.a.b",
]


def _text(rng: random.Random) -> str:
    return f'"{rng.choice(TEXT)}"'


def _list(rng: random.Random) -> str:
    return "[" + ", ".join(f'"{v}"' for v in rng.sample(TEXT, rng.randint(1, 3))) + "]"


def _atom(rng: random.Random) -> str:
    field = rng.choice(FIELDS)
    return rng.choice(
        [
            f"{field} == {_text(rng)}",
            f"{_text(rng)} == {field}",
            f"{field} != {_text(rng)}",
            f"{field} == {rng.choice(FIELDS)}",
            f"{rng.choice(['params.key', 'raw.x', 'params.a.b'])} == 5",
            f"{field} in {_list(rng)}",
            f"{field} not in {_list(rng)}",
            f"{field} in names",
            f"{field} in named",
            f"{field} startswith {_text(rng)}",
            f"{field} endswith {_text(rng)}",
            f"{field} contains {_text(rng)}",
            f"{field} startswith {rng.choice(FIELDS)}",
            f'{field} matches "^[a-c0-9]+$"',
            f'{field} matches "b"',
            f'{field} matches "(b|5)$"',  # outside what Python's re runs: RE2 for every text
            f"has({field})",
            f"len({field}) >= 2",
            f"lower({field}) == {_text(rng)}",
            f"params.n > {rng.choice(['3', 'limit', '2.5'])}",
            f"params.n <= {field}",
            "client.ip in office",
            "client.ip not in office",
            "client.ip in [10.0.0.0/8]",
            "params.ip in office",
            'client.ip == "192.168.10.1"',
            "client.port > 1000",
            "now in hours",
            "now in nights",
            "now not in there",
            "params.flag",
            "raw.flag and params.flag",
            "test.fail(stream.name)",
            "pick.fail(stream.name)",
            "dep.fail(stream.name)",
        ]
    )


def _condition(rng: random.Random, depth: int = 0) -> str:
    shape = rng.randrange(8 if depth < 2 else 3)
    if shape < 3:
        return _atom(rng)
    if shape < 5:
        op = rng.choice(["and", "or"])
        return f"({_condition(rng, depth + 1)} {op} {_condition(rng, depth + 1)})"
    if shape == 5:
        return f"not ({_condition(rng, depth + 1)})"
    # a run of guarded rules' shape, and an `and` after it
    return f"{rng.choice(FIELDS[:7])} == {_text(rng)} and {_condition(rng, depth + 1)}"


def _random_policy(rng: random.Random) -> str:
    rules = []
    for i in range(rng.randint(1, 14)):
        actions = ", ".join(rng.sample(["publish", "play", "publish_done"], rng.randint(1, 3)))
        app = rng.choice(["", "", " app live", " app other"])
        effect = rng.choice(
            [
                f'deny "reason {i}"',
                "allow",
                f'allow with {{ rename: "r{i}" }}',
                "allow with { rename: stream.name }",
                "allow with { limit: len(params.key) }",
            ]
        )
        condition = None if rng.random() < 0.1 else _condition(rng)
        test = "" if condition is None else f" if {condition}"
        rules.append(f"rule r{i} {{ on {actions} from testvendor{app}  {effect}{test} }}")
    return "\n".join(rules)


#: Vendor data: text, numbers equal to numeric text, flags, lists, objects, nothing; and a lone
#: surrogate, which a regex cannot encode (the rule fails).
VALUES: list[Any] = [*TEXT, "zz", "5.0", "\ud800", 5, 5.0, 2, True, False, ["a"], {"b": "a"}, None]
ADDRESSES = ["192.168.10.1", "10.0.0.1", "", "::ffff:192.168.10.7", "2001:db8::1", "not-an-ip"]
#: Monday 2026-03-23 10:00 and 20:00 in Berlin, and a Sunday.
TIMES = [1774256400.0, 1774292400.0, 1774170000.0, 1774738800.0, 1e20]  # 1e20: no such year


def _random_event(rng: random.Random) -> Event:
    params: dict[str, Any] = {}
    for key in ("key", "n", "flag", "ip"):
        if rng.random() < 0.7:
            params[key] = rng.choice([*VALUES, *ADDRESSES] if key == "ip" else VALUES)
    if rng.random() < 0.5:
        params["a"] = {"b": rng.choice(VALUES)} if rng.random() < 0.8 else "a"
    raw = {k: rng.choice(VALUES) for k in ("x", "flag") if rng.random() < 0.6}
    return Event(
        "testvendor",
        rng.choice(["publish", "play", "publish_done"]),
        rng.choice(["live", "other", "", *TEXT]),
        rng.choice([*TEXT, "zz", "\ud800"]),
        params,
        rng.choice(ADDRESSES),
        rng.choice([None, 80, 8080]),
        session_id=rng.choice(TEXT),
        node=rng.choice(TEXT),
        role=rng.choice(["", "publisher"]),
        time=rng.choice(TIMES),
        raw=raw,
    )


#: What the generated source writes out for the shapes above, rather than calling a closure.
WRITTEN_OUT = (
    "_parse_address(",  # client.ip in ...
    ".isascii()",  # matches, by Python's re
    ".encode(",  # matches, by RE2
    "e.params.get(",  # params.x
    "(e.stream or _M)",  # text fields
    "(e.time, ",  # now in ..., the time converted once per zone
    " is True)",  # vendor data as a condition
)


def test_generated_functions_decide_as_the_closures(
    tmp_path: Path, vendors: dict[str, Vendor], functions: dict[str, PolicyFunction]
) -> None:
    rng = random.Random(20260324)
    seen: set[tuple[Any, ...]] = set()
    sources: set[str] = set()
    for _ in range(250):
        text = _random_policy(rng)
        policy = _compile(text, tmp_path, vendors, functions)
        for _ in range(30):
            event = _random_event(rng)
            expected = _by_closures(policy, event)
            assert _generated(policy, event) == expected, f"{text}\n{event}"
            sources.add(policy.candidates(event.vendor, event.action, event.app).source)
            if isinstance(expected, str):
                seen.add((expected,))
            else:
                seen.add((expected.effect, expected.failed, expected.flagged))
    assert seen >= EVERY_OUTCOME
    written = "".join(sources)
    assert all(piece in written for piece in WRITTEN_OUT)


def test_a_long_run_of_guarded_rules_is_looked_up_from_the_generated_function(
    tmp_path: Path, vendors: dict[str, Vendor], functions: dict[str, PolicyFunction]
) -> None:
    rules = "\n".join(
        f'rule r{i} {{ on play  deny "{i}" if params.key == "s{i}" and params.n > {i % 3} }}'
        for i in range(40)
    )
    policy = _compile(rules + "\nrule last { on play  allow }", tmp_path, vendors, functions)
    rng = random.Random(7)
    for _ in range(200):
        event = _random_event(rng)
        key = rng.choice(["s3", "s4", "x", 3])
        event = replace(event, action="play", params={**event.params, "key": key})
        assert _generated(policy, event) == _by_closures(policy, event), event
    # A vendor plugin's bug, not something a vendor can send: the field read itself raises, and
    # the run's first rule fails as it would reading it.
    broken = Event("testvendor", "play", params=None)  # type: ignore[arg-type]
    assert _generated(policy, broken) == _by_closures(policy, broken)
    assert _by_closures(policy, broken).failed  # type: ignore[union-attr]
    assert ".get(_v, ())" in policy.candidates("testvendor", "play", "").source


@pytest.mark.parametrize("count", [1, 95])
def test_deep_and_long_conditions_compile(
    count: int,
    tmp_path: Path,
    vendors: dict[str, Vendor],
    functions: dict[str, PolicyFunction],
) -> None:
    # Python refuses source nested 200 parentheses deep; the deeper parts call their closures.
    chain = " and ".join(f'stream.name != "s{i}"' for i in range(count))
    nested = "not (" * count + 'stream.name == "x"' + ")" * count
    # a let is written out where it is used: its depth adds to the rule's
    deeper = "not (" * count + "deep" + ")" * count
    twice = "not (" * count + "deeper" + ")" * count
    policy = _compile(
        f"let deep = {nested}\nlet deeper = {deeper}\n"
        f'rule chain {{ on play  deny "chain" if {chain} }}\n'
        f'rule nested {{ on publish  deny "nested" if {twice} }}\n',
        tmp_path,
        vendors,
        functions,
    )
    for event in (
        Event("testvendor", "play", stream="s1"),
        Event("testvendor", "play", stream="y"),
        Event("testvendor", "publish", stream="x"),
        Event("testvendor", "publish", stream="y"),
    ):
        assert _generated(policy, event) == _by_closures(policy, event)


def test_many_rules_in_one_set_are_written_out_up_to_a_limit(
    tmp_path: Path, vendors: dict[str, Vendor], functions: dict[str, PolicyFunction]
) -> None:
    rules = "\n".join(
        f"rule r{i} {{ on play  allow if params.n == {i} or client.ip in office }}"
        for i in range(500)
    )
    policy = _compile(rules, tmp_path, vendors, functions)
    for n in (3, 199, 200, 250, 499, 500):
        event = Event("testvendor", "play", params={"n": str(n)}, client_ip="10.0.0.1")
        assert _generated(policy, event) == _by_closures(policy, event)
    source = policy.candidates("testvendor", "play", "").source
    assert source.count("try:") == 200


def test_policy_text_never_becomes_source(
    tmp_path: Path, vendors: dict[str, Vendor], functions: dict[str, PolicyFunction]
) -> None:
    hostile = '\\") or __import__(\\"os\\") or (\\"'
    policy = _compile(
        f'rule r {{ on play  allow if params.key == "{hostile}" and stream.name startswith '
        f'"{hostile}" }}',
        tmp_path,
        vendors,
        functions,
    )
    assert policy.decide(Event("testvendor", "play"), EMPTY_STATE).rule is None
    source = policy.candidates("testvendor", "play", "").source
    assert "import" not in source and "os" not in source


def test_a_generated_function_is_freed_with_its_policy_without_a_collection(
    tmp_path: Path, vendors: dict[str, Vendor], functions: dict[str, PolicyFunction]
) -> None:
    policy = _compile(
        'rule r { on play  allow if stream.name == "x" }', tmp_path, vendors, functions
    )
    event = Event("testvendor", "play", stream="x")
    policy.decide(event, EMPTY_STATE)
    run = policy.candidates(event.vendor, event.action, event.app).run
    assert run is not None
    freed = weakref.ref(run)
    enabled = gc.isenabled()
    gc.disable()
    try:
        del policy, run
        assert freed() is None
    finally:
        if enabled:
            gc.enable()
