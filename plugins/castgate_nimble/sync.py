"""Nimble's pay-per-view sync and WMSPanel's (un)publish alerts: one signed envelope, many events.

Both share the push-API envelope ``{"ID", "Puzzle", "Signature", ...}`` (optionally wrapped as
``{"ApiSyncRequest": {...}}``), signed ``base64(md5_raw(ID + Puzzle + Token))`` with the
push-API token set in WMSPanel. The envelope is verified before anything else is read. A PPV
sync lists every tracked viewer in the tree ``PayPerViewInfo.VHost[].Application[].Instance[]
.Stream[].Player[]``; an alert carries ``Publish`` and/or ``Unpublish`` items. Each player
becomes one ``update`` event, each alert item a ``publish_started`` or ``publish_done`` event,
and the vendor answers once for all of them.

The signature covers ``ID`` and ``Puzzle`` only, not the body: whoever has seen one signed sync
can send another body under the same envelope. Keep the route on a private network or behind
HTTPS; see the README.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from castgate import Batch, Event, MalformedRequest
from castgate_nimble.body import present
from castgate_nimble.signing import sync_signature_matches

#: The variable the push-API token is read from, when the plugin loads.
TOKEN_VARIABLE = "CASTGATE_NIMBLE_TOKEN"

_ALERTS: Mapping[str, str] = {"Publish": "publish_started", "Unpublish": "publish_done"}
_ALERT_FIELDS = (
    ("vhost", "VHostName"),
    ("app", "AppName"),
    ("instance", "AppInstanceName"),
    ("stream", "StreamName"),
)


class ForgedSync(MalformedRequest):
    """A sync that is unsigned, wrongly signed, or cannot be verified for want of a token.

    Answered with a 403 that denies nobody: a forged sync must never cut off real viewers."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, action="update")


def sync_batch(body: Mapping[str, Any], token: str | None, node: str) -> Batch:
    """The events of one signed push-API request; :class:`ForgedSync` if it is not signed."""
    envelope = _unwrap(body)
    sync_id, puzzle = _verify(envelope, token)
    sync = {"ID": sync_id, "Puzzle": puzzle}
    events: list[Event] = []
    for key, action in _ALERTS.items():
        events.extend(_alert_event(item, key, action, sync, node) for item in _items(envelope, key))
    for info in _items(envelope, "PayPerViewInfo"):
        events.extend(_player_events(info, sync, node))
    players = sum(1 for event in events if event.action == "update")
    return Batch(tuple(events), context={"sync_id": sync_id, "players": players})


def _unwrap(body: Mapping[str, Any]) -> Mapping[str, Any]:
    if "ApiSyncRequest" not in body:
        return body
    inner = body["ApiSyncRequest"]
    if len(body) != 1 or not isinstance(inner, dict):
        # Two envelopes in one body: which one was signed is anyone's guess.
        raise _malformed("ApiSyncRequest must be an object and the only key")
    return inner


def _verify(envelope: Mapping[str, Any], token: str | None) -> tuple[str, str]:
    values = [envelope.get(key) for key in ("ID", "Puzzle", "Signature")]
    texts = [value for value in values if isinstance(value, str) and value]
    if len(texts) != len(values):
        raise ForgedSync("unsigned sync: ID, Puzzle and Signature must be non-empty strings")
    sync_id, puzzle, signature = texts
    if not token:
        raise ForgedSync(f"no push-API token to verify the sync with: set {TOKEN_VARIABLE}")
    if not sync_signature_matches(sync_id, puzzle, signature, token):
        raise ForgedSync(f"sync signature does not match the token in {TOKEN_VARIABLE}")
    return sync_id, puzzle


def _player_events(info: Mapping[str, Any], sync: Mapping[str, str], node: str) -> list[Event]:
    events: list[Event] = []
    for vhost in _items(info, "VHost"):
        for application in _items(vhost, "Application"):
            for instance in _items(application, "Instance"):
                for stream in _items(instance, "Stream"):
                    path = {
                        "vhost": _text(vhost, "name"),
                        "application": _text(application, "name"),
                        "instance": _text(instance, "name"),
                        "stream": _text(stream, "name"),
                    }
                    events.extend(
                        _player_event(player, path, sync, node)
                        for player in _items(stream, "Player")
                    )
    return events


def _player_event(
    player: Mapping[str, Any], path: Mapping[str, str], sync: Mapping[str, str], node: str
) -> Event:
    player_id = _text(player, "id")
    params = {
        "id": player_id,
        "delta": _delta(player.get("delta")),
        "vhost": path["vhost"],
        "instance": path["instance"],
    }
    return Event(
        vendor="nimble",
        action="update",
        app=path["application"],
        stream=path["stream"],
        params={key: value for key, value in params.items() if present(value)},
        client_ip=_text(player, "ip"),
        session_id=_text(player, "sessionid") or player_id,
        node=node,
        role="viewer",
        raw={"event": "ppv_sync", "player": dict(player), "path": dict(path), "sync": dict(sync)},
    )


def _alert_event(
    item: Mapping[str, Any], key: str, action: str, sync: Mapping[str, str], node: str
) -> Event:
    fields = {name: _text(item, wire) for name, wire in _ALERT_FIELDS}
    return Event(
        vendor="nimble",
        action=action,
        app=fields["app"],
        stream=fields["stream"],
        params={name: fields[name] for name in ("vhost", "instance") if fields[name]},
        node=node,
        role="publisher",
        raw={"event": key, "alert": dict(item), "sync": dict(sync)},
    )


def _items(parent: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    """The objects under ``key``: absent, null or ``[]`` is none; a lone object is one (as
    XML-to-JSON converters write a single element)."""
    value = parent.get(key)
    if not present(value):
        return []
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list) and all(isinstance(item, dict) for item in value):
        return value
    raise _malformed(f"{key} must be an array of objects")


def _text(node: Mapping[str, Any], key: str) -> str:
    """A name or id as text: strings as sent, integers in decimal; absent or blank is ``""``."""
    value = node.get(key)
    if not present(value):
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise _malformed(f"{key!r} must be a string, not JSON {type(value).__name__}")


def _delta(value: object) -> object:
    """Watch time since the previous sync, as sent (a number, or numeric text)."""
    if not present(value):
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return value
    raise _malformed("Player delta must be a number")


def _malformed(reason: str) -> MalformedRequest:
    return MalformedRequest(reason, action="update")
