"""Nimble's playback session authorization request: one new viewer session, as a ``play`` event.

Nimble POSTs a JSON description of the session (client IP, protocol, URL or app/stream,
headers) when a viewer starts, for the apps WMSPanel protects. The key names are
**[unverified]**: the only copy of Softvelum's article has its JSON examples stripped. So every
field is looked up under the spellings a JSON producer plausibly uses, compared without case,
``_`` or ``-`` (``ip``, ``clientIp``, ``client_ip``, ``IP``, ``remote_ip``... are one name), in
the priority order of :data:`ALIASES`. Where aliases of a field that decides access (client IP,
app, stream) disagree, the request is refused rather than guessed. The body itself is kept whole
in ``raw["body"]``, so a policy can read whatever Nimble really sends before this module learns
its name.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from castgate import Event, MalformedRequest, first_values
from castgate_nimble.body import present

#: Field -> accepted spellings, normalized (lower case, no ``_`` or ``-``), most specific first.
ALIASES: Mapping[str, tuple[str, ...]] = {
    "ip": (
        "clientip",
        "ip",
        "remoteip",
        "remoteaddr",
        "remoteaddress",
        "clientaddr",
        "clientaddress",
        "addr",
        "userip",
        "viewerip",
    ),
    "port": ("clientport", "remoteport"),
    "app": ("app", "application", "appname", "applicationname"),
    "stream": ("stream", "streamname"),
    "url": ("url", "uri", "requesturl", "requesturi", "fullurl", "path"),
    "protocol": ("protocol", "proto", "playprotocol"),
    "session_id": ("sessionid", "session", "id", "connectionid", "connid", "clientid"),
    "host": ("host", "hostname"),
    "headers": ("headers", "httpheaders", "requestheaders"),
}

#: Fields that may come as JSON numbers (ids and ports); every other field must be text.
_NUMERIC = frozenset({"port", "session_id"})

#: Two spellings of these with different values are refused: either one could be Nimble's.
_MUST_AGREE = frozenset({"ip", "app", "stream"})

#: Keys of a PPV sync envelope; seen here, the sync was pointed at the wrong route.
_SYNC_KEYS = frozenset({"signature", "puzzle", "payperviewinfo", "apisyncrequest"})

_REPLACEMENT = "\ufffd"


def auth_event(body: Mapping[str, Any], node: str) -> Event:
    """The ``play`` event for one auth handler request body."""
    fields = _fields(body)
    url = _text(fields, "url")
    target = _target(url)
    app = _text(fields, "app") or target.app
    stream = _text(fields, "stream") or target.stream
    if not app and not stream:
        if _SYNC_KEYS & {_normal(key) for key in body}:
            raise MalformedRequest(
                "this is a PPV sync, not an auth request; point it at /hooks/nimble/ppv",
                action="play",
            )
        raise MalformedRequest("no stream, app or URL in the auth request", action="play")
    if _REPLACEMENT in app or _REPLACEMENT in stream:
        raise MalformedRequest("app or stream name is not valid UTF-8", action="play")
    ip, ip_port = _address(_text(fields, "ip"))
    port = _port(fields.get("port")) or ip_port
    session_id = _text(fields, "session_id")
    normalized: dict[str, Any] = {
        "ip": ip,
        "port": port,
        "app": app,
        "stream": stream,
        "url": url,
        "path": target.path,
        "query": _query_lists(target.query),
        "protocol": _text(fields, "protocol"),
        "session_id": session_id,
        "host": _text(fields, "host") or target.host,
        "headers": _headers(fields.get("headers")),
    }
    return Event(
        vendor="nimble",
        action="play",
        app=app,
        stream=stream,
        params=_params(target.query),
        client_ip=ip,
        client_port=port,
        session_id=session_id,
        node=node,
        role="viewer",
        raw={"event": "auth", "body": dict(body), "fields": normalized},
    )


def _normal(key: str) -> str:
    return key.lower().replace("_", "").replace("-", "")


def _fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """Each known field's value under its first present alias."""
    by_alias: dict[str, list[tuple[str, Any]]] = {}
    for key, value in body.items():
        if present(value):
            by_alias.setdefault(_normal(key), []).append((key, value))
    fields: dict[str, Any] = {}
    for field, aliases in ALIASES.items():
        found = [pair for alias in aliases for pair in by_alias.get(alias, [])]
        if not found:
            continue
        if field in _MUST_AGREE:
            values = {_comparable(field, _scalar(field, key, value)) for key, value in found}
            if len(values) > 1:
                keys = ", ".join(key for key, _ in found)
                raise MalformedRequest(f"conflicting {field} values in {keys}", action="play")
        key, value = found[0]
        fields[field] = value if field == "headers" else _scalar(field, key, value)
    return fields


