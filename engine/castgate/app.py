"""The HTTP server: routes declared as data, and a lifespan that loads everything once.

Request path: ``vendor.parse`` -> ``policy.decide`` -> ``vendor.render``. No policy is parsed and no
plugin is loaded per request; both happen in the lifespan, and nothing at import time.

Whatever a client sends, the answer is never a 5xx and never a redirect: a streaming server reads
a 3xx as "rename the stream" and many treat a 5xx as "try again", so every failure is answered
as a refusal the vendor understands and logged with its reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
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
from castgate.reload import Watcher
from castgate.revocation import recheck, sweep_lifetimes
from castgate.settings import Settings
from castgate.state import EMPTY_STATE, SessionView, lifetime_decision
from castgate.state.memory import MemoryState
from castgate.state.redis import RedisState, StateUnavailableError
from castgate.vendor import Batch, MalformedRequest, Vendor

#: How often a decision is made again when other processes keep changing the counts it read.
_SHARED_ATTEMPTS = 5

#: Webhook bodies are a few hundred bytes; anything near this is not a streaming server talking.
MAX_BODY_BYTES = 1024 * 1024

_log = logging.getLogger(__name__)
_decisions = logging.getLogger(DECISION_LOGGER)


@dataclass(slots=True)
class Gate:
    """What one server decides with, loaded once at startup."""

    settings: Settings
    registry: Registry
    policy: PolicySet
    #: Live sessions: what ``sessions.*`` in policies read, and what every decision updates.
    sessions: MemoryState | RedisState
    #: The report of the last reload that was refused; ``""`` once one succeeds.
    last_reload_error: str = ""

    def compile_again(self) -> PolicySet:
        return compile_policies(
            self.settings.policies,
            vendors=self.registry.vendors,
            functions=self.registry.functions,
        )


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
    sessions: MemoryState | RedisState
    if settings.state == "memory":
        sessions = MemoryState(idle=settings.session_idle, max_age=settings.session_max_age)
    else:
        sessions = RedisState(
            settings.state, idle=settings.session_idle, max_age=settings.session_max_age
        )
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
        enforcers = gate.registry.enforcers
        watcher = Watcher(
            gate,
            gate.compile_again,
            after_reload=lambda policy: recheck(policy, gate.sessions, enforcers),
            sweep=lambda: sweep_lifetimes(gate.sessions, enforcers) if enforcers else None,
        )
        watching = asyncio.create_task(watcher.run())
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, watcher.request)
        try:
            yield {"gate": gate}
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGHUP)
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
            if isinstance(gate.sessions, RedisState):
                await gate.sessions.close()

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
    store = gate.sessions
    reachable = await store.ping() if isinstance(store, RedisState) else True
    return JSONResponse(
        {
            "status": "ok",
            "policy": gate.policy.version,
            "vendors": sorted(gate.registry.vendors),
            "reload_error": gate.last_reload_error,
            "state": {
                "backend": "memory" if isinstance(store, MemoryState) else "redis",
                "reachable": reachable,
            },
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
            return await _answer_batch(gate, vendor, event, started)
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

    decision = await _decide(gate, vendor, event)
    response, decision = _render(gate, vendor, decision, event)
    latency_ms = (time.perf_counter() - started) * 1000
    _after_answer(response, gate, [(event, decision)], latency_ms)
    return response


async def _answer_batch(gate: Gate, vendor: Vendor, batch: Batch, started: float) -> Response:
    """Decide every event of a batch, answer once, and log each decision."""
    decisions = [await _decide(gate, vendor, event) for event in batch.events]
    response = _vendor_answer(
        gate,
        vendor,
        f"answer a batch of {len(batch.events)} events; answered 400",
        lambda: vendor.render_batch(batch, decisions),
    ) or PlainTextResponse("the answer could not be rendered", 400)
    latency_ms = (time.perf_counter() - started) * 1000
    _after_answer(response, gate, list(zip(batch.events, decisions, strict=True)), latency_ms)
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


async def _decide(gate: Gate, vendor: Vendor, event: Event) -> Decision:
    store = gate.sessions
    if isinstance(store, RedisState):
        return await _decide_shared(gate, vendor, store, event)
    return _decide_local(gate, vendor, store, event)


def _decide_local(gate: Gate, vendor: Vendor, store: MemoryState, event: Event) -> Decision:
    """Decide and record in this process's state with no await between the two, so a count a
    decision read is still true when the session it admits is added."""
    own = store.session_for(event) if event.action == "update" else None
    ends, rule, reason = (own.ends, own.rule, own.ended_because) if own else (None, None, "")
    decision = _checked(gate, vendor, event, _decided(gate, event, store, ends, rule, reason))
    try:
        store.record(event, decision)
    except Exception:
        _log.exception("recording %s %s in the session state failed", event.vendor, event.action)
    return decision


async def _decide_shared(gate: Gate, vendor: Vendor, store: RedisState, event: Event) -> Decision:
    """Decide on a snapshot of the shared state, then record; if another process admitted a
    session the decision relied on not being there, decide again on a fresh snapshot."""
    if not gate.policy.reads_sessions and event.action != "update":
        # Nothing to read: one round trip, to record the decision. The decision did not depend
        # on the state, so losing the record does not change it.
        decision = _checked(gate, vendor, event, _decided(gate, event, EMPTY_STATE, None, None))
        try:
            await store.record(event, decision, None)
        except StateUnavailableError as error:
            _log.error(
                "session state unavailable (%s); %s %s not recorded",
                error,
                event.vendor,
                event.action,
            )
        return decision
    extra: tuple[tuple[str, str, str], ...] = ()
    for _ in range(_SHARED_ATTEMPTS):
        try:
            snapshot = await store.snapshot(event, extra)
        except StateUnavailableError as error:
            return _without_state(gate, vendor, event, error)
        decided = _decided(gate, event, snapshot, snapshot.ends, snapshot.rule, snapshot.reason)
        decision = _checked(gate, vendor, event, decided)
        if snapshot.missed:
            # The policy read a count the snapshot did not hold: fetch it and decide again.
            extra = (*extra, *sorted(snapshot.missed))
            continue
        try:
            if await store.record(event, decision, snapshot):
                return decision
        except StateUnavailableError as error:
            return _without_state(gate, vendor, event, error)
    return Decision(Effect.DENY, "the session state kept changing; try again", failed=True)


def _without_state(gate: Gate, vendor: Vendor, event: Event, error: Exception) -> Decision:
    """The decision when the shared state cannot be reached: notifications are acknowledged
    (their record is lost, and logged), decisions fail closed unless the operator opened them."""
    _log.error(
        "session state unavailable (%s); %s %s decided without it",
        error,
        event.vendor,
        event.action,
    )
    if event.is_notification:
        return Decision(Effect.ACK, "session state unavailable: not recorded", failed=True)
    if not gate.settings.fails_open(event.vendor, event.action):
        return Decision(Effect.DENY, "session state unavailable", failed=True)
    decision = _checked(gate, vendor, event, _decided(gate, event, EMPTY_STATE, None, None))
    return replace(
        decision, reason=f"{decision.reason} (session state unavailable; failing open)", failed=True
    )


def _checked(gate: Gate, vendor: Vendor, event: Event, decision: Decision) -> Decision:
    """``decision``, or a refusal if its response data is more than the vendor can send."""
    if decision.effect is Effect.ALLOW and decision.response:
        problems = _response_problems(gate, vendor, decision.response)
        if problems:
            return _refusal(decision, "response data the vendor cannot send: " + problems)
    return decision


def _decided(
    gate: Gate,
    event: Event,
    view: SessionView,
    ends: float | None,
    rule: str | None,
    reason: str = "",
) -> Decision:
    """The policy's decision, unless the session's lifetime (``ends``, granted by ``rule``) is
    over or castgate revoked it (``reason``): then its update is denied, which ends it."""
    ended = lifetime_decision(ends, rule, event, reason)
    if ended is not None:
        return ended
    try:
        return gate.policy.decide(event, view, explain=gate.settings.explain)
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
    response = _vendor_answer(
        gate,
        vendor,
        f"render its answer ({decision.effect}); answered with a bare status",
        lambda: vendor.render(decision, event),
    )
    if response is None:
        if event.is_notification:
            return PlainTextResponse("", 200), decision
        return PlainTextResponse("", 403), _refusal(decision, "the answer could not be rendered")
    return response, decision


def _vendor_answer(
    gate: Gate, vendor: Vendor, doing: str, answer: Callable[[], object]
) -> Response | None:
    """What a vendor's render method returns, or ``None`` (logged, naming the plugin) when it
    raises or returns something that is not a Response."""
    try:
        response = answer()
        if not isinstance(response, Response):
            raise TypeError(f"got {type(response).__name__}, not a starlette Response")
    except Exception:
        _log.exception(
            "%s: vendor %r failed to %s",
            gate.registry.provider_of(vendor.name).origin,
            vendor.name,
            doing,
        )
        return None
    return response


def _answer_malformed(
    gate: Gate, vendor: Vendor, route: str, error: MalformedRequest, started: float
) -> Response:
    response = _vendor_answer(
        gate,
        vendor,
        "render a malformed-request answer",
        lambda: vendor.render_malformed(error, route),
    ) or PlainTextResponse(error.reason, 400)
    event = Event(vendor=vendor.name, action=error.action)
    decision = Decision(Effect.DENY, f"malformed request: {error.reason}")
    latency_ms = (time.perf_counter() - started) * 1000
    _after_answer(response, gate, [(event, decision)], latency_ms, observe=False)
    return response


def _after_answer(
    response: Response,
    gate: Gate,
    decided: list[tuple[Event, Decision]],
    latency_ms: float,
    *,
    observe: bool = True,
) -> None:
    """Log the decisions, in order, and tell observers once the answer is sent, off the
    request path."""
    tasks = [
        BackgroundTask(
            _record, gate, event, decision, response.status_code, latency_ms, observe=observe
        )
        for event, decision in decided
    ]
    # Ours run first: a vendor's own background task failing must not lose the decision log.
    if response.background is not None:
        tasks.append(response.background)
    response.background = tasks[0] if len(tasks) == 1 else BackgroundTasks(tasks)


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
    if decision.flagged:
        fields["flagged"] = True
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
