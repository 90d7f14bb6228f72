"""The vendor ``example``: a generic JSON webhook, for callers that can send one.

Request: ``POST /hooks/example`` with ``{"action", "app", "stream", "ip", "params"}``.
Answer: ``200 {"allowed": true, "reason", ...response data}`` or ``403 {"allowed": false,
"reason"}``; notifications get ``204``. A vendor only translates: it never decides.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

import castgate

_ACTIONS = frozenset({"publish", "play", "publish_done", "play_done"})


class ExampleWebhook(castgate.Vendor):
    name = "example"
    actions = _ACTIONS
    # What a policy may put in `allow with { ... }` for this vendor; castgate's checker refuses
    # any other key when the policy compiles.
    response_fields: ClassVar[Mapping[str, castgate.ResponseField]] = {
        "redirect": castgate.ResponseField(
            "string", "rtmp:// or srt:// URL the caller sends the client to instead"
        ),
    }

    async def parse(self, request: Request, route: str) -> castgate.Event:
        try:
            data = json.loads(await request.body())
        except ValueError:  # also invalid UTF-8
            raise castgate.MalformedRequest("body is not JSON") from None
        if not isinstance(data, dict):
            raise castgate.MalformedRequest("body is not a JSON object")
        action = data.get("action")
        if action not in _ACTIONS:
            raise castgate.MalformedRequest(f"action must be one of {', '.join(sorted(_ACTIONS))}")
        params = data.get("params") or {}
        if not isinstance(params, dict):
            raise castgate.MalformedRequest("params must be a JSON object", action=action)
        return castgate.Event(
            vendor=self.name,
            action=action,
            app=_text(data.get("app")),
            stream=_text(data.get("stream")),
            client_ip=_text(data.get("ip")),
            params=params,
            raw=data,
        )

    def render(self, decision: castgate.Decision, event: castgate.Event) -> Response:
        if event.is_notification:
            return Response(status_code=204)
        body = {"allowed": decision.allowed, "reason": decision.reason, **decision.response}
        return JSONResponse(body, status_code=200 if decision.allowed else 403)

    def render_malformed(self, error: castgate.MalformedRequest, route: str) -> Response:
        return JSONResponse({"allowed": False, "reason": error.reason}, status_code=400)

    def validate_response(self, data: Mapping[str, Any]) -> list[str]:
        redirect = data.get("redirect")
        if redirect is not None and not str(redirect).startswith(("rtmp://", "srt://")):
            return [f"redirect must be an rtmp:// or srt:// URL, got {redirect!r}"]
        return []


def _text(value: object) -> str:
    # castgate's convention: a field the caller did not send is "", never None.
    return "" if value is None else str(value)
