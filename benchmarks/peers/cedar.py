"""Cedar (``cedarpy``, the Rust engine through PyO3).

The request: principal ``Key::"<params.key>"`` (``Key::""`` without one), which the entity store
makes a member of ``KeySet::"valid"`` when the key is listed; action ``Action::"<action>"``;
resource ``App::"<app>"``. Cedar has IP ranges (``ip``, ``isInRange``) and wildcard ``like``, but
no regular expressions, no string length and no time zones, so the context carries those results.
The blocklist is one ``forbid`` per CIDR: Cedar has no set of ranges to test an address against.
"""

from __future__ import annotations

import json
from string import Template
from typing import Any

import cedarpy

from castgate.events import Event

from . import OFFICE, STUDIO, Facts, Peer, PeerDecide
from .inputs import client_address, local_clock, name_ok


def _any_range(cidrs: tuple[str, ...]) -> str:
    tests = " || ".join(f'context.ip.isInRange(ip("{cidr}"))' for cidr in cidrs)
    return f"(context has ip && ({tests}))"


# Cedar has no named sets: each rule that tests the studio or the office spells out its ranges.
_REFERENCE = Template("""
@id("bad_name")
forbid (principal, action == Action::"publish", resource)
unless { context.name_ok };

@id("reserved_name")
forbid (principal, action in [Action::"publish", Action::"play"], resource)
when { ["admin", "internal", "system", "test"].contains(context.name) };

@id("no_test_on_live")
forbid (principal, action == Action::"publish", resource == App::"live")
when { context.name like "test-*" };

@id("update_needs_key")
forbid (principal, action == Action::"update", resource)
unless { context.has_key || $studio };

@id("studio_ingest")
permit (principal, action == Action::"publish", resource)
when { resource in [App::"live", App::"studio"] && $studio };

@id("office_ingest")
permit (principal, action == Action::"publish", resource == App::"studio")
when { $office && context.day < 5 && context.second >= 21600 && context.second < 84600 };

@id("keyed_ingest")
permit (principal in KeySet::"valid", action == Action::"publish", resource == App::"live")
when { context.day < 5 && context.second >= 21600 && context.second < 84600 };

@id("weekend_ingest")
permit (principal in KeySet::"valid", action == Action::"publish", resource == App::"live")
when { context.day >= 5 && context.second >= 28800 && context.second < 72000 };

@id("keyed_update")
permit (principal in KeySet::"valid", action == Action::"update", resource);

@id("studio_update")
permit (principal, action == Action::"update", resource)
when { $studio };

@id("public_play")
permit (principal, action == Action::"play", resource == App::"public");

@id("token_play")
permit (principal, action == Action::"play", resource == App::"live")
when { context.token like "v1.*" && context.token_length >= 16 };

@id("premium_play")
permit (principal, action == Action::"play", resource == App::"premium")
when { context.tier == "gold" || context.tier == "platinum" };

@id("vod_play")
permit (principal, action == Action::"play", resource == App::"vod")
when { principal in KeySet::"valid" || $office };

@id("studio_play")
permit (principal, action == Action::"play", resource)
when { $studio };

@id("connect_known")
permit (principal, action == Action::"connect", resource)
when { $studio || $office || principal in KeySet::"valid" };

@id("done_ack")
permit (principal, action in [Action::"publish_done", Action::"play_done"], resource);

@id("discover_studio")
permit (principal, action == Action::"discover", resource)
when { $studio };
""").substitute(studio=_any_range(STUDIO), office=_any_range(OFFICE))

# castgate's `blocklist` and `done_flag_blocked` in one: a flagged notification is a deny here.
_BLOCKED = """
@id("blocked {n}")
forbid (
  principal,
  action in [Action::"connect", Action::"publish", Action::"play", Action::"update",
             Action::"publish_done", Action::"play_done"],
  resource
) when {{ context has ip && context.ip.isInRange(ip("{cidr}")) }};
"""

_FORBIDDEN_NAME = """
@id("forbidden {n}")
forbid (principal, action in [Action::"publish", Action::"play"], resource)
when {{ context.name == "{name}" }};
"""

_GUEST_KEY = """
@id("guest {n}")
permit (principal == Key::"{key}", action in [Action::"publish", Action::"play"], resource);
"""


def policy_text(facts: Facts) -> str:
    parts = [_BLOCKED.format(n=n, cidr=cidr) for n, cidr in enumerate(facts.blocked)]
    parts.append(_REFERENCE)
    parts += [
        _FORBIDDEN_NAME.format(n=n, name=name) for n, name in enumerate(facts.forbidden_names)
    ]
    parts += [_GUEST_KEY.format(n=n, key=key) for n, key in enumerate(facts.guest_keys)]
    return "".join(parts)


def entities(facts: Facts) -> list[dict[str, Any]]:
    valid = {"type": "KeySet", "id": "valid"}
    keys = [
        {"uid": {"type": "Key", "id": key}, "attrs": {}, "parents": [valid]} for key in facts.keys
    ]
    return [{"uid": valid, "attrs": {}, "parents": []}, *keys]


def build(facts: Facts) -> PeerDecide:
    policies = cedarpy.PolicySet.from_str(policy_text(facts))
    store = cedarpy.Entities.from_json_str(json.dumps(entities(facts)))
    authorize = cedarpy.is_authorized

    def decide(event: Event, _state: object) -> bool:
        params = event.params
        key = params.get("key", "")
        token = params.get("token", "")
        day, second = local_clock(event.time)
        context: dict[str, Any] = {
            "name": event.stream,
            "name_ok": name_ok(event.stream),
            "has_key": bool(key),
            "token": token,
            "token_length": len(token),
            "tier": params.get("tier", ""),
            "day": day,
            "second": second,
        }
        address = client_address(event.client_ip)
        if address is not None:
            context["ip"] = {"__extn": {"fn": "ip", "arg": address}}
        request = {
            "principal": {"type": "Key", "id": key},
            "action": {"type": "Action", "id": event.action},
            "resource": {"type": "App", "id": event.app},
            "context": context,
        }
        return authorize(request, policies, store).allowed

    return decide


PEER = Peer(
    name="Cedar",
    package="cedarpy",
    precomputed="regex result, token length, local weekday and second; address normalized",
    build=build,
)
