"""The HTTP server: routes declared as data, and a lifespan that loads everything once.

Request path: ``vendor.parse`` -> ``policy.decide`` -> ``vendor.render``. No policy is parsed and no
plugin is loaded per request; both happen in the lifespan, and nothing at import time.

Whatever a client sends, the answer is never a 5xx and never a redirect: a streaming server reads
a 3xx as "rename the stream" and many treat a 5xx as "try again", so every failure is answered
as a refusal the vendor understands and logged with its reason.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.background import BackgroundTask, BackgroundTasks
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from castgate.events import Decision, Effect, Event
from castgate.lang import PolicyError, PolicySet, compile_policies
from castgate.logs import DECISION_LOGGER, configure_logging, iso_time
from castgate.plugins import PluginError, Registry, load_plugins
from castgate.settings import Settings
from castgate.state import lifetime_decision
from castgate.state.memory import MemoryState
from castgate.vendor import Batch, MalformedRequest, Vendor

#: Webhook bodies are a few hundred bytes; anything near this is not a streaming server talking.
MAX_BODY_BYTES = 1024 * 1024

_log = logging.getLogger(__name__)
_decisions = logging.getLogger(DECISION_LOGGER)


@dataclass(frozen=True, slots=True)
class Gate:
    """What one server decides with, loaded once at startup."""

    settings: Settings
    registry: Registry
    policy: PolicySet
    #: Live sessions: what ``sessions.*`` in policies read, and what every decision updates.
    sessions: MemoryState


class StartupError(Exception):
    """Broken plugins or policies keep the server from starting; ``str()`` is the full report
    (every broken plugin, every policy problem with its file:line:col)."""


def load_gate(settings: Settings) -> Gate:
    """Load the plugins and compile the policies, or raise :class:`StartupError`."""
    try:
        registry = load_plugins(settings.disabled_plugins)
        policy = compile_policies(
            settings.policies, vendors=registry.vendors, functions=registry.functions
        )
    except PluginError as error:
        raise StartupError(str(error)) from None
    except PolicyError as error:
        raise StartupError(error.report()) from None
    sessions = MemoryState(idle=settings.session_idle, max_age=settings.session_max_age)
    return Gate(settings, registry, policy, sessions)


def create_app(settings: Settings) -> Starlette:
    """The ASGI app; plugins and policies load when the server starts it (its lifespan)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Gate]]:
        try:
            gate = load_gate(settings)
        except StartupError as error:
            _log.error("castgate cannot start:\n%s", error)
            raise
        _log.info(
            "deciding with policy %s (%s) for vendors %s",
            gate.policy.version,
            ", ".join(str(path) for path in gate.policy.files),
            ", ".join(sorted(gate.registry.vendors)) or "(none)",
        )
        yield {"gate": gate}

    app = Starlette(
        routes=routes,
        middleware=[Middleware(CloseConnection), Middleware(BufferBody, max_bytes=MAX_BODY_BYTES)],
        lifespan=lifespan,
    )
    # Starlette answers "/healthz/" with a redirect to "/healthz"; a streaming server would read
    # a redirect from a hook as "rename the stream".
    app.router.redirect_slashes = False
    return app


def create_app_from_env() -> Starlette:
    """App factory for ``uvicorn --factory`` and for each worker of ``castgate serve --workers``."""
    settings = Settings.from_env()
    configure_logging(settings)
    return create_app(settings)


async def healthz(request: Request) -> Response:
    gate: Gate = request.state.gate
    return JSONResponse(
        {
            "status": "ok",
            "policy": gate.policy.version,
            "vendors": sorted(gate.registry.vendors),
        }
    )


