"""signedcam: an OvenMediaEngine-style test vendor that signs its requests, and a policy function
that asks a real HTTP upstream under a deadline.

The body is JSON ``{"action", "stream", "ip", "key"}``, signed like OME's admission webhooks:
``X-Signedcam-Signature`` = base64url(HMAC-SHA1(key, body)). ``upstream.tier(key)`` GETs
``$SIGNEDCAM_UPSTREAM/tier/<key>`` and returns the body's text.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

import castgate

SIGNATURE = castgate.RequestSignature("X-Signedcam-Signature", "sha1", "base64url")


class Signedcam(castgate.Vendor):
    name = "signedcam"
    actions = frozenset({"publish", "play", "publish_done"})
    signature = SIGNATURE

    async def parse(self, request: Request, route: str) -> castgate.Event:
        try:
            data = json.loads(await request.body())
        except ValueError:
            raise castgate.MalformedRequest("body is not JSON", action="publish") from None
        if not isinstance(data, dict):
            raise castgate.MalformedRequest("body is not a JSON object", action="publish")
        return castgate.Event(
            vendor=self.name,
            action=str(data.get("action") or "publish"),
            stream=str(data.get("stream") or ""),
            client_ip=str(data.get("ip") or ""),
            params={"key": str(data.get("key") or "")},
        )

    def render(self, decision: castgate.Decision, event: castgate.Event) -> Response:
        return JSONResponse({"allowed": decision.allowed, "reason": decision.reason})

    def render_malformed(self, error: castgate.MalformedRequest, route: str) -> Response:
        return JSONResponse({"allowed": False, "reason": error.reason})


def _tier(key: str) -> str:
    upstream = os.environ["SIGNEDCAM_UPSTREAM"]
    response = httpx.get(f"{upstream}/tier/{key}", timeout=10)
    response.raise_for_status()
    return response.text


@castgate.hookimpl
def castgate_register_vendors() -> Sequence[castgate.Vendor]:
    return [Signedcam()]


@castgate.hookimpl
def castgate_register_functions() -> Sequence[castgate.PolicyFunction]:
    return [
        castgate.PolicyFunction(
            "upstream.tier", ("string",), "string", _tier, "a key's tier, asked over HTTP", 0.3
        )
    ]
