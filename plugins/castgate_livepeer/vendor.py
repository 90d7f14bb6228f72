"""The ``livepeer`` vendor: go-livepeer's ``-authWebhookUrl`` calls in, its answers out."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import Response

from castgate import Decision, Effect, Event, MalformedRequest, ResponseField, Vendor
from castgate_livepeer.body import read_object
from castgate_livepeer.broadcaster import broadcaster_event, present
from castgate_livepeer.orchestrator import ACTION as DISCOVER
from castgate_livepeer.orchestrator import orchestrator_event
from castgate_livepeer.price import FIELD as PRICE_FIELD
from castgate_livepeer.price import price_answer
from castgate_livepeer.stream_answer import FIELDS as STREAM_FIELDS
from castgate_livepeer.stream_answer import stream_answer
from castgate_livepeer.stream_url import split_query

BROADCASTER = ""
ORCHESTRATOR = "orchestrator"

_MAX_REASON = 200


class Livepeer(Vendor):
    """go-livepeer's webhook: ``/hooks/livepeer`` for a broadcaster (gateway) node, asked on
    every RTMP publish, HTTP push and recordings read; ``/hooks/livepeer/orchestrator`` for an
    orchestrator, asked on every broadcaster's discovery request."""

    name: ClassVar[str] = "livepeer"
    routes: ClassVar[tuple[str, ...]] = (BROADCASTER, ORCHESTRATOR)
    actions: ClassVar[frozenset[str]] = frozenset({"publish", "play", DISCOVER})
    response_fields: ClassVar[Mapping[str, ResponseField]] = {
        "manifestID": ResponseField(
            "string",
            "the stream's manifest ID, letters and digits only; required with any other "
            "broadcaster key (publish, play)",
        ),
        "streamKey": ResponseField(
            "string", "RTMP playback key: letters, digits, '_', '-'; empty: the node makes one"
        ),
        "presets": ResponseField("list", 'lpms preset names, e.g. "P720p30fps16x9"'),
        "profiles": ResponseField(
            "list",
            "custom renditions {name, width, height, bitrate (bits/s), fps, fpsDen, profile, "
            "gop (a string), encoder, ...}; [] with no presets is refused (zero renditions)",
        ),
        "streamID": ResponseField("string", "external stream id, for the node's logs and hooks"),
        "sessionID": ResponseField("string", "external session id, for the node's logs"),
        "objectStore": ResponseField("string", "object store URL for the stream's segments"),
        "recordObjectStore": ResponseField("string", "object store URL for recordings"),
        "recordObjectStoreUrl": ResponseField(
            "string", "public URL of the recordings store, used in recordings playlists"
        ),
        "previousSessions": ResponseField(
            "list", "earlier manifest IDs stitched into /recordings playlists"
        ),
        "verificationFreq": ResponseField("number", "fast-verification frequency (whole, >= 0)"),
        PRICE_FIELD: ResponseField(
            "object",
            "orchestrator (discover) only: {pricePerUnit: whole >= 0, pixelsPerUnit: whole > 0}",
        ),
    }

    async def parse(self, request: Request, route: str) -> Event:
        if route == ORCHESTRATOR:
            body = await read_object(request, action=DISCOVER)
            peer = request.client.host if request.client else ""
            return orchestrator_event(body, _hook_node(request) or peer)
        if route == BROADCASTER:
            return broadcaster_event(await read_object(request), _hook_node(request))
        raise MalformedRequest(f"unknown livepeer route {route[:40]!r}")

    def render(self, decision: Decision, event: Event) -> Response:
        if decision.effect is not Effect.ALLOW:
            # Any status but 200 refuses: the publish, the push (the client gets 403), the
            # recordings read (403, or 404 when the reason says "not found") or the
            # broadcaster's discovery ("authentication failed: <reason>").
            return _refusal(decision.reason or "denied")
        if event.action == DISCOVER:
            # The orchestrator needs valid JSON: an empty body would refuse the broadcaster.
            body, problems = price_answer(decision.response)
        else:
            body, problems = stream_answer(decision.response)
        if problems:
            return _refusal(f"invalid response data: {problems[0]}")
        if not body and event.action != DISCOVER:
            # Exactly 200 with no body: the node's defaults. Never {} (the node refuses it).
            return Response(b"", status_code=200)
        return _json(body)

    def render_malformed(self, error: MalformedRequest, route: str) -> Response:
        # Both hooks are decisions: what cannot be read is refused, never let through.
        return _refusal(error.reason)

    def validate_response(self, data: Mapping[str, Any]) -> list[str]:
        # The core's lifetime is valid for every vendor, so it is not refused here although a
        # Livepeer node never asks again about a running stream (see the README).
        problems: list[str] = []
        stream_keys = [key for key in STREAM_FIELDS if key in data]
        if PRICE_FIELD in data and stream_keys:
            problems.append(
                f"priceInfo answers an orchestrator and {', '.join(stream_keys)} a broadcaster: "
                "write them in separate rules (on discover, on publish)"
            )
        problems.extend(stream_answer(data)[1])
        problems.extend(price_answer(data)[1])
        return problems


def _hook_node(request: Request) -> str:
    """``?node=`` on the configured hook URL: the one node name a client cannot set."""
    query: bytes = request.scope.get("query_string", b"")
    for key, value in split_query(query.decode("utf-8", errors="replace")):
        if key == "node" and present(value):
            return value
    return ""


def _refusal(reason: str) -> Response:
    # The node logs the body, or hands it on, as one line of text.
    text = "".join(char if char.isprintable() else " " for char in reason)[:_MAX_REASON]
    return Response(text, status_code=403, media_type="text/plain")


def _json(body: Mapping[str, Any]) -> Response:
    encoded = json.dumps(body, separators=(",", ":"), ensure_ascii=True)
    return Response(encoded, status_code=200, media_type="application/json")