async def hook(request: Request) -> Response:
    """One webhook call: parse it the vendor's way, decide, answer the vendor's way."""
    gate: Gate = request.state.gate
    started = time.perf_counter()
    vendor_name: str = request.path_params["vendor"]
    route: str = request.path_params.get("route", "")
    vendor = gate.registry.vendors.get(vendor_name)
    if vendor is None:
        known = ", ".join(sorted(gate.registry.vendors)) or "none"
        return _not_found(f"no vendor {vendor_name!r} (this server has: {known})")
    if route not in vendor.routes:
        declared = ", ".join(repr(each) for each in vendor.routes)
        return _not_found(f"vendor {vendor_name!r} has no route {route!r} (it has: {declared})")

    try:
        event = await vendor.parse(request, route)
        if isinstance(event, Batch):
            return _answer_batch(gate, vendor, event, started)
        if not isinstance(event, Event):
            raise TypeError(f"parse returned {type(event).__name__}, not a castgate.Event")
    except MalformedRequest as error:
        return _answer_malformed(gate, vendor, route, error, started)
    except Exception:
        _log.exception(
            "%s: vendor %r failed to parse a request to route %r; answered as malformed",
            gate.registry.provider_of(vendor.name).origin,
            vendor.name,
            route,
        )
        malformed = MalformedRequest("the request could not be read")
        return _answer_malformed(gate, vendor, route, malformed, started)

    decision = _decide(gate, vendor, event)
    response, decision = _render(gate, vendor, decision, event)
    latency_ms = (time.perf_counter() - started) * 1000
    _after_answer(response, gate, event, decision, latency_ms)
    return response


def _answer_batch(gate: Gate, vendor: Vendor, batch: Batch, started: float) -> Response:
    """Decide every event of a batch, answer once, and log each decision."""
    decisions = [_decide(gate, vendor, event) for event in batch.events]
    try:
        response = vendor.render_batch(batch, decisions)
        if not isinstance(response, Response):
            raise TypeError(f"render_batch returned {type(response).__name__}, not a Response")
    except Exception:
        _log.exception(
            "%s: vendor %r failed to answer a batch of %d events; answered 400",
            gate.registry.provider_of(vendor.name).origin,
            vendor.name,
            len(batch.events),
        )
        response = PlainTextResponse("the answer could not be rendered", 400)
    latency_ms = (time.perf_counter() - started) * 1000
    for event, decision in zip(batch.events, decisions, strict=True):
        _after_answer(response, gate, event, decision, latency_ms)
    return response


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/hooks/{vendor}", hook, methods=["GET", "POST"]),
    Route("/hooks/{vendor}/{route:path}", hook, methods=["GET", "POST"]),
]


def _not_found(reason: str) -> Response:
    # A misrouted streaming server denies every stream; the operator must find out from our log.
    _log.warning("answered 404: %s", reason)
    return PlainTextResponse(reason, 404)


def _decide(gate: Gate, vendor: Vendor, event: Event) -> Decision:
    """Decide and record the outcome in the session state, with no await between the two: in
    this process a count a decision read is still true when the session it admits is added."""
    decision = _decided(gate, event)
    if decision.effect is Effect.ALLOW and decision.response:
        problems = _response_problems(gate, vendor, decision.response)
        if problems:
            decision = _refusal(decision, "response data the vendor cannot send: " + problems)
    try:
        gate.sessions.record(event, decision)
    except Exception:
        _log.exception("recording %s %s in the session state failed", event.vendor, event.action)
    return decision


def _decided(gate: Gate, event: Event) -> Decision:
    session = gate.sessions.session_for(event) if event.action == "update" else None
    if session is not None:
        ended = lifetime_decision(session.ends, session.rule, event)
        if ended is not None:
            return ended
    try:
        return gate.policy.decide(event, gate.sessions, explain=gate.settings.explain)
    except Exception:
        # decide() promises never to raise; if a bug breaks that promise, fail closed, not 500.
        _log.exception("policy %s failed to decide %s", gate.policy.version, event.action)
        effect = Effect.ACK if event.is_notification else Effect.DENY
        return Decision(effect, "the policy failed to decide", failed=True)


def _response_problems(gate: Gate, vendor: Vendor, data: Mapping[str, Any]) -> str:
    try:
        return "; ".join(vendor.validate_response(data))
    except Exception as error:
        _log.exception(
            "%s: vendor %r failed to validate response data",
            gate.registry.provider_of(vendor.name).origin,
            vendor.name,
        )
        return f"validate_response raised {type(error).__name__}"


