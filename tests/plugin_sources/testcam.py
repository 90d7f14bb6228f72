"""testcam: a vendor for castgate's own tests, with a switch for each way a plugin can fail.

The body is JSON ``{"action", "app", "stream", "ip", "params"}``; route ``""`` takes decisions
and route ``"done"`` notifications. Streams named ``fail-parse``, ``fail-render``,
``fail-validate`` and ``fail-observe`` make the matching method raise.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

import castgate

#: Every (event, decision) castgate_observe_decision saw, for tests to read.
observed: list[tuple[castgate.Event, castgate.Decision]] = []


class Testcam(castgate.Vendor):
    name = "testcam"
    routes = ("", "done")
    actions = frozenset({"publish", "play", "publish_done"})
    response_fields: ClassVar[Mapping[str, castgate.ResponseField]] = {
        "rename": castgate.ResponseField("string", "the stream's new name")
    }

    async def parse(self, request: Request, route: str) -> castgate.Event:
        default_action = "publish_done" if route == "done" else "publish"
        try:
            data = json.loads(await request.body())
        except ValueError:
            raise castgate.MalformedRequest("body is not JSON", action=default_action) from None
        if not isinstance(data, dict):
            raise castgate.MalformedRequest("body is not a JSON object", action=default_action)
        if data.get("stream") == "fail-parse":
            raise RuntimeError("testcam failed to parse")
        return castgate.Event(
            vendor=self.name,
            action=str(data.get("action") or default_action),
            app=str(data.get("app") or ""),
            stream=str(data.get("stream") or ""),
            client_ip=str(data.get("ip") or ""),
            params=dict(data.get("params") or {}),
        )

    def render(self, decision: castgate.Decision, event: castgate.Event) -> Response:
        if event.stream == "fail-render":
            raise RuntimeError("testcam failed to render")
        if decision.effect is castgate.Effect.DENY:
            return PlainTextResponse(decision.reason, 403)
        return JSONResponse({"effect": decision.effect.value, "response": dict(decision.response)})

    def render_malformed(self, error: castgate.MalformedRequest, route: str) -> Response:
        return PlainTextResponse(error.reason, 400 if route == "done" else 403)

    def validate_response(self, data: Mapping[str, Any]) -> list[str]:
        if data.get("rename") == "fail-validate":
            raise RuntimeError("testcam failed to validate")
        if "/" in str(data.get("rename", "")):
            return ["rename must not contain '/'"]
        return []


@castgate.hookimpl
def castgate_register_vendors() -> Sequence[castgate.Vendor]:
    return [Testcam()]


@castgate.hookimpl
def castgate_observe_decision(event: castgate.Event, decision: castgate.Decision) -> None:
    if event.stream == "fail-observe":
        raise RuntimeError("testcam failed to observe")
    observed.append((event, decision))
