"""The ``antmedia`` vendor: Ant Media Server webhooks in, bare status codes out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from starlette.requests import Request
from starlette.responses import Response

from castgate import Decision, Effect, Event, MalformedRequest, ResponseField, Vendor
from castgate_antmedia.auth import auth_event
from castgate_antmedia.body import (
    declared_charset,
    decode_text,
    form_fields,
    json_object,
    looks_like_json,
    read_body,
)
from castgate_antmedia.fields import peer, url_node
from castgate_antmedia.hooks import ACTIONS, hook_event

#: Route -> the action a request there is for, when its body cannot be read.
_ROUTES: Mapping[str, str] = {"": "notify", "publish": "publish", "play": "play"}

_MAX_REASON = 200


class AntMedia(Vendor):
    """Ant Media Server: event webhooks at ``/hooks/antmedia``, publish authentication at
    ``/hooks/antmedia/publish`` and play authentication at ``/hooks/antmedia/play``."""

    name: ClassVar[str] = "antmedia"
    routes: ClassVar[tuple[str, ...]] = tuple(_ROUTES)
    actions: ClassVar[frozenset[str]] = frozenset(
        {"publish", "play"} | {action for action, _ in ACTIONS.values()}
    )
    #: AMS reads nothing but the status code of any answer, so there is nothing to render and
    #: nothing for ``validate_response`` to refuse; ``castgate check`` refuses ``allow with``
    #: data for antmedia rules (the core's own keys, such as ``lifetime``, excepted).
    response_fields: ClassVar[Mapping[str, ResponseField]] = {}

    async def parse(self, request: Request, route: str) -> Event:
        action = _ROUTES.get(route)
        if action is None:
            raise MalformedRequest(f"unknown antmedia route {route[:40]!r}")
        try:
            return await self._parse(request, route, action)
        except MalformedRequest as error:
            error.action = error.action or action
            raise

    async def _parse(self, request: Request, route: str, action: str) -> Event:
        data = await read_body(request)
        charset = declared_charset(request.headers.get("content-type", ""))
        where = {"url_node": url_node(request), "peer": peer(request)}
        if route:
            # AMS sends authentication bodies as JSON only, whatever the header says.
            return auth_event(json_object(decode_text(data, charset)), action, **where)
        if not data.strip():
            raise MalformedRequest("empty event webhook body")
        # AMS >= 2.10 sends JSON, <= 2.9 a form, some 2024 builds JSON labelled text/plain: the
        # first character tells, not the header.
        if looks_like_json(data):
            return hook_event(json_object(decode_text(data, charset)), "json", **where)
        return hook_event(form_fields(data, charset), "form", **where)

    def render(self, decision: Decision, event: Event) -> Response:
        # Event webhooks count as delivered on exactly 200 (else AMS retries, if configured),
        # and the authentication webhooks allow on exactly 200; both ignore the body.
        if event.is_notification or decision.effect is not Effect.DENY:
            return Response(status_code=200)
        # Any other status denies; 403 says so to a human reading AMS's log, never a 3xx.
        return _text(403, decision.reason or "denied")

    def render_malformed(self, error: MalformedRequest, route: str) -> Response:
        if route in ("publish", "play"):
            # An unreadable authentication request is refused: anything else would admit
            # whoever can garble one.
            return _text(403, error.reason)
        return _text(400, error.reason)


def _text(status: int, reason: str) -> Response:
    body = "".join(char if char.isprintable() else " " for char in reason)[:_MAX_REASON]
    return Response(body, status_code=status, media_type="text/plain" if body else None)
