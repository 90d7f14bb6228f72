"""The two values every layer agrees on: the normalized :class:`Event` and the :class:`Decision`.

A vendor plugin turns its request into an ``Event``; the policy engine turns an ``Event`` into a
``Decision``; the plugin renders the ``Decision`` back in its vendor's dialect. Nothing else crosses
those boundaries.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

#: Actions the core knows. A vendor maps each of its calls onto one of these; a plugin may declare
#: more in :attr:`castgate.Vendor.actions`, and the policy checker accepts those too.
ACTIONS: frozenset[str] = frozenset(
    {
        "connect",  # a client opened a connection (nginx-rtmp on_connect)
        "publish",  # a publisher wants to start (decision)
        "play",  # a viewer wants to start (decision)
        "publish_started",  # a publish began without asking first (notification)
        "play_started",  # a viewer began without asking first (notification)
        "update",  # a running session is re-checked (decision; deny ends the session)
        "publish_done",  # a publisher stopped (notification)
        "play_done",  # a viewer stopped (notification)
        "done",  # a session that published or played closed (notification)
        "record_done",  # a recording file was finished (notification)
        "disconnect",  # a connection closed (notification)
        "discover",  # a transcoder asks for a price (Livepeer orchestrator; decision)
        "notify",  # any other vendor event (notification)
    }
)

#: Of :data:`ACTIONS`, those that are always acknowledged: the stream is already gone or the vendor
#: ignores the answer, so the policy is consulted only for the log, never to refuse.
NOTIFICATIONS: frozenset[str] = frozenset(
    {
        "publish_started",
        "play_started",
        "publish_done",
        "play_done",
        "done",
        "record_done",
        "disconnect",
        "notify",
    }
)


class Effect(StrEnum):
    ALLOW = "allow"
    DENY = "deny"
    ACK = "ack"


@dataclass(slots=True)
class Event:
    """One request from a streaming server, in the vendor-neutral form policies read.

    Every text field is ``""`` when the vendor did not send it, never ``None``: policies see a
    missing field through :mod:`castgate.lang` semantics, not through Python exceptions.
    """

    vendor: str
    action: str
    app: str = ""
    stream: str = ""
    #: The vendor's custom data: stream-name query args, PubParam, queryParams, ...
    params: Mapping[str, Any] = field(default_factory=dict)
    client_ip: str = ""
    client_port: int | None = None
    #: The vendor's identifier for the session (nginx-rtmp clientid, Ant Media id, KLS Sequence).
    session_id: str = ""
    #: Which server called: an edge name, a host, a node address.
    node: str = ""
    #: For ``update`` and ``done``: ``"publisher"`` or ``"viewer"`` where the vendor says which.
    role: str = ""
    #: When the request arrived, seconds since the epoch (UTC).
    time: float = field(default_factory=time.time)
    #: Everything the vendor sent, as parsed, for vendor-specific needs and the decision log.
    raw: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_notification(self) -> bool:
        return self.action in NOTIFICATIONS

    def to_dict(self) -> dict[str, Any]:
        """The event as plain JSON data; :meth:`from_dict` reads it back."""
        return {
            "vendor": self.vendor,
            "action": self.action,
            "app": self.app,
            "stream": self.stream,
            "params": dict(self.params),
            "client": {"ip": self.client_ip, "port": self.client_port},
            "session_id": self.session_id,
            "node": self.node,
            "role": self.role,
            "time": self.time,
            "raw": dict(self.raw),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Event:
        """Build an event from JSON data, as ``castgate eval`` and policy tests write it.

        ``time`` may be epoch seconds or an ISO 8601 string with an offset; ``client`` may be an
        object ``{"ip", "port"}`` or the flat keys ``client_ip``/``client_port``.
        """
        from castgate.timestamps import parse_timestamp

        unknown = set(data) - _EVENT_KEYS
        if unknown:
            raise ValueError(f"unknown event field(s): {', '.join(sorted(unknown))}")
        for required in ("vendor", "action"):
            if not isinstance(data.get(required), str) or not data[required]:
                raise ValueError(f"event field {required!r} must be a non-empty string")
        client = data.get("client") or {}
        if not isinstance(client, Mapping):
            raise ValueError("event field 'client' must be an object {ip, port}")
        params = data.get("params") or {}
        if not isinstance(params, Mapping):
            raise ValueError("event field 'params' must be an object")
        port = client.get("port", data.get("client_port"))
        raw_time = data.get("time")
        return cls(
            vendor=data["vendor"],
            action=data["action"],
            app=str(data.get("app") or ""),
            stream=str(data.get("stream") or ""),
            params=dict(params),
            client_ip=str(client.get("ip", data.get("client_ip")) or ""),
            client_port=int(port) if port not in (None, "") else None,
            session_id=str(data.get("session_id") or ""),
            node=str(data.get("node") or ""),
            role=str(data.get("role") or ""),
            time=time.time() if raw_time is None else parse_timestamp(raw_time),
            raw=dict(data.get("raw") or {}),
        )


_EVENT_KEYS = frozenset(
    {
        "vendor",
        "action",
        "app",
        "stream",
        "params",
        "client",
        "client_ip",
        "client_port",
        "session_id",
        "node",
        "role",
        "time",
        "raw",
    }
)


@dataclass(frozen=True, slots=True)
class RuleTrace:
    """What one rule did for one decision, for explanations."""

    rule: str
    effect: str
    #: ``True`` the condition held, ``False`` it did not, ``None`` it raised (see ``error``).
    matched: bool | None
    error: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    """The engine's answer for one event.

    ``rule`` names the rule that decided (rule names are unique across a policy set), or is
    ``None`` when the default applied. ``response`` is the allow rule's response data
    (``with {...}``), already evaluated against the event. ``failed`` is true when an evaluation
    error decided. For notifications the effect is always ``ack``; ``flagged`` then says that a
    deny rule matched (a violation to record or enforce, though the vendor is not refused).
    """

    effect: Effect
    reason: str
    rule: str | None = None
    response: Mapping[str, Any] = field(default_factory=dict)
    failed: bool = False
    flagged: bool = False
    trace: tuple[RuleTrace, ...] | None = None

    @property
    def allowed(self) -> bool:
        return self.effect is not Effect.DENY

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "effect": self.effect.value,
            "reason": self.reason,
            "rule": self.rule,
            "response": dict(self.response),
        }
        if self.failed:
            out["failed"] = True
        if self.flagged:
            out["flagged"] = True
        if self.trace is not None:
            out["trace"] = [
                {"rule": t.rule, "effect": t.effect, "matched": t.matched}
                | ({"error": t.error} if t.error else {})
                for t in self.trace
            ]
        return out
