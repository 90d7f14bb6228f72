"""Runs of rules guarded on one field, answered by one lookup: which conditions make a guard, and
that a policy set decides with the lookups exactly as it does visiting every rule."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from castgate import Decision, Effect, Event, PolicyFunction, Vendor
from castgate.lang import compile_sources
from castgate.lang.functions import DependencyError
from castgate.lang.policyset import PolicySet
from castgate.state import EMPTY_STATE


def _pick(name: str) -> bool:
    if name == "b":
        raise RuntimeError("b is broken")
    return name == "a"


def _depend(name: str) -> bool:
    if name == "c":
        raise DependencyError("upstream down")
    return False


#: Besides the shared test functions: one that fails for some arguments only, and one whose
#: failure is a dependency failure, which must propagate rather than deny.
#: Every kind of outcome a differential test must have met: ``(effect, failed, flagged)`` of a
#: decision, or the name of the error that propagated.
EVERY_OUTCOME: set[tuple[object, ...]] = {
    (Effect.ALLOW, False, False),
    (Effect.DENY, False, False),
    (Effect.DENY, True, False),
    (Effect.ACK, False, True),
    (Effect.ACK, False, False),
    ("DependencyError",),
}

EXTRA_FUNCTIONS = {
    "pick.fail": PolicyFunction("pick.fail", ("string",), "bool", _pick),
    "dep.fail": PolicyFunction("dep.fail", ("string",), "bool", _depend),
}

HEADER = (
    'let names = ["a", "b"]\n'
    'let named = lines("named.txt")\n'
    'let public = pairs("public.txt")\n'
    "let office = [192.168.10.0/24]\n"
)


def _compile(
    text: str,
    directory: Path,
    vendors: dict[str, Vendor],
    functions: dict[str, PolicyFunction],
) -> PolicySet:
    (directory / "named.txt").write_text("a\nc\nA\n", encoding="utf-8")
    (directory / "public.txt").write_text("b public-b\n5 five\n", encoding="utf-8")
    return compile_sources(
        [("p.policy", HEADER + text, directory)],
        vendors=vendors,
        functions={**functions, **EXTRA_FUNCTIONS},
        env={},
    )


def _visiting_every_rule(policy: PolicySet) -> PolicySet:
    """The same rules without guards: every candidate is visited, as before the lookups."""
    return PolicySet(
        [replace(rule, guard=None) for rule in policy.rules], policy.files, policy.version
    )


def _outcome(policy: PolicySet, event: Event) -> Decision | str:
    try:
        return policy.decide(event, EMPTY_STATE)
    except DependencyError:
        return "DependencyError"


#: The most constants a guard takes (compiler._GUARD_MOST_VALUES).
LARGEST_SET = ", ".join(f'"n{i}"' for i in range(64))


@pytest.mark.parametrize(
    ("condition", "field", "values"),
    [
        ('stream.name == "x"', ("stream", "name"), {"x"}),
        ('"x" == stream.name', ("stream", "name"), {"x"}),
        ('params.key in ["a", "b"]', ("params", "key"), {"a", "b"}),
        ("params.key in names", ("params", "key"), {"a", "b"}),
        ("stream.name in named", ("stream", "name"), {"a", "c", "A"}),
        ("stream.name in public", ("stream", "name"), {"b", "5"}),
        ('app == "live" or app in ["vod"]', ("app",), {"live", "vod"}),
        ('stream.name == "x" and client.ip in office', ("stream", "name"), {"x"}),
        ('stream.name == "x" and test.fail(stream.name)', ("stream", "name"), {"x"}),
        ('params.a.b == "x"', ("params", "a", "b"), {"x"}),
        ('raw.x == "5"', ("raw", "x"), {"5"}),
        ('node == "edge1"', ("node",), {"edge1"}),
        ('session.id == "s1"', ("session", "id"), {"s1"}),
        ('params.k == ""', ("params", "k"), {""}),
        (f"stream.name in [{LARGEST_SET}]", ("stream", "name"), None),
        # compared as addresses, numbers, or negated: a lookup of the text would differ
        ('client.ip == "10.0.0.1"', None, None),
        ("params.n == 5", None, None),
        ('params.key in ["a", 1]', None, None),
        ('stream.name != "x"', None, None),
        ('not (stream.name == "x")', None, None),
        ('stream.name not in ["x"]', None, None),
        ('stream.name startswith "x"', None, None),
        # a left side that is evaluated first (and may fail), or two fields
        ('client.ip in office and stream.name == "x"', None, None),
        ('test.fail(stream.name) and stream.name == "x"', None, None),
        ('stream.name == "x" or params.key == "y"', None, None),
        ('stream.name == "x" or test.fail(stream.name)', None, None),
        # a set too large to copy into every index entry
        (f'stream.name in [{LARGEST_SET}, "n64"]', None, None),
    ],
)
def test_guards_come_from_exact_text_tests_made_first(
    condition: str,
    field: tuple[str, ...] | None,
    values: set[str] | None,
    tmp_path: Path,
    vendors: dict[str, Vendor],
    functions: dict[str, PolicyFunction],
) -> None:
    policy = _compile(f"rule r {{ on play  allow if {condition} }}", tmp_path, vendors, functions)
    guard = policy.rules[0].guard
    if field is None:
        assert guard is None
        return
    assert guard is not None and guard.field == field
    assert guard.values == (values or {f"n{i}" for i in range(64)})


def _many_rules_for_one_action(count: int) -> str:
    lines = []
    for i in range(count):
        if i % 2:
            lines.append(f'rule allow_{i} {{ on publish, play  allow if params.key == "k{i}" }}')
        else:
            lines.append(
                f'rule deny_{i} {{ on publish, play  deny "{i}" if stream.name == "s{i}" }}'
            )
    return "\n".join(lines)


def test_many_rules_for_one_action_are_two_lookups(
    tmp_path: Path, vendors: dict[str, Vendor], functions: dict[str, PolicyFunction]
) -> None:
    policy = _compile(_many_rules_for_one_action(1000), tmp_path, vendors, functions)
    stretches = policy.candidates("testvendor", "play", "live").steps
    assert [(read is not None, len(steps)) for read, _, steps in stretches] == [
        (True, 500),
        (True, 500),
    ]
    slow = _visiting_every_rule(policy)
    for event in (
        Event("testvendor", "play", "live", "s998"),
        Event("testvendor", "play", "live", "s998", {"key": "k1"}),
        Event("testvendor", "publish", "live", "s3", {"key": "k999"}),
        Event("testvendor", "publish", "live", "s3", {"key": "k998"}),
        Event("testvendor", "publish_done", "live", "s0"),
    ):
        assert policy.decide(event, EMPTY_STATE) == slow.decide(event, EMPTY_STATE)
    decision = policy.decide(Event("testvendor", "play", "live", "s4", {"key": "k1"}), EMPTY_STATE)
    assert (decision.effect, decision.rule) == (Effect.DENY, "deny_4")


def test_a_dependency_failure_propagates_only_from_a_rule_whose_guard_holds(
    tmp_path: Path, vendors: dict[str, Vendor], functions: dict[str, PolicyFunction]
) -> None:
    policy = _compile(
        'rule a { on play  deny "a" if stream.name == "c" and dep.fail(stream.name) }\n'
        'rule b { on play  deny "b" if stream.name == "b" }\n'
        'rule c { on play  allow if stream.name in ["b", "d"] and dep.fail(stream.name) }\n',
        tmp_path,
        vendors,
        functions,
    )
    assert policy.candidates("testvendor", "play", "").steps[0][0] is not None
    with pytest.raises(DependencyError):
        policy.decide(Event("testvendor", "play", stream="c"), EMPTY_STATE)
    assert policy.decide(Event("testvendor", "play", stream="b"), EMPTY_STATE).rule == "b"
    assert policy.decide(Event("testvendor", "play", stream="d"), EMPTY_STATE).rule is None


def test_a_field_that_cannot_be_read_fails_the_first_rule_of_the_run(
    tmp_path: Path, vendors: dict[str, Vendor], functions: dict[str, PolicyFunction]
) -> None:
    policy = _compile(
        'rule first { on play  deny "1" if params.key == "x" }\n'
        'rule second { on play  deny "2" if params.key == "y" }\n',
        tmp_path,
        vendors,
        functions,
    )
    # A vendor plugin's bug, not something a vendor can send: the field read itself raises.
    event = Event("testvendor", "play", params=None)  # type: ignore[arg-type]
    decision = policy.decide(event, EMPTY_STATE)
    assert (decision.rule, decision.failed) == ("first", True)
    assert decision == _visiting_every_rule(policy).decide(event, EMPTY_STATE)


# Randomized: policies of guarded and unguarded rules, decided with and without the lookups -------

TEXT = ["a", "b", "c", "5", "A", ""]
#: What vendor data may hold besides text: numbers equal to numeric text, lists, objects, flags.
VENDOR_VALUES: list[Any] = [*TEXT, "zz", "5.0", 5, 5.0, True, ["a"], {"b": "a"}, None]
FIELDS = ["stream.name", "app", "params.key", "params.tier", "raw.x", "params.a.b"]


def _text_list(rng: random.Random) -> str:
    return "[" + ", ".join(f'"{v}"' for v in rng.sample(TEXT, rng.randint(1, 3))) + "]"


def _guard_text(rng: random.Random, field: str) -> str:
    constant = rng.choice(TEXT)
    shape = rng.randrange(6)
    if shape == 0:
        return f'{field} == "{constant}"'
    if shape == 1:
        return f'"{constant}" == {field}'
    if shape == 2:
        return f"{field} in {_text_list(rng)}"
    if shape == 3:
        return f"{field} in {rng.choice(['names', 'named', 'public'])}"
    if shape == 4:
        return f'({field} == "{constant}" or {field} in {_text_list(rng)})'
    return f'({field} == "{constant}" or {rng.choice(FIELDS)} == "{rng.choice(TEXT)}")'


def _other_text(rng: random.Random) -> str:
    field = rng.choice(FIELDS)
    return rng.choice(
        [
            "test.fail(stream.name)",
            "pick.fail(stream.name)",
            "dep.fail(stream.name)",
            "client.ip in office",
            f"has({field})",
            f'{field} != "{rng.choice(TEXT)}"',
            f'not ({field} == "{rng.choice(TEXT)}")',
            f"{field} not in {_text_list(rng)}",
            f'{field} startswith "{rng.choice(TEXT[:4])}"',
            "params.n > 3",
            'client.ip == "192.168.10.1"',
        ]
    )


def _condition_text(rng: random.Random, field: str) -> str | None:
    shape = rng.randrange(10)
    if shape < 4:
        return _guard_text(rng, field)
    if shape < 6:
        return f"{_guard_text(rng, field)} and {_other_text(rng)}"
    if shape == 6:
        return f"{_other_text(rng)} and {_guard_text(rng, field)}"
    if shape == 7:
        return None
    return _other_text(rng)


def _random_policy(rng: random.Random) -> str:
    rules = []
    # A few fields per policy, so that consecutive rules often share one and runs form.
    fields = rng.sample(FIELDS, rng.randint(1, 2))
    for i in range(rng.randint(1, 24)):
        actions = ", ".join(rng.sample(["publish", "play", "publish_done"], rng.randint(1, 3)))
        app = rng.choice(["", "", "", " app live", " app other"])
        effect = rng.choice(
            [
                f'deny "reason {i}"',
                "allow",
                f'allow with {{ rename: "r{i}" }}',
                "allow with { rename: stream.name }",
            ]
        )
        condition = _condition_text(rng, rng.choice(fields))
        test = "" if condition is None else f" if {condition}"
        rules.append(f"rule r{i} {{ on {actions} from testvendor{app}  {effect}{test} }}")
    return "\n".join(rules)


def _random_event(rng: random.Random) -> Event:
    params: dict[str, Any] = {}
    for key in ("key", "tier", "n"):
        if rng.random() < 0.7:
            params[key] = rng.choice(VENDOR_VALUES)
    if rng.random() < 0.5:
        params["a"] = {"b": rng.choice(VENDOR_VALUES)} if rng.random() < 0.8 else "a"
    raw = {"x": rng.choice(VENDOR_VALUES)} if rng.random() < 0.6 else {}
    return Event(
        "testvendor",
        rng.choice(["publish", "play", "publish_done"]),
        rng.choice(["live", "other", "", *TEXT]),
        rng.choice([*TEXT, "zz"]),
        params,
        rng.choice(["192.168.10.1", "10.0.0.1", ""]),
        raw=raw,
    )


def test_lookups_decide_as_visiting_every_rule(
    tmp_path: Path, vendors: dict[str, Vendor], functions: dict[str, PolicyFunction]
) -> None:
    rng = random.Random(20261121)
    lookups = decided_in_runs = 0
    seen: set[tuple[Any, ...]] = set()
    for _ in range(300):
        text = _random_policy(rng)
        policy = _compile(text, tmp_path, vendors, functions)
        slow = _visiting_every_rule(policy)
        for _ in range(40):
            event = _random_event(rng)
            fast = _outcome(policy, event)
            assert fast == _outcome(slow, event), f"{text}\n{event}"
            if isinstance(fast, str):
                seen.add((fast,))
                continue
            seen.add((fast.effect, fast.failed, fast.flagged))
            try:
                explained = policy.decide(event, EMPTY_STATE, explain=True)
            except DependencyError:
                pass  # explaining evaluates every rule, also those after the deciding one
            else:
                assert replace(explained, trace=None) == fast, f"{text}\n{event}"
            stretches = policy.candidates(event.vendor, event.action, event.app).steps
            in_runs = {s[2].name for read, _, steps in stretches if read for s in steps}
            lookups += sum(read is not None for read, _, _ in stretches)
            decided_in_runs += fast.rule in in_runs
    # The generator must reach what it is for: many lookups, decisions made inside them, and
    # every kind of outcome.
    assert lookups > 3000 and decided_in_runs > 300
    assert seen >= EVERY_OUTCOME
