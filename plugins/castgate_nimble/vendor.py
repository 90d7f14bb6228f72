"""The ``nimble`` vendor: Nimble's auth handler and pay-per-view sync in, its answers out."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from castgate import Batch, Decision, Effect, Event, MalformedRequest, ResponseField, Vendor
from castgate_nimble.auth import auth_event
from castgate_nimble.body import present, read_object
from castgate_nimble.redirect import redirect_problems
from castgate_nimble.sync import TOKEN_VARIABLE, ForgedSync, sync_batch

_log = logging.getLogger(__name__)

#: Routes of the playback session authorization handler; "ppv" is the push-API sync.
AUTH_ROUTES = ("", "auth")
PPV_ROUTE = "ppv"

#: An auth request describes one session in well under a kilobyte.
MAX_AUTH_BYTES = 64 * 1024
#: A sync lists every tracked viewer of the server; castgate refuses bodies over 1 MiB anyway.
MAX_SYNC_BYTES = 1024 * 1024

_JSON = "application/json"


class Nimble(Vendor):
    """Nimble Streamer (Softvelum / WMSPanel).

    ``/hooks/nimble`` (or ``/hooks/nimble/auth``) is the playback session authorization handler;
    ``/hooks/nimble/ppv`` takes the pay-per-view sync and WMSPanel's (un)publish alerts, signed
    with the push-API token, which is read from ``CASTGATE_NIMBLE_TOKEN`` when the plugin loads.
    """

    name: ClassVar[str] = "nimble"
    routes: ClassVar[tuple[str, ...]] = (*AUTH_ROUTES, PPV_ROUTE)
    actions: ClassVar[frozenset[str]] = frozenset(
        {"play", "update", "publish_started", "publish_done"}
    )
    response_fields: ClassVar[Mapping[str, ResponseField]] = {
        "redirect": ResponseField(
            "string",
            "on play: send the viewer to this absolute http(s) URL instead (302 Location); "
            "ASCII, no whitespace, at most 2048 bytes",
        )
    }

    def __init__(self, token: str | None = None) -> None:
        #: The push-API token PPV syncs are signed with; without one every sync is refused.
        self.token = token or None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Nimble:
        """The vendor with the push-API token from ``CASTGATE_NIMBLE_TOKEN``."""
        token = (os.environ if env is None else env).get(TOKEN_VARIABLE, "")
        if not token:
            _log.debug(
                "%s is not set: Nimble PPV syncs to /hooks/nimble/ppv will be refused (403)",
                TOKEN_VARIABLE,
            )
        return cls(token)

    async def parse(self, request: Request, route: str) -> Event | Batch:
        node = _node(request)
        if route == PPV_ROUTE:
            body = await read_object(request, limit=MAX_SYNC_BYTES, action="update")
            return sync_batch(body, self.token, node)
        body = await read_object(request, limit=MAX_AUTH_BYTES, action="play")
        return auth_event(body, node)

    def render(self, decision: Decision, event: Event) -> Response:
        if decision.effect is Effect.DENY:
            return _status(403)
        redirect = decision.response.get("redirect")
        if redirect is not None and event.action == "play":
            if redirect_problems(redirect):
                return _status(403)
            return _redirect(redirect)
        return _status(200)

    def render_batch(self, batch: Batch, decisions: Sequence[Decision]) -> Response:
        denied: dict[str, None] = {}  # ordered and de-duplicated
        for event, decision in zip(batch.events, decisions, strict=True):
            if decision.effect is not Effect.DENY:
                continue
            player_id = event.params.get("id")
            if isinstance(player_id, str) and present(player_id):
                denied.setdefault(player_id, None)
            else:
                _log.warning(
                    "nimble: denied a PPV viewer without an id (%s/%s from %s); "
                    "Nimble can only cut off viewers by id",
                    event.app,
                    event.stream,
                    event.client_ip or "?",
                )
        return _deny_list(200, list(denied))

    def render_malformed(self, error: MalformedRequest, route: str) -> Response:
        if route == PPV_ROUTE:
            # Deny nobody: neither a garbled nor a forged sync may cut off real viewers.
            return _deny_list(403 if isinstance(error, ForgedSync) else 400, [])
        # A session we cannot read is refused; letting it through would admit anyone who can
        # garble a request.
        return _status(403)

    def validate_response(self, data: Mapping[str, Any]) -> list[str]:
        if "redirect" not in data:
            return []
        return redirect_problems(data["redirect"])


def _node(request: Request) -> str:
    """``?node=`` on the hook URL, else the address Nimble called from."""
    query_string: bytes = request.scope.get("query_string", b"")
    query = query_string.decode("latin-1")
    for key, value in parse_qsl(query, errors="replace"):
        if key == "node" and present(value):
            return value
    return request.client.host if request.client else ""


def _status(status: int) -> Response:
    # The docs say the body mirrors the status as JSON; its keys are unverified (see README).
    return Response(f'{{"status":{status}}}', status_code=status, media_type=_JSON)


def _redirect(location: str) -> Response:
    response = _status(302)
    # Set by hand: RedirectResponse would re-quote the URL; it was validated as ASCII already.
    response.raw_headers.append((b"location", location.encode("ascii")))
    return response


def _deny_list(status: int, ids: list[str]) -> Response:
    # ASCII escapes keep any id (even one with a lone surrogate) valid JSON bytes.
    body = json.dumps({"DenyList": {"ID": ids}}, separators=(",", ":"))
    return Response(body, status_code=status, media_type=_JSON)
