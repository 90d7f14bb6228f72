"""AMS event webhooks (``listenerHookURL`` and the server's ``statusWebHookURL``) into Events.

AMS fills one map per event (``AntMediaApplicationAdapter.notifyHook``): ``id``, ``action``,
``app``, ``timestamp`` and optional fields, then merges the publisher's or viewer's own query
parameters into the SAME map. A parameter named like one of AMS's keys replaces AMS's value, so
the body carries only one ``id``, ``action`` or ``app``, and a forged one looks exactly like the
genuine one. What can be detected is listed in ``raw["spoofed"]`` (see :func:`_spoofed`); what
cannot is documented in docs/vendors/antmedia.md.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from castgate import Event, MalformedRequest
from castgate_antmedia.body import embedded_json
from castgate_antmedia.fields import params, present, text, viewer_session

#: AMS ``action`` -> (castgate action, role).
ACTIONS: Mapping[str, tuple[str, str]] = {
    "liveStreamStarted": ("publish_started", "publisher"),
    "liveStreamEnded": ("publish_done", "publisher"),
    "playStarted": ("play_started", "viewer"),
    "playStopped": ("play_done", "viewer"),
    "vodReady": ("notify", ""),
    "publishTimeoutError": ("notify", "publisher"),
    "encoderNotOpenedError": ("notify", "publisher"),
    "endpointFailed": ("notify", "publisher"),
    "idleTimeIsExpired": ("notify", "publisher"),
    "firstActiveTrackAddedInMainTrack": ("notify", ""),
    "noActiveSubtracksLeftInMainTrack": ("notify", ""),
    # Constants in AMS; sent by enterprise code only [unverified].
    "subtrackAddedInTheMainTrack": ("notify", ""),
    "subtrackLeftTheMainTrack": ("notify", ""),
    "liveStreamStatus": ("notify", "publisher"),
    # Server level (statusWebHookURL); AMS's unexpected-shutdown notice reuses this name.
    "highResourceUsage": ("notify", ""),
}

#: An action AMS does not (yet) send is still acknowledged and logged.
_OTHER = ("notify", "")

#: The keys notifyHook writes itself; anything else in such a body is a merged client parameter.
_HOOK_KEYS = frozenset(
    {
        "id",
        "action",
        "streamName",
        "category",
        "vodName",
        "vodId",
        "mainTrackId",
        "roomId",
        "subscriberId",
        "app",
        "metadata",
        "timestamp",
    }
)
_STATUS_NUMBERS = frozenset(
    {
        "width",
        "height",
        "totalByteReceived",
        "inputQueueSize",
        "speed",
        "encodingQueueSize",
        "dropFrameCountInEncoding",
        "dropPacketCountInIngestion",
    }
)
#: Keys of each action whose body AMS writes differently. liveStreamStatus and the server-level
#: hook merge no client parameters at all (they are "sealed"), so any other key there proves
#: the action itself came from a client's parameter on another event.
_OWN_KEYS: Mapping[str, frozenset[str]] = {
    "vodReady": _HOOK_KEYS | {"duration"},
    "liveStreamStatus": _STATUS_NUMBERS | {"id", "action", "timestamp", "streamName"},
    "highResourceUsage": frozenset({"action", "host", "resourceInfo", "appNames"}),
}
_SEALED = frozenset({"liveStreamStatus", "highResourceUsage"})

#: Text fields AMS writes from Java strings; another JSON type there is refused.
_TEXT_KEYS = (_HOOK_KEYS - {"metadata", "timestamp"}) | {"host", "appNames"}

#: Keys castgate adds to ``raw``; a client parameter of the same name is overwritten there (it
#: stays in ``params``) and reported as spoofed.
RAW_KEYS = ("event", "encoding", "delivery", "spoofed")

#: 9999-12-31T23:59:59.999Z in epoch milliseconds: no clock AMS runs on writes more.
_MAX_EPOCH_MS = 253_402_300_799_999


def hook_event(fields: Mapping[str, Any], encoding: str, *, url_node: str, peer: str) -> Event:
    """One event webhook body (JSON or form, already read into ``fields``) as an Event.

    ``url_node`` is the ``?node=`` of the hook URL, ``peer`` the address AMS called from.
    """
    event_name = text(fields, "action")
    if not event_name:
        raise MalformedRequest(
            "no action in the event webhook (publish and play authentication go to "
            "/hooks/antmedia/publish and /hooks/antmedia/play)"
        )
    for key in _TEXT_KEYS:
        text(fields, key)
    action, role = ACTIONS.get(event_name, _OTHER)
    own = _OWN_KEYS.get(event_name, _HOOK_KEYS)
    stream = text(fields, "id")
    subscriber = text(fields, "subscriberId")
    stamp = _epoch_ms(fields.get("timestamp"))
    spoofed = _spoofed(fields, event_name, encoding, own, stamp)
    # The genuine server-level hook names its host; no other event says which node sent it.
    genuine_server_hook = event_name == "highResourceUsage" and "action" not in spoofed
    host = text(fields, "host") if genuine_server_hook else ""
    raw = {key: _decoded(key, value) for key, value in fields.items() if key not in RAW_KEYS}
    raw["event"] = event_name
    raw["encoding"] = encoding
    if stamp is not None:
        # What a retry repeats exactly; the state layer de-duplicates on (id, action, time).
        raw["delivery"] = f"{stream}:{event_name}:{stamp}"
    raw["spoofed"] = spoofed
    return Event(
        vendor="antmedia",
        action=action,
        app=text(fields, "app"),
        stream=stream,
        params=params(
            (key, value) for key, value in fields.items() if key not in own or key == "subscriberId"
        ),
        session_id=viewer_session(stream, subscriber) if role == "viewer" else stream,
        node=url_node or host or peer,
        role=role,
        time=time.time() if stamp is None else stamp / 1000,
        raw=raw,
    )


def _decoded(key: str, value: Any) -> Any:
    # metadata is JSON text in form mode (and sometimes in JSON mode); resourceInfo always is.
    return embedded_json(value) if key in ("metadata", "resourceInfo") else value


def _epoch_ms(value: Any) -> int | None:
    """AMS's ``timestamp``: a string of epoch milliseconds, a number in liveStreamStatus."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 16:
        value = int(value)
    if isinstance(value, int) and 0 <= value <= _MAX_EPOCH_MS:
        return value
    return None


def _spoofed(
    fields: Mapping[str, Any],
    event_name: str,
    encoding: str,
    own: frozenset[str],
    stamp: int | None,
) -> list[str]:
    """Keys that AMS cannot have written as they stand: a client's parameter replaced them."""
    spoofed = {key for key in RAW_KEYS if key in fields}
    if event_name in _SEALED and _forged_sealed(fields, event_name, encoding, own):
        spoofed.add("action")
    # notifyHook writes the main track id under both names; a client can replace only one.
    main, room = fields.get("mainTrackId"), fields.get("roomId")
    if present(main) and present(room) and main != room:
        spoofed.update(("mainTrackId", "roomId"))
    if present(fields.get("timestamp")) and stamp is None:
        spoofed.add("timestamp")
    return sorted(spoofed)


def _forged_sealed(
    fields: Mapping[str, Any], event_name: str, encoding: str, own: frozenset[str]
) -> bool:
    if any(key not in own for key in fields):
        return True
    if event_name == "liveStreamStatus" and encoding == "json":
        # AMS writes these as JSON numbers; a client's parameter is always a string.
        numbers = [fields.get(key) for key in (*_STATUS_NUMBERS, "timestamp") if key in fields]
        return any(isinstance(value, str | bool) for value in numbers)
    return False
