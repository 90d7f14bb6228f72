"""py-abac (``py-abac``, pure Python, policies as JSON documents validated by marshmallow).

Each castgate rule is one policy; its actions and apps are the policy's *targets* (matched with
``fnmatch``), its condition the *rules* on subject (the client), resource (the stream) and context
(the clock). py-abac has CIDR, regex, prefix and set conditions; the stream keys are an ``IsIn``
list. Deny overrides allow, as in castgate. Precomputed: the token's length, the local weekday
and second (no time zones), the address normalized (``""`` when it is none).
"""

from __future__ import annotations

from typing import Any

from py_abac import PDP, AccessRequest, Policy
from py_abac.storage.memory import MemoryStorage

from castgate.events import Event

from . import OFFICE, RESERVED, STUDIO, Facts, Peer, PeerDecide
from .inputs import client_address, local_clock

Condition = dict[str, Any]


def _equals(value: str) -> Condition:
    return {"condition": "Equals", "value": value}


def _is_in(values: tuple[str, ...] | list[str]) -> Condition:
    return {"condition": "IsIn", "values": list(values)}


def _not(condition: Condition) -> Condition:
    return {"condition": "Not", "value": condition}


def _in_networks(cidrs: tuple[str, ...]) -> Condition:
    return {"condition": "AnyOf", "values": [{"condition": "CIDR", "value": c} for c in cidrs]}


def _between(first: int, end: int) -> Condition:
    return {
        "condition": "AllOf",
        "values": [{"condition": "Gte", "value": first}, {"condition": "Lt", "value": end}],
    }


_SHOWTIME = {"$.day": {"condition": "Lt", "value": 5}, "$.second": _between(21600, 84600)}
_WEEKEND = {"$.day": {"condition": "Gte", "value": 5}, "$.second": _between(28800, 72000)}
# `\Z`, not `$`: Python's `$` also matches before a final newline, RE2's does not.
_NAME = {"condition": "RegexMatch", "value": r"^[a-z0-9_-]{1,64}\Z"}


def _policy(
    uid: str,
    effect: str,
    actions: list[str],
    apps: str | list[str] = "*",
    *,
    subject: dict[str, Any] | list[dict[str, Any]] | None = None,
    resource: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "uid": uid,
        "description": uid,
        "effect": effect,
        "rules": {
            "subject": subject or {},
            "resource": resource or {},
            "action": {},
            "context": context or {},
        },
        "targets": {"subject_id": "*", "resource_id": apps, "action_id": actions},
        "priority": 0,
    }


def policies(facts: Facts) -> list[dict[str, Any]]:
    studio = {"$.ip": _in_networks(STUDIO)}
    office = {"$.ip": _in_networks(OFFICE)}
    keyholder = {"$.key": _is_in(facts.keys)}
    publish_play = ["publish", "play"]
    reference = [
        # castgate's blocklist and done_flag_blocked: a flagged notification is a deny here.
        _policy(
            "blocklist",
            "deny",
            ["connect", "publish", "play", "update", "publish_done", "play_done"],
            subject={"$.ip": _in_networks(facts.blocked)},
        ),
        _policy("bad_name", "deny", ["publish"], resource={"$.name": _not(_NAME)}),
        _policy("reserved_name", "deny", publish_play, resource={"$.name": _is_in(RESERVED)}),
        _policy(
            "no_test_on_live",
            "deny",
            ["publish"],
            "live",
            resource={"$.name": {"condition": "StartsWith", "value": "test-"}},
        ),
        _policy(
            "update_needs_key",
            "deny",
            ["update"],
            subject={"$.key": _equals(""), "$.ip": _not(_in_networks(STUDIO))},
        ),
        _policy("studio_ingest", "allow", ["publish"], ["live", "studio"], subject=studio),
        _policy("office_ingest", "allow", ["publish"], "studio", subject=office, context=_SHOWTIME),
        _policy("keyed_ingest", "allow", ["publish"], "live", subject=keyholder, context=_SHOWTIME),
        _policy(
            "weekend_ingest", "allow", ["publish"], "live", subject=keyholder, context=_WEEKEND
        ),
        _policy("keyed_update", "allow", ["update"], subject=keyholder),
        _policy("studio_update", "allow", ["update"], subject=studio),
        _policy("public_play", "allow", ["play"], "public"),
        _policy(
            "token_play",
            "allow",
            ["play"],
            "live",
            subject={
                "$.token": {"condition": "StartsWith", "value": "v1."},
                "$.token_length": {"condition": "Gte", "value": 16},
            },
        ),
        _policy(
            "premium_play",
            "allow",
            ["play"],
            "premium",
            subject={"$.tier": _is_in(["gold", "platinum"])},
        ),
        _policy("vod_play", "allow", ["play"], "vod", subject=[keyholder, office]),
        _policy("studio_play", "allow", ["play"], subject=studio),
        _policy("connect_known", "allow", ["connect"], subject=[studio, office, keyholder]),
        _policy("done_ack", "allow", ["publish_done", "play_done"]),
        _policy("discover_studio", "allow", ["discover"], subject=studio),
    ]
    forbidden = [
        _policy(f"forbidden {n}", "deny", publish_play, resource={"$.name": _equals(name)})
        for n, name in enumerate(facts.forbidden_names)
    ]
    guests = [
        _policy(f"guest {n}", "allow", publish_play, subject={"$.key": _equals(key)})
        for n, key in enumerate(facts.guest_keys)
    ]
    return reference + forbidden + guests


def build(facts: Facts) -> PeerDecide:
    storage = MemoryStorage()
    for document in policies(facts):
        storage.add(Policy.from_json(document))
    is_allowed = PDP(storage).is_allowed

    def decide(event: Event, _state: object) -> bool:
        params = event.params
        token = params.get("token", "")
        day, second = local_clock(event.time)
        client = {
            "ip": client_address(event.client_ip) or "",
            "key": params.get("key", ""),
            "token": token,
            "token_length": len(token),
            "tier": params.get("tier", ""),
        }
        request = AccessRequest(
            subject={"id": "client", "attributes": client},
            # Targets are matched against ids: the app is the resource's, the action the action's.
            resource={"id": event.app, "attributes": {"name": event.stream}},
            action={"id": event.action, "attributes": {}},
            context={"day": day, "second": second},
        )
        return is_allowed(request)

    return decide


PEER = Peer(
    name="py-abac",
    package="py-abac",
    precomputed="token length, local weekday and second; address normalized",
    build=build,
)
