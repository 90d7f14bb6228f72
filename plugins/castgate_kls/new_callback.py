"""The new KLS callback (JSON, ``NotifyType`` = ``PubStart`` | ``PubEnd``) as an event.

Field names are matched without regard to case ([unverified] the docs spell them one way, but
``Pubdomain`` and ``PubDomain`` differ only there); two keys that differ only in case are refused
like any repeated key, because which one KLS meant cannot be told.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from castgate import Event, MalformedRequest
from castgate_kls.notice import VENDOR, add_own_keys
from castgate_kls.pubparam import pub_params
from castgate_kls.session import domain_name, push_key
from castgate_kls.values import millis, port, text

#: ``NotifyType`` (case-folded) to action; any other type is logged as ``notify``.
ACTIONS: Mapping[str, str] = {"pubstart": "publish_started", "pubend": "publish_done"}

_TIME_FIELDS = ("PubStartUnixTime", "PubEndUnixTime")
#: Which timestamp dates which event. The 2020 doc's PubEnd table calls its time
#: PubStartUnixTime; its sample sends PubEndUnixTime, and a PubEnd without one is dated on
#: arrival rather than at the push's start, which would make the push look zero-length.
_EVENT_TIME: Mapping[str, tuple[str, ...]] = {
    "publish_started": ("PubStartUnixTime",),
    "publish_done": ("PubEndUnixTime",),
    "notify": ("PubEndUnixTime", "PubStartUnixTime"),
}


def new_event(body: Mapping[str, Any]) -> Event:
    """The event for a decoded new-version body (a JSON object, or its form-encoded spelling)."""
    fields = _Fields(body)
    notify_type = text(fields.get("NotifyType"), "NotifyType")
    if not notify_type:
        raise MalformedRequest("no NotifyType: not a KLS push callback")
    action = ACTIONS.get(notify_type.strip().casefold(), "notify")
    try:
        return _event(fields, notify_type, action)
    except MalformedRequest as error:
        raise MalformedRequest(error.reason, action=action) from None


def _event(fields: _Fields, notify_type: str, action: str) -> Event:
    raw = dict(fields.body)
    stamps: dict[str, int] = {}
    for name in _TIME_FIELDS:
        ms = millis(fields.get(name), name)
        if ms is not None:
            # One type for policies, whichever doc version's spelling KLS sent.
            raw[fields.key(name)] = ms
            stamps[name] = ms
    stamp = next((stamps[name] for name in _EVENT_TIME[action] if name in stamps), None)
    params = pub_params(fields.get("PubParam"))
    app = text(fields.get("App"), "App")
    stream = text(fields.get("Stream"), "Stream")
    domain = domain_name(text(fields.get("Pubdomain"), "Pubdomain"))
    for name in ("Version", "UniqueName", "PubEndMessage"):
        text(fields.get(name), name)  # type-checked only; kept in raw as sent
    sequence = text(fields.get("Sequence"), "Sequence")
    return Event(
        vendor=VENDOR,
        action=action,
        app=app,
        stream=stream,
        params=params,
        client_ip=text(fields.get("ClientIp"), "ClientIp").strip(),
        client_port=port(fields.get("ClientPort"), "ClientPort"),
        # Not PubParam's vdoid, unlike the form: a PubEnd may come without the PubParam its
        # PubStart had, and would then not pair.
        session_id=sequence or push_key(domain, app, stream, ""),
        node=text(fields.get("Node"), "Node").strip(),
        role="" if action == "notify" else "publisher",
        time=time.time() if stamp is None else stamp / 1000.0,
        raw=add_own_keys(raw, callback="new", event=notify_type, domain=domain),
    )


class _Fields:
    """The body's top-level keys, looked up without regard to case."""

    def __init__(self, body: Mapping[str, Any]) -> None:
        self.body = body
        self._keys: dict[str, str] = {}
        for key in body:
            folded = key.casefold()
            if folded in self._keys:
                raise MalformedRequest(
                    f"fields {self._keys[folded][:40]!r} and {key[:40]!r} differ only in case"
                )
            self._keys[folded] = key

    def key(self, name: str) -> str:
        return self._keys.get(name.casefold(), name)

    def get(self, name: str) -> Any:
        key = self._keys.get(name.casefold())
        return None if key is None else self.body[key]
