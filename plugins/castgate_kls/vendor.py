"""The ``kls`` vendor: Kingsoft Cloud KLS push-stream callbacks in, empty acknowledgements out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from starlette.requests import Request
from starlette.responses import Response

from castgate import Decision, Event, MalformedRequest, ResponseField, Vendor
from castgate_kls.body import callback_event, read_body
from castgate_kls.new_callback import ACTIONS as NEW_ACTIONS
from castgate_kls.notice import VENDOR
from castgate_kls.old_callback import ACTIONS as OLD_ACTIONS

_MAX_REASON = 200


class Kls(Vendor):
    """KLS's push callbacks, both versions on ``/hooks/kls``.

    They are notifications: KLS defines no answer that refuses a stream, so every readable call
    is acknowledged with an empty 200 whatever the policy says; a deny rule that matches flags the
    decision (logged, and for a later enforcer to act on).
    """

    name: ClassVar[str] = VENDOR
    routes: ClassVar[tuple[str, ...]] = ("",)
    actions: ClassVar[frozenset[str]] = frozenset(
        {*NEW_ACTIONS.values(), *OLD_ACTIONS.values(), "notify"}
    )
    response_fields: ClassVar[Mapping[str, ResponseField]] = {}

    async def parse(self, request: Request, route: str) -> Event:
        if route != "":
            raise MalformedRequest(f"unknown kls route {route[:40]!r}")
        return callback_event(await read_body(request))

    def render(self, decision: Decision, event: Event) -> Response:
        # KLS reads nothing from the answer, and the push is already live (or gone): a quick
        # empty 200 is all it needs, for acks, flags and anything else alike.
        return Response(status_code=200)

    def render_malformed(self, error: MalformedRequest, route: str) -> Response:
        # KLS's retry behaviour is undocumented; a 4xx says "do not send this again" in every
        # HTTP client's vocabulary, where a 5xx would invite retries of the same garbage.
        reason = "".join(char if char.isprintable() else " " for char in error.reason)
        return Response(reason[:_MAX_REASON] or "malformed request", 400, media_type="text/plain")
