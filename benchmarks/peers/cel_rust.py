"""CEL through ``common-expression-language`` (the Rust ``cel`` crate through PyO3).

CEL is an expression language, not a policy engine: the policy is one boolean expression, no deny
matches and some allow does, as a policy written for a CEL-evaluating gateway would be. CEL has
regular expressions (RE2), string prefixes and sizes, maps and lists, but no IP type and (in this
implementation) no time zones. So addresses reach it as 32 hex digits and every range as a pair of
those, tested by string comparison; the local weekday and second are computed in Python.

The lists are context variables bound once: the Context caches their conversion and only the
request's own fields reach CEL per call, through a variable resolver.
"""

from __future__ import annotations

from typing import Any

import cel

from castgate.events import Event

from . import NAME_PATTERN, OFFICE, RESERVED, STUDIO, Facts, Peer, PeerDecide
from .inputs import cidr_span, local_clock, request_fields

# An address in one of a list of (first, last) ranges: a scan, since CEL has no range type.
_IN = "{}.exists(r, ip >= r[0] && ip <= r[1])"
_IN_STUDIO = _IN.format("studio")
_IN_OFFICE = _IN.format("office")
_IN_BLOCKED = _IN.format("blocked")

#: The time windows from precomputed local time (Monday is 0).
SHOWTIME = "(day < 5 && second >= 21600 && second < 84600)"
WEEKEND = "(day >= 5 && second >= 28800 && second < 72000)"


def _quoted(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(f'"{value}"' for value in values) + "]"


def deny_terms(facts: Facts) -> list[str]:
    """The deny rules, each ``scope && condition``."""
    on_publish_play = 'action in ["publish", "play"]'
    terms = [
        # castgate's `blocklist` and `done_flag_blocked`: a flagged notification is a deny here.
        'action in ["connect", "publish", "play", "update", "publish_done", "play_done"]'
        f" && {_IN_BLOCKED}",
        f'action == "publish" && !name.matches("{NAME_PATTERN}")',
        f"{on_publish_play} && name in {_quoted(RESERVED)}",
        'action == "publish" && app == "live" && name.startsWith("test-")',
        f'action == "update" && key == "" && !{_IN_STUDIO}',
    ]
    terms += [f'{on_publish_play} && name == "{name}"' for name in facts.forbidden_names]
    return terms


def allow_terms(facts: Facts, showtime: str, weekend: str) -> list[str]:
    """The allow rules, each ``scope && condition``; the windows as given."""
    on_publish_play = 'action in ["publish", "play"]'
    terms = [
        f'action == "publish" && app in ["live", "studio"] && {_IN_STUDIO}',
        f'action == "publish" && app == "studio" && {_IN_OFFICE} && {showtime}',
        f'action == "publish" && app == "live" && key in keys && {showtime}',
        f'action == "publish" && app == "live" && key in keys && {weekend}',
        'action == "update" && key in keys',
        f'action == "update" && {_IN_STUDIO}',
        'action == "play" && app == "public"',
        'action == "play" && app == "live" && token.startsWith("v1.") && size(token) >= 16',
        'action == "play" && app == "premium" && (tier == "gold" || tier == "platinum")',
        f'action == "play" && app == "vod" && (key in keys || {_IN_OFFICE})',
        f'action == "play" && {_IN_STUDIO}',
        f'action == "connect" && ({_IN_STUDIO} || {_IN_OFFICE} || key in keys)',
        'action in ["publish_done", "play_done"]',
        f'action == "discover" && {_IN_STUDIO}',
    ]
    terms += [f'{on_publish_play} && key == "{key}"' for key in facts.guest_keys]
    return terms


def expression(facts: Facts, showtime: str = SHOWTIME, weekend: str = WEEKEND) -> str:
    """The whole policy: no deny rule matches, and some allow rule does."""
    denies = "\n  || ".join(f"({term})" for term in deny_terms(facts))
    allows = "\n  || ".join(f"({term})" for term in allow_terms(facts, showtime, weekend))
    return f"!(\n  {denies}\n) && (\n  {allows}\n)"


def lists(facts: Facts) -> dict[str, Any]:
    """The policy's data: keys as a map (CEL's `in` on a map is a lookup), ranges as pairs."""
    return {
        "keys": dict.fromkeys(facts.keys, True),
        "studio": [list(cidr_span(c)) for c in STUDIO],
        "office": [list(cidr_span(c)) for c in OFFICE],
        "blocked": [list(cidr_span(c)) for c in facts.blocked],
    }


def build(facts: Facts) -> PeerDecide:
    program = cel.compile(expression(facts))
    context = cel.Context()
    for name, value in lists(facts).items():
        context.add_variable(name, value)
    # Each request's fields, read by CEL through the resolver while the lists stay converted.
    current: dict[str, Any] = {}
    context.set_variable_resolver(current.get)
    execute = program.execute

    def decide(event: Event, _state: object) -> bool:
        current.clear()
        current.update(request_fields(event))
        current["day"], current["second"] = local_clock(event.time)
        return execute(context) is True

    return decide


PEER = Peer(
    name="CEL (cel-rust)",
    package="common-expression-language",
    precomputed="address as hex, ranges as hex pairs; local weekday and second",
    build=build,
)
