"""The decision procedure: the index, explanations, failures, versions."""

from __future__ import annotations

from pathlib import Path

from castgate import Effect, Event, PolicyFunction, Vendor
from castgate.lang import compile_policies, compile_sources
from castgate.state import EMPTY_STATE

MANY_APPS = "\n".join(
    f'rule app_{i} {{ on publish app app{i}  allow if params.key == "k{i}" }}' for i in range(1000)
)


def _compile(text: str, vendors: dict[str, Vendor], functions: dict[str, PolicyFunction]):  # type: ignore[no-untyped-def]
    return compile_sources(
        [("p.policy", text, Path())], vendors=vendors, functions=functions, env={}
    )


def test_only_rules_for_the_event_are_visited(vendors, functions) -> None:  # type: ignore[no-untyped-def]
    policy = _compile(
        MANY_APPS + '\nrule any_app { on publish  deny "x" if params.key == "bad" }',
        vendors,
        functions,
    )
    event = Event(vendor="testvendor", action="publish", app="app7", params={"key": "k7"})
    decision = policy.decide(event, EMPTY_STATE, explain=True)
    assert decision.effect is Effect.ALLOW
    assert decision.rule == "app_7"
    assert [t.rule for t in decision.trace or ()] == ["app_7", "any_app"]
    other = Event(vendor="testvendor", action="play", app="app7")
    assert policy.candidates("testvendor", "play", "app7").in_order == ()
    assert policy.decide(other, EMPTY_STATE).rule is None


def test_explanation_records_every_visited_rule_and_the_decider(vendors, functions) -> None:  # type: ignore[no-untyped-def]
    policy = _compile(
        'rule a { on play  allow if params.k == "1" }\n'
        "rule b { on play  allow }\n"
        'rule c { on play  deny "no" if params.k == "2" }\n'
        "rule d { on play  allow if test.fail(stream.name) }\n",
        vendors,
        functions,
    )
    event = Event(vendor="testvendor", action="play", stream="s", params={"k": "1"})
    decision = policy.decide(event, EMPTY_STATE, explain=True)
    # `a` decides, as without an explanation; `d` fails after the decision is made, so its
    # error is traced but does not change the outcome.
    assert decision.effect is Effect.ALLOW and decision.rule == "a" and not decision.failed
    trace = {t.rule: (t.matched, t.error) for t in decision.trace or ()}
    assert trace == {
        "a": (True, ""),
        "b": (True, ""),
        "c": (False, ""),
        "d": (None, "FunctionError: test.fail() raised RuntimeError"),
    }
    # without the explanation, the same decision
    plain = policy.decide(event, EMPTY_STATE)
    assert (plain.effect, plain.rule, plain.reason) == (
        decision.effect,
        decision.rule,
        decision.reason,
    )


def test_a_failing_allow_before_the_first_match_denies(vendors, functions) -> None:  # type: ignore[no-untyped-def]
    policy = _compile(
        "rule d { on play  allow if test.fail(stream.name) }\nrule b { on play  allow }\n",
        vendors,
        functions,
    )
    event = Event(vendor="testvendor", action="play", stream="s")
    for explain in (False, True):
        decision = policy.decide(event, EMPTY_STATE, explain=explain)
        assert (decision.effect, decision.rule, decision.failed) == (Effect.DENY, "d", True)


def test_version_follows_data_files(tmp_path: Path, vendors, functions) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "a.policy").write_text(
        'let keys = lines("keys.txt")\nrule r { on publish allow if params.key in keys }\n'
    )
    (tmp_path / "keys.txt").write_text("k1\n")
    first = compile_policies([tmp_path], vendors=vendors, functions=functions, env={})
    (tmp_path / "keys.txt").write_text("k1\nk2\n")
    second = compile_policies([tmp_path], vendors=vendors, functions=functions, env={})
    assert first.version != second.version
    event = Event(vendor="testvendor", action="publish", params={"key": "k2"})
    assert first.decide(event, EMPTY_STATE).effect is Effect.DENY
    assert second.decide(event, EMPTY_STATE).effect is Effect.ALLOW


def test_files_in_a_directory_load_in_name_order(tmp_path: Path, vendors, functions) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "b.policy").write_text(
        'rule from_b { on publish from testvendor allow with { rename: "b" } }\n'
    )
    (tmp_path / "a.policy").write_text(
        'rule from_a { on publish from testvendor allow with { rename: "a" } }\n'
    )
    policy = compile_policies([tmp_path], vendors=vendors, functions=functions, env={})
    decision = policy.decide(Event(vendor="testvendor", action="publish"), EMPTY_STATE)
    assert decision.rule == "from_a" and decision.response == {"rename": "a"}
    assert [p.name for p in policy.files] == ["a.policy", "b.policy"]