def _refusal(decision: Decision, reason: str) -> Decision:
    return Decision(Effect.DENY, reason, rule=decision.rule, failed=True, trace=decision.trace)


def _render(
    gate: Gate, vendor: Vendor, decision: Decision, event: Event
) -> tuple[Response, Decision]:
    """The vendor's answer, or a bare refusal (acknowledgement for notifications) if it fails."""
    try:
        response = vendor.render(decision, event)
        if not isinstance(response, Response):
            raise TypeError(f"render returned {type(response).__name__}, not a Response")
    except Exception:
        _log.exception(
            "%s: vendor %r failed to render its answer (%s); answered with a bare status",
            gate.registry.provider_of(vendor.name).origin,
            vendor.name,
            decision.effect,
        )
        if event.is_notification:
            return PlainTextResponse("", 200), decision
        return PlainTextResponse("", 403), _refusal(decision, "the answer could not be rendered")
    return response, decision


def _answer_malformed(
    gate: Gate, vendor: Vendor, route: str, error: MalformedRequest, started: float
) -> Response:
    try:
        response = vendor.render_malformed(error, route)
        if not isinstance(response, Response):
            raise TypeError(f"render_malformed returned {type(response).__name__}")
    except Exception:
        _log.exception(
            "%s: vendor %r failed to render a malformed-request answer",
            gate.registry.provider_of(vendor.name).origin,
            vendor.name,
        )
        response = PlainTextResponse(error.reason, 400)
    event = Event(vendor=vendor.name, action=error.action)
    decision = Decision(Effect.DENY, f"malformed request: {error.reason}")
    latency_ms = (time.perf_counter() - started) * 1000
    _after_answer(response, gate, event, decision, latency_ms, observe=False)
    return response


def _after_answer(
    response: Response,
    gate: Gate,
    event: Event,
    decision: Decision,
    latency_ms: float,
    *,
    observe: bool = True,
) -> None:
    """Log the decision and tell observers once the answer is sent, off the request path."""
    task = BackgroundTask(
        _record, gate, event, decision, response.status_code, latency_ms, observe=observe
    )
    # Runs ours first: a vendor's own background task failing must not lose the decision log.
    response.background = (
        task if response.background is None else BackgroundTasks([task, response.background])
    )


def _record(
    gate: Gate,
    event: Event,
    decision: Decision,
    status: int,
    latency_ms: float,
    *,
    observe: bool,
) -> None:
    fields: dict[str, Any] = {
        "time": iso_time(event.time),
        "vendor": event.vendor,
        "action": event.action,
        "app": event.app,
        "stream": event.stream,
        "client_ip": event.client_ip,
        # Names only: params carry stream keys, tokens and signatures, and a log is no place
        # for them. Which names arrived is what debugging a policy needs.
        "params": sorted(event.params),
        "effect": decision.effect.value,
        "rule": decision.rule,
        "reason": decision.reason,
        "status": status,
        "latency_ms": round(latency_ms, 3),
    }
    if decision.failed:
        fields["failed"] = True
    if decision.trace is not None:
        fields["trace"] = decision.to_dict()["trace"]
    _decisions.info("decision", extra={"fields": fields})
    if observe:
        gate.registry.observe_decision(event, decision)


class CloseConnection:
    """Sends ``Connection: close`` with every response.

    nginx-rtmp acts on a notify answer only when the connection closes; kept alive, each publish
    would wait out the keep-alive timeout. A hook caller makes one request per connection anyway.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() != b"connection"
                ]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, send_closing)


class BufferBody:
    """Reads the whole request body before the app runs; more than ``max_bytes`` gets a 413.

    Every vendor reads the whole body anyway, so buffering costs nothing, and an oversized or
    endless upload is refused here instead of inside plugin code.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more_body = True
        while more_body:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the caller left; there is nobody to answer
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            more_body = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        _log.warning(
            "refused a request to %s: body over %d bytes", scope.get("path", "?"), self.max_bytes
        )
        response = PlainTextResponse(f"request body over {self.max_bytes} bytes", 413)
        await response(scope, receive, send)
