"""Which events open, refresh and close sessions, and how a session is named.

Backends (memory, Redis) share these rules so a policy decides the same whichever one holds the
state. Vendors translate; this module is where an ``Event`` becomes a change to live sessions.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from castgate.events import Decision, Effect, Event

#: The param counted by ``sessions.key_*``: by convention the stream key travels as ``?key=``.
KEY_PARAM = "key"


class Change(Enum):
    OPEN = "open"
    REFRESH = "refresh"
    CLOSE = "close"
    NONE = "none"


_OPENING_DECISIONS = {"publish": "publisher", "play": "viewer"}
_OPENING_NOTICES = {"publish_started": "publisher", "play_started": "viewer"}
_CLOSING = {"publish_done": "publisher", "play_done": "viewer", "done": "", "disconnect": ""}


@dataclass(frozen=True, slots=True)
class SessionChange:
    change: Change
    #: ``publisher``, ``viewer``, or ``""`` for a close that ends every role of the connection.
    role: str


_NO_CHANGE = SessionChange(Change.NONE, "")
# Every change there can be, made once: this runs for every request.
_CHANGES = {
    (change, role): SessionChange(change, role)
    for change in Change
    for role in ("publisher", "viewer", "")
}


def change_for(event: Event, decision: Decision) -> SessionChange:
    """What ``decision`` on ``event`` does to the live sessions."""
    action = event.action
    if action in _OPENING_DECISIONS:
        if decision.effect is Effect.ALLOW:
            return _CHANGES[(Change.OPEN, _OPENING_DECISIONS[action])]
        return _NO_CHANGE
    if action in _OPENING_NOTICES:
        return _CHANGES[(Change.OPEN, _OPENING_NOTICES[action])]
    if action == "update":
        role = event.role if event.role in ("publisher", "viewer") else ""
        if decision.effect is Effect.DENY:
            return _CHANGES[(Change.CLOSE, role)]
        return _CHANGES[(Change.REFRESH, role)]
    if action in _CLOSING:
        role = _CLOSING[action] or (event.role if event.role in ("publisher", "viewer") else "")
        return _CHANGES[(Change.CLOSE, role)]
    return _NO_CHANGE


def connection_id(event: Event) -> str:
    """What names one connection of one vendor's server.

    nginx-rtmp's ``clientid`` is unique per worker lifetime only, so the node and stream name
    are part of the name; a vendor without a session id is named by node, app, stream and address.
    """
    if event.session_id:
        return "|".join((event.vendor, event.node, event.session_id, event.stream))
    return "|".join((event.vendor, event.node, event.app, event.stream, event.client_ip))


def session_id(event: Event, role: str) -> str:
    return f"{connection_id(event)}|{role}"


@dataclass(slots=True)
class Session:
    """One live publisher or viewer."""

    id: str
    connection: str
    vendor: str
    role: str
    app: str
    stream: str
    client_ip: str
    key: str
    node: str
    #: The vendor's own session id, for enforcers that end sessions through the vendor's API.
    vendor_session: str
    opened: float
    last_seen: float
    #: When an update was last received: sessions that get updates expire sooner when they stop.
    updated: bool
    #: Epoch seconds after which the session must end (``allow with { lifetime: ... }``).
    ends: float | None
    #: The rule that admitted it.
    rule: str | None
    #: The event that opened it, re-decided when the policy is reloaded.
    event: Event
    #: Why castgate ended it (lifetime, reload); ``""`` while it may live.
    ended_because: str = ""

    def scopes(self) -> list[tuple[str, str]]:
        """The (scope, key) pairs this session counts under."""
        pairs = [("stream", self.stream), ("app", self.app), ("client", self.client_ip)]
        if self.key:
            pairs.append(("key", self.key))
        return [(scope, key) for scope, key in pairs if key]


def new_session(
    event: Event, decision: Decision, role: str, connection: str | None = None
) -> Session:
    """The session ``decision`` on ``event`` opens; ``connection`` if the caller has it already."""
    lifetime = decision.response.get("lifetime") if decision.response else None
    ends = event.time + float(lifetime) if isinstance(lifetime, int | float) else None
    key = event.params.get(KEY_PARAM)
    connection = connection_id(event) if connection is None else connection
    return Session(
        id=f"{connection}|{role}",
        connection=connection,
        vendor=event.vendor,
        role=role,
        app=event.app,
        stream=event.stream,
        client_ip=event.client_ip,
        key=key if isinstance(key, str) else "",
        node=event.node,
        vendor_session=event.session_id,
        opened=event.time,
        last_seen=event.time,
        updated=False,
        ends=ends,
        rule=decision.rule,
        event=event,
    )
