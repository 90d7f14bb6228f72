"""The worked policy in policies/kls: its tests pass, it checks clean, it is formatted, and it
flags what it says on events parsed from the request fixtures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from castgate import Decision, Effect, Event
from castgate.cli import main
from castgate.lang import compile_policies
from castgate.plugins import load_plugins
from castgate.state import EMPTY_STATE

from .support import fixture, json_body, parse

POLICY = Path(__file__).parents[3] / "policies" / "kls"
OTHERS = ["--disable-plugin", "nginx_rtmp", "--disable-plugin", "livepeer"]
OTHERS += ["--disable-plugin", "antmedia", "--disable-plugin", "nimble"]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out + err


def test_the_policy_tests_pass(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(capsys, "test", *OTHERS, str(POLICY))
    assert code == 0, out
    assert out.rstrip().endswith(" passed, 0 failed")
    assert int(out.split()[-4]) >= 22


def test_the_policy_checks_clean_and_is_formatted(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(capsys, "check", *OTHERS, str(POLICY))
    assert code == 0, out
    code, out = _run(capsys, "fmt", "--check", str(POLICY))
    assert code == 0, out


Decide = Callable[[Event], Decision]


@pytest.fixture(scope="module")
def decide() -> Decide:
    registry = load_plugins(frozenset({"nginx_rtmp", "livepeer", "antmedia", "nimble"}))
    policy = compile_policies((POLICY,), vendors=registry.vendors, functions=registry.functions)
    return lambda event: policy.decide(event, EMPTY_STATE)


@pytest.mark.parametrize(
    ("body", "rule"),
    [
        (fixture("new/pubstart_2024.json"), None),  # known key, node and domain
        (fixture("new/pubend_2024.json"), None),
        (fixture("new/pubstart_2020.json"), "unknown_key"),  # PubParam has no key
        (json_body(PubParam='{"key": "k-00000000"}'), "unknown_key"),
        (json_body(Node="192.0.2.99"), "unknown_node"),
        (json_body(Pubdomain="Rogue.Example.org"), "unknown_domain"),
        (fixture("old/user_publish.body"), None),  # no key to check, no node, known domain
        (fixture("old/user_publish_done.body"), None),
        (fixture("old/user_publish_with_args.body"), None),
        (fixture("old/user_publish.body") + b"&key=k-00000000", "unknown_key"),
        (fixture("old/user_publish.body").replace(b"test.uplive", b"other"), "unknown_domain"),
        (fixture("old/user_publish.body") + b"&call=user_publish_done", "forged_fields"),
        (fixture("old/user_publish_done.body") + b"&name=other", "forged_fields"),
    ],
)
def test_parsed_requests_are_flagged_by_the_right_rule(
    decide: Decide, body: bytes, rule: str | None
) -> None:
    decision = decide(parse(body))
    assert decision.effect is Effect.ACK
    assert (decision.rule, decision.flagged) == (rule, rule is not None)
