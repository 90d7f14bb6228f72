"""Vakt (``vakt``, pure Python, rule-based policies checked by a ``Guard``).

Each castgate rule is one policy of attribute rules on the action, the subject (the client), the
resource (the stream) and the context (the clock); any fitting deny policy denies, as in castgate.
Vakt has CIDR, regex, prefix and list rules; the stream keys are an ``In`` list. Precomputed: the
token's length, the local weekday and second (no time zones), the address normalized (``None``
when it is none: Vakt's CIDR rule logs a traceback for a string that is not an address).
"""

from __future__ import annotations

from vakt import ALLOW_ACCESS, DENY_ACCESS, Guard, Inquiry, MemoryStorage, Policy, RulesChecker
from vakt.rules.list import In
from vakt.rules.logic import And, Any, Not, Or
from vakt.rules.net import CIDR
from vakt.rules.operator import Eq, GreaterOrEqual, Less
from vakt.rules.string import RegexMatch, StartsWith

from castgate.events import Event

from . import OFFICE, RESERVED, STUDIO, Facts, Peer, PeerDecide
from .inputs import client_address, local_clock


def _in_networks(cidrs: tuple[str, ...]) -> Or:
    return Or(*(CIDR(c) for c in cidrs))


def _policy(
    uid: str,
    effect: str,
    actions: tuple[str, ...],
    apps: tuple[str, ...] = (),
    *,
    subjects: list[dict[str, object]] | None = None,
    name: object = None,
    context: dict[str, object] | None = None,
) -> Policy:
    resource: dict[str, object] = {}
    if apps:
        resource["app"] = In(*apps)
    if name is not None:
        resource["name"] = name
    # An empty rule dictionary fits nothing in Vakt; `Any()` fits everything.
    return Policy(
        uid,
        actions=[In(*actions)],
        subjects=subjects or [Any()],
        resources=[resource or Any()],
        context=context or {},
        effect=effect,
    )


_SHOWTIME = {"day": Less(5), "second": And(GreaterOrEqual(21600), Less(84600))}
_WEEKEND = {"day": GreaterOrEqual(5), "second": And(GreaterOrEqual(28800), Less(72000))}
# `\Z`, not `$`: Python's `$` also matches before a final newline, RE2's does not.
_NAME = RegexMatch(r"^[a-z0-9_-]{1,64}\Z")


def policies(facts: Facts) -> list[Policy]:
    studio = {"ip": _in_networks(STUDIO)}
    office = {"ip": _in_networks(OFFICE)}
    keyholder = {"key": In(*facts.keys)}
    publish_play = ("publish", "play")
    deny, allow = DENY_ACCESS, ALLOW_ACCESS
    reference = [
        # castgate's blocklist and done_flag_blocked: a flagged notification is a deny here.
        _policy(
            "blocklist",
            deny,
            ("connect", "publish", "play", "update", "publish_done", "play_done"),
            subjects=[{"ip": _in_networks(facts.blocked)}],
        ),
        _policy("bad_name", deny, ("publish",), name=Not(_NAME)),
        _policy("reserved_name", deny, publish_play, name=In(*RESERVED)),
        _policy("no_test_on_live", deny, ("publish",), ("live",), name=StartsWith("test-")),
        _policy(
            "update_needs_key",
            deny,
            ("update",),
            subjects=[{"key": Eq(""), "ip": Not(_in_networks(STUDIO))}],
        ),
        _policy("studio_ingest", allow, ("publish",), ("live", "studio"), subjects=[studio]),
        _policy(
            "office_ingest", allow, ("publish",), ("studio",), subjects=[office], context=_SHOWTIME
        ),
        _policy(
            "keyed_ingest", allow, ("publish",), ("live",), subjects=[keyholder], context=_SHOWTIME
        ),
        _policy(
            "weekend_ingest", allow, ("publish",), ("live",), subjects=[keyholder], context=_WEEKEND
        ),
        _policy("keyed_update", allow, ("update",), subjects=[keyholder]),
        _policy("studio_update", allow, ("update",), subjects=[studio]),
        _policy("public_play", allow, ("play",), ("public",)),
        _policy(
            "token_play",
            allow,
            ("play",),
            ("live",),
            subjects=[{"token": StartsWith("v1."), "token_length": GreaterOrEqual(16)}],
        ),
        _policy(
            "premium_play",
            allow,
            ("play",),
            ("premium",),
            subjects=[{"tier": In("gold", "platinum")}],
        ),
        _policy("vod_play", allow, ("play",), ("vod",), subjects=[keyholder, office]),
        _policy("studio_play", allow, ("play",), subjects=[studio]),
        _policy("connect_known", allow, ("connect",), subjects=[studio, office, keyholder]),
        _policy("done_ack", allow, ("publish_done", "play_done")),
        _policy("discover_studio", allow, ("discover",), subjects=[studio]),
    ]
    forbidden = [
        _policy(f"forbidden {n}", deny, publish_play, name=Eq(name))
        for n, name in enumerate(facts.forbidden_names)
    ]
    guests = [
        _policy(f"guest {n}", allow, publish_play, subjects=[{"key": Eq(key)}])
        for n, key in enumerate(facts.guest_keys)
    ]
    return reference + forbidden + guests


def build(facts: Facts) -> PeerDecide:
    storage = MemoryStorage()
    for policy in policies(facts):
        storage.add(policy)
    # is_allowed_check: the decision without is_allowed's info log line per request.
    is_allowed = Guard(storage, RulesChecker()).is_allowed_check

    def decide(event: Event, _state: object) -> bool:
        params = event.params
        token = params.get("token", "")
        day, second = local_clock(event.time)
        client = {
            "ip": client_address(event.client_ip),
            "key": params.get("key", ""),
            "token": token,
            "token_length": len(token),
            "tier": params.get("tier", ""),
        }
        inquiry = Inquiry(
            action=event.action,
            subject=client,
            resource={"app": event.app, "name": event.stream},
            context={"day": day, "second": second},
        )
        return is_allowed(inquiry)

    return decide


PEER = Peer(
    name="Vakt",
    package="vakt",
    precomputed="token length, local weekday and second; address normalized",
    build=build,
)
