"""The ``nginx_rtmp`` vendor: nginx-rtmp / nanocosmos bintu notify requests in, status codes out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import Response

from castgate import (
    NOTIFICATIONS,
    Decision,
    Effect,
    Event,
    MalformedRequest,
    ResponseField,
    Vendor,
    first_values,
    is_blank,
)
from castgate_nginx_rtmp.form import REPLACEMENT, read_body, split_pairs
from castgate_nginx_rtmp.layout import ACTIONS, LAYOUTS, Split, split_query
from castgate_nginx_rtmp.rename import rename_problems

_ROLES: Mapping[str, str] = {
    "update_publish": "publisher",
    "publish_done": "publisher",
    "update_play": "viewer",
    "play_done": "viewer",
}

#: Keys castgate adds to ``raw``; a client arg with one of these names is overwritten and
#: reported as spoofed.
_RAW_KEYS = ("ordering", "spoofed", "method", "fields")

#: Only these calls can be redirected to another name: on connect the Location would become the
#: application name, and update/done ignore it.
_RENAMEABLE = frozenset({"publish", "play"})

_MAX_REASON = 200


class NginxRtmp(Vendor):
    """nginx-rtmp's ``on_*`` notify webhooks.

    ``/hooks/nginx_rtmp`` reads upstream (arut) bodies, as Debian's libnginx-mod-rtmp sends them;
    ``/hooks/nginx_rtmp/fork`` reads the sergey-dryabzhinsky fork's and nanocosmos bintu's.
    """

    name: ClassVar[str] = "nginx_rtmp"
    routes: ClassVar[tuple[str, ...]] = ("", "fork")
    actions: ClassVar[frozenset[str]] = frozenset(ACTIONS.values())
    response_fields: ClassVar[Mapping[str, ResponseField]] = {
        "rename": ResponseField(
            "string",
            "publish/play under this stream name instead (302 Location), or relay to "
            "rtmp://IP[:port]/app/name; at most 254 bytes, no '?', whitespace or control chars",
        )
    }

    async def parse(self, request: Request, route: str) -> Event:
        layout = LAYOUTS.get(route)
        if layout is None:
            raise MalformedRequest(f"unknown nginx_rtmp route {route[:40]!r}")
        body = await read_body(request)
        url_query: bytes = request.scope.get("query_string", b"")
        if request.method == "GET" or not body:
            # notify_method get: the parameters ride in the URL, after the operator's own query.
            body, url_query = split_query(url_query, route)
        split = layout(split_pairs(body))
        return _event(split, request, url_query)

    def render(self, decision: Decision, event: Event) -> Response:
        if decision.effect is Effect.DENY:
            # Any non-2xx/3xx drops the RTMP connection; on update it ends the running session.
            return _text(403, decision.reason or "denied")
        rename = decision.response.get("rename")
        if rename is not None and event.action in _RENAMEABLE:
            problems = rename_problems(rename)
            if problems:
                return _text(403, f"invalid rename: {problems[0]}")
            return _redirect(rename)
        return _text(200, "")

    def render_malformed(self, error: MalformedRequest, route: str) -> Response:
        if error.action in NOTIFICATIONS:
            return _text(400, error.reason)
        # A decision call we cannot read is refused: letting it through would admit anyone who
        # can garble a request.
        return _text(403, error.reason)

    def validate_response(self, data: Mapping[str, Any]) -> list[str]:
        if "rename" not in data:
            return []
        return rename_problems(data["rename"])


def _event(split: Split, request: Request, url_query: bytes) -> Event:
    fields = split.fields
    action = ACTIONS[split.call]
    stream = _present(fields.get("name", ""))
    app = _present(fields.get("app", ""))
    if action in ("publish", "play") and not stream:
        # Upstream leaves an empty name out of later update/done bodies, so a client arg
        # "name=..." would take its slot there; such a session must never start.
        raise MalformedRequest(f"{split.call} with an empty stream name", action=action)
    if REPLACEMENT in stream or REPLACEMENT in app:
        raise MalformedRequest("stream name or app is not valid UTF-8", action=action)
    return Event(
        vendor=NginxRtmp.name,
        action=action,
        app=app,
        stream=stream,
        params=first_values(split.args),
        client_ip=_present(fields.get("addr", "")),
        session_id=_present(fields.get("clientid", "")),
        node=_node(url_query) or (request.client.host if request.client else ""),
        role=_ROLES.get(split.call, ""),
        raw=_raw(split, request.method),
    )


def _present(value: str) -> str:
    """``""`` for the ways nginx-rtmp and bintu say "nothing": empty, a lone space, ``nil``."""
    return "" if is_blank(value) else value


def _node(url_query: bytes) -> str:
    for key, value in split_pairs(url_query):
        if key == "node" and _present(value):
            return value
    return ""


def _raw(split: Split, method: str) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    for key, value in split.pairs:
        previous = raw.get(key)
        if previous is None:
            raw[key] = value
        elif isinstance(previous, list):
            previous.append(value)
        else:
            raw[key] = [previous, value]
    spoofed = set(split.spoofed) | {key for key, _ in split.args if key in _RAW_KEYS}
    raw["ordering"] = split.ordering
    raw["spoofed"] = sorted(spoofed)
    raw["method"] = method
    raw["fields"] = dict(split.fields)
    return raw


def _text(status: int, text: str) -> Response:
    # nginx-rtmp acts only once the connection closes, so never leave it open for keep-alive.
    body = "".join(" " if not char.isprintable() else char for char in text)[:_MAX_REASON]
    media = "text/plain" if body else None
    return Response(body, status_code=status, media_type=media, headers={"Connection": "close"})


def _redirect(location: str) -> Response:
    response = Response(status_code=302, headers={"Connection": "close"})
    # Set by hand: helpers like RedirectResponse quote or absolutise the URL, and nginx-rtmp
    # takes the value verbatim as the new stream name.
    response.raw_headers.append((b"location", location.encode("utf-8")))
    return response
