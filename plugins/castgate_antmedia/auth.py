"""AMS's authentication webhooks into Events the policy decides.

* ``webhookAuthenticateURL`` (publish, every ingest: RTMP, SRT, WebRTC), since AMS 2.4.0.2:
  ``appName``, ``name`` (= ``streamId``, for receivers older than 2.4.3), ``streamId``, ``mode``,
  optional ``token``, ``subscriberId``, ``subscriberCode``, ``metaData`` and ``queryParams``
  (a Java ``Map.toString()``, see :mod:`castgate_antmedia.javamap`).
* ``webhookPlayAuthUrl`` (WebRTC play, Enterprise, since 2.9.1): ``streamId``, ``mode: "play"``,
  ``appName``, ``origin``, optional ``token``, ``subscriberCode``, ``subscriberId``,
  ``metaData`` and ``ipAddress`` (only when AMS's JVM runs with
  ``--add-opens java.base/sun.nio.ch=ALL-UNNAMED``).

AMS writes these bodies itself (Gson); only the client's values inside them are untrusted, and
they stay in ``params``. ``metaData`` is the broadcast's metadata from AMS's datastore, set by
the operator, so it goes to ``raw`` only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from castgate import Event, MalformedRequest
from castgate_antmedia.body import embedded_json
from castgate_antmedia.fields import params, present, text, viewer_session
from castgate_antmedia.javamap import JavaMap, parse_java_map

_TEXT_KEYS = (
    "appName",
    "name",
    "streamId",
    "mode",
    "token",
    "subscriberId",
    "subscriberCode",
    "origin",
    "ipAddress",
)
#: The client's values AMS sends as fields of their own; they win over queryParams entries of
#: the same name, which are AMS's unescaped rendering of the same query (see javamap).
_CLIENT_FIELDS = ("token", "subscriberId", "subscriberCode")

#: Keys castgate adds to ``raw``; AMS sends neither.
RAW_KEYS = ("query", "spoofed")


def auth_event(fields: Mapping[str, Any], action: str, *, url_node: str, peer: str) -> Event:
    """A publish (``action="publish"``) or play (``"play"``) authentication body as an Event."""
    for key in _TEXT_KEYS:
        text(fields, key)
    stream_id, name = text(fields, "streamId"), text(fields, "name")
    if stream_id and name and stream_id != name:
        # AMS writes both from one value; a body where they differ was written by someone else.
        raise MalformedRequest("name and streamId differ", action=action)
    stream = stream_id or name
    if not stream:
        raise MalformedRequest(f"{action} authentication without a streamId", action=action)
    _check_mode(text(fields, "mode"), action)
    query = _query(fields.get("queryParams"), action)
    client = dict(query.entries)
    client.update((key, fields[key]) for key in _CLIENT_FIELDS if present(fields.get(key)))
    subscriber = text(fields, "subscriberId")
    ip, port = client_address(text(fields, "ipAddress"))
    raw = {
        key: embedded_json(value) if key == "metaData" else value for key, value in fields.items()
    }
    raw["query"] = dict(query.entries)
    spoofed = {key for key in RAW_KEYS if key in fields}
    if query.ambiguous:
        spoofed.add("queryParams")
    raw["spoofed"] = sorted(spoofed)
    publisher = action == "publish"
    return Event(
        vendor="antmedia",
        action=action,
        app=text(fields, "appName"),
        stream=stream,
        params=params(client.items()),
        client_ip=ip,
        client_port=port,
        # The publish session AMS then reports (liveStreamStarted/Ended) has the stream id too.
        session_id=stream if publisher else viewer_session(stream, subscriber),
        node=url_node or peer,
        role="publisher" if publisher else "viewer",
        raw=raw,
    )


def _check_mode(mode: str, action: str) -> None:
    # mode is opaque (RTMP: live/record/append) except that play authentication says "play";
    # a body for the other hook means the operator pointed an AMS setting at the wrong route.
    if action == "publish" and mode == "play":
        raise MalformedRequest(
            "a play authentication (mode play) sent to the publish route; point "
            "webhookPlayAuthUrl at /hooks/antmedia/play",
            action=action,
        )
    if action == "play" and mode and mode != "play":
        raise MalformedRequest(
            f"a publish authentication (mode {mode[:20]!r}) sent to the play route; point "
            "webhookAuthenticateURL at /hooks/antmedia/publish",
            action=action,
        )


def _query(value: Any, action: str) -> JavaMap:
    if not present(value):
        return JavaMap()
    if isinstance(value, str):
        return parse_java_map(value)
    if isinstance(value, dict):
        # Not what AMS sends today, but unambiguous should a version send real JSON.
        return JavaMap(dict(value))
    raise MalformedRequest(
        f"queryParams must be a string, not {type(value).__name__}", action=action
    )


def client_address(value: str) -> tuple[str, int | None]:
    """``ipAddress`` as an address and port.

    The documented form is a bare address (``127.0.0.1``); a Java socket address
    (``/127.0.0.1:51000``, ``host/[::1]:51000``) is read too [unverified]. Anything else is kept
    as sent, and policies treat it as no address.
    """
    candidate = value.strip().rpartition("/")[2]
    if _is_ip(candidate):
        return candidate, None
    host, colon, port = candidate.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if colon and _is_ip(host) and port.isascii() and port.isdigit() and len(port) <= 5:
        number = int(port)
        if 0 < number < 65536:
            return host, number
    return value, None


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