def _scalar(field: str, key: str, value: Any) -> str:
    """A field's value as text; integers only for ids and ports; anything else is refused."""
    if isinstance(value, str):
        return value.strip()
    if field in _NUMERIC and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise MalformedRequest(f"{key!r} must be text, not JSON {type(value).__name__}", action="play")


def _comparable(field: str, text: str) -> str:
    return _address(text)[0] if field == "ip" else text


def _text(fields: Mapping[str, Any], field: str) -> str:
    value = fields.get(field, "")
    return value if isinstance(value, str) else ""


@dataclass(frozen=True, slots=True)
class _Target:
    """What a playback URL names."""

    app: str = ""
    stream: str = ""
    path: str = ""
    query: str = ""
    host: str = ""


def _target(url: str) -> _Target:
    """App, stream, path, query and host of a Nimble playback URL, absolute or a bare path.

    Nimble's playback paths are ``/app/stream/<file>`` (``playlist.m3u8``, ``manifest.mpd``,
    ``mpegts``, ...), or ``/app/stream`` for SLDP and WebRTC. A path whose meaning depends on
    how it is normalized (``..``, ``.``, ``//``, an encoded ``/``) is refused: Nimble may serve
    another stream than the one its segments seem to name.
    """
    if not url:
        return _Target()
    try:
        parts = urlsplit(url)
    except ValueError:
        raise MalformedRequest("the session URL cannot be parsed", action="play") from None
    if parts.scheme or parts.netloc:
        path, query, host = parts.path, parts.query, parts.netloc
    else:
        path, _, query = url.partition("?")
        query, host = query.partition("#")[0], ""
    inner = path.removeprefix("/").removesuffix("/")
    segments = [unquote(segment, errors="replace") for segment in inner.split("/")] if inner else []
    if any(_ambiguous(segment) for segment in segments):
        raise MalformedRequest("ambiguous path in the session URL", action="play")
    app = segments[0] if segments else ""
    stream = segments[1] if len(segments) > 1 else ""
    return _Target(app, stream, path, query, host)


def _ambiguous(segment: str) -> bool:
    return segment in ("", ".", "..") or "/" in segment or "\\" in segment


def _params(query: str) -> dict[str, str]:
    # First value wins for a repeated arg; raw.fields.query keeps all of them.
    return first_values(parse_qsl(query, keep_blank_values=True, errors="replace"))


def _query_lists(query: str) -> dict[str, list[str]]:
    lists: dict[str, list[str]] = {}
    for key, value in parse_qsl(query, keep_blank_values=True, errors="replace"):
        lists.setdefault(key, []).append(value)
    return lists


def _address(text: str) -> tuple[str, int | None]:
    """The client address and port where the text is ``addr``, ``addr:port`` or
    ``[addr]:port``; the text as sent otherwise (a policy then finds it in no address set)."""
    host, port = text, ""
    if text.startswith("[") and "]" in text:
        host, _, port = text[1:].partition("]")
        port = port.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    try:
        ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return text, None
    return host, _port(port)


def _port(value: object) -> int | None:
    text = value if isinstance(value, str) else ""
    if text.isdigit() and text.isascii() and 0 < int(text) < 65536:
        return int(text)
    return None


def _headers(value: object) -> dict[str, str]:
    """Request headers with lower-case names, from an object or a list of name/value pairs;
    anything else stays only in ``raw.body``."""
    pairs: Sequence[Any]
    if isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, list):
        pairs = [
            (item.get("name"), item.get("value")) if isinstance(item, Mapping) else item
            for item in value
        ]
    else:
        return {}
    headers: dict[str, str] = {}
    for pair in pairs:
        if not (isinstance(pair, list | tuple) and len(pair) == 2):
            continue
        name, content = pair
        if isinstance(content, int) and not isinstance(content, bool):
            content = str(content)
        if isinstance(name, str) and isinstance(content, str):
            headers.setdefault(name.lower(), content)
    return headers
