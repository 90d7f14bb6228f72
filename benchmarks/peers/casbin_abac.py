"""Casbin (``casbin``, PyCasbin: pure Python, conditions evaluated by ``simpleeval``).

Casbin's way to attribute rules: one policy line per rule, its condition a Python-like expression
that the matcher ``eval()``s against the request (the "ABAC with policy rules" model). The stream
keys are a role (``g, <key>, keyholder``), each blocked network one policy line with ``ipMatch``.
Casbin evaluates the matcher once per policy line until an effect is known, parsing each line's
condition every time: that is its documented ABAC model, timed as it is.

Precomputed: the local weekday and second (Casbin has no time zones, and its ``timeMatch`` reads
the clock, not the request); the address normalized, ``""`` when it is none (``ipMatch`` raises on
a non-address).
"""

from __future__ import annotations

from dataclasses import dataclass

import casbin

from castgate.events import Event

from . import OFFICE, RESERVED, STUDIO, Facts, Peer, PeerDecide
from .inputs import client_address, local_clock

MODEL = """
[request_definition]
r = sub, obj, act

[policy_definition]
p = act, app, rule, eft

[role_definition]
g = _, _

[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))

[matchers]
m = regexMatch(r.act, p.act) && regexMatch(r.obj.app, p.app) && eval(p.rule)
"""


def _any_network(cidrs: tuple[str, ...]) -> str:
    tests = " || ".join(f"ipMatch(r.sub.ip, '{cidr}')" for cidr in cidrs)
    return f"(r.sub.ip != '' && ({tests}))"


_STUDIO = _any_network(STUDIO)
_OFFICE = _any_network(OFFICE)
_KEYHOLDER = "g(r.sub.key, 'keyholder')"
_SHOWTIME = "r.sub.day < 5 && r.sub.second >= 21600 && r.sub.second < 84600"
_WEEKEND = "r.sub.day >= 5 && r.sub.second >= 28800 && r.sub.second < 72000"
_ANY = "^.*$"
# `\Z`, not `$`: Python's `$` also matches before a final newline, RE2's does not.
_NAME = r"^[a-z0-9_-]{1,64}\Z"

#: The reference policy but the blocklist: (actions, apps, condition, effect).
REFERENCE = (
    ("^publish$", _ANY, f"!regexMatch(r.obj.name, '{_NAME}')", "deny"),
    ("^(publish|play)$", _ANY, f"r.obj.name in {list(RESERVED)}", "deny"),
    ("^publish$", "^live$", "r.obj.name.startswith('test-')", "deny"),
    ("^update$", _ANY, f"r.sub.key == '' && !{_STUDIO}", "deny"),
    ("^publish$", "^(live|studio)$", _STUDIO, "allow"),
    ("^publish$", "^studio$", f"{_OFFICE} && {_SHOWTIME}", "allow"),
    ("^publish$", "^live$", f"{_KEYHOLDER} && {_SHOWTIME}", "allow"),
    ("^publish$", "^live$", f"{_KEYHOLDER} && {_WEEKEND}", "allow"),
    ("^update$", _ANY, _KEYHOLDER, "allow"),
    ("^update$", _ANY, _STUDIO, "allow"),
    ("^play$", "^public$", "True", "allow"),
    ("^play$", "^live$", "r.sub.token.startswith('v1.') && len(r.sub.token) >= 16", "allow"),
    ("^play$", "^premium$", "r.sub.tier == 'gold' || r.sub.tier == 'platinum'", "allow"),
    ("^play$", "^vod$", f"{_KEYHOLDER} || {_OFFICE}", "allow"),
    ("^play$", _ANY, _STUDIO, "allow"),
    ("^connect$", _ANY, f"{_STUDIO} || {_OFFICE} || {_KEYHOLDER}", "allow"),
    ("^(publish_done|play_done)$", _ANY, "True", "allow"),
    ("^discover$", _ANY, _STUDIO, "allow"),
)

# castgate's `blocklist` and `done_flag_blocked`: a flagged notification is a deny here.
_BLOCKED_ACTIONS = "^(connect|publish|play|update|publish_done|play_done)$"


def policy_lines(facts: Facts) -> list[list[str]]:
    blocked = [
        [_BLOCKED_ACTIONS, _ANY, f"r.sub.ip != '' && ipMatch(r.sub.ip, '{cidr}')", "deny"]
        for cidr in facts.blocked
    ]
    forbidden = [
        ["^(publish|play)$", _ANY, f"r.obj.name == '{name}'", "deny"]
        for name in facts.forbidden_names
    ]
    guests = [
        ["^(publish|play)$", _ANY, f"r.sub.key == '{key}'", "allow"] for key in facts.guest_keys
    ]
    return blocked + [list(line) for line in REFERENCE] + forbidden + guests


@dataclass(slots=True)
class Client:
    ip: str
    key: str
    token: str
    tier: str
    day: int
    second: int


@dataclass(slots=True)
class Stream:
    app: str
    name: str


def build(facts: Facts) -> PeerDecide:
    enforcer = casbin.Enforcer(_model())
    # Casbin's expressions have no `len`; registering a function is its way to add one.
    enforcer.add_function("len", len)
    enforcer.add_policies(policy_lines(facts))
    enforcer.add_grouping_policies([[key, "keyholder"] for key in facts.keys])
    enforce = enforcer.enforce

    def decide(event: Event, _state: object) -> bool:
        params = event.params
        day, second = local_clock(event.time)
        client = Client(
            client_address(event.client_ip) or "",
            params.get("key", ""),
            params.get("token", ""),
            params.get("tier", ""),
            day,
            second,
        )
        return enforce(client, Stream(event.app, event.stream), event.action)

    return decide


def _model() -> casbin.model.Model:
    model = casbin.model.Model()
    model.load_model_from_text(MODEL)
    return model


PEER = Peer(
    name="Casbin",
    package="casbin",
    precomputed="local weekday and second; address normalized",
    build=build,
)
