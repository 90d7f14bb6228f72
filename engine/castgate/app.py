"""The HTTP server: routes declared as data, and a lifespan that loads everything once.

Request path: ``vendor.parse`` -> ``decide`` (:mod:`castgate.gate`) -> ``vendor.render``. No
policy is parsed and no plugin is loaded per request; both happen in the lifespan, and nothing at
import time. The decision log, metrics and observers run after the answer is sent.

Whatever a client sends, a hook's answer is never a 5xx and never a redirect: a streaming server
reads a 3xx as "rename the stream" and many treat a 5xx as "try again", so every failure is
answered as a refusal the vendor understands and logged with its reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.background import BackgroundTask, BackgroundTasks
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from castgate.decisionlog import decision_header, with_event
from castgate.events import Decision, Effect, Event
from castgate.gate import (
    Gate,
    StartupError,
    StateRecord,
    decide,
    load_gate,
    open_decision_log,
    refusal,
)
from castgate.inbound import HookGuard, signature_problem
from castgate.lang import PolicySet
from castgate.logs import DECISION_LOGGER, configure_logging, iso_time
from castgate.metrics import Metrics
from castgate.middleware import BufferBody, CloseConnection
from castgate.reload import Watcher
from castgate.revocation import recheck, sweep_lifetimes
from castgate.settings import Settings
from castgate.state.memory import MemoryState
from castgate.state.redis import RedisState
from castgate.vendor import Batch, MalformedRequest, Vendor

_log = logging.getLogger(__name__)
_decisions = logging.getLogger(DECISION_LOGGER)


def create_app(settings: Settings, *, owns_process: bool = False) -> Starlette:
    """The ASGI app; plugins and policies load when the server starts it (its lifespan).

    With ``owns_process`` (``castgate serve``: the process serves nothing else), what startup
    loads is set aside from garbage collection (:func:`set_aside_what_is_loaded`), and so is each
    policy a reload compiles; an app mounted in someone else's process leaves their collector
    alone.
    """
    metrics = Metrics()

    def refused(reason: str) -> None:
        metrics.refused.labels(reason).inc()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Gate]]:
        try:
            gate = load_gate(settings)
            gate.decision_log = open_decision_log(settings, lost=metrics.decision_log_lost.inc)
        except StartupError as error:
            _log.error("castgate cannot start:\n%s", error)
            raise
        gate.metrics = metrics
        metrics.policy_loaded.set(gate.policy_loaded)
        if owns_process:
            set_aside_what_is_loaded()
        _log.info(
            "deciding with policy %s (%s) for vendors %s",
            gate.policy.version,
            ", ".join(str(path) for path in gate.policy.files),
            ", ".join(sorted(gate.registry.vendors)) or "(none)",
        )
        enforcers = gate.registry.enforcers

        def after_reload(policy: PolicySet) -> Awaitable[int]:
            # Nothing to set aside: the compile froze the new policy with the rest (see
            # castgate.lang._age_young_objects), and the old one goes without a collection.
            return recheck(policy, gate.sessions, enforcers)

        watcher = Watcher(
            gate,
            gate.compile_again,
            after_reload=after_reload,
            sweep=lambda: sweep_lifetimes(gate.sessions, enforcers) if enforcers else None,
        )
        watching = asyncio.create_task(watcher.run())
        loop = asyncio.get_running_loop()
        with contextlib.suppress(*_NO_SIGNAL_HANDLERS):
            loop.add_signal_handler(signal.SIGHUP, watcher.request)
        try:
            yield {"gate": gate}
        finally:
            with contextlib.suppress(*_NO_SIGNAL_HANDLERS):
                loop.remove_signal_handler(signal.SIGHUP)
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
            if isinstance(gate.sessions, RedisState):
                await gate.sessions.close()
            if gate.decision_log is not None:
                gate.decision_log.close()

    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(CloseConnection),
            Middleware(HookGuard, settings=settings, refused=refused),
            Middleware(BufferBody, max_bytes=settings.max_body, refused=refused),
        ],
        lifespan=lifespan,
    )
    # Starlette answers "/healthz/" with a redirect to "/healthz"; a streaming server would read
    # a redirect from a hook as "rename the stream".
    app.router.redirect_slashes = False
    return app


#: What a loop raises for a signal handler it cannot install: not on Windows (NotImplementedError),
#: not outside the main thread (asyncio: RuntimeError; uvloop: ValueError). Served so, by a thread
#: or on Windows, castgate reloads on file changes alone.
_NO_SIGNAL_HANDLERS = (NotImplementedError, RuntimeError, ValueError)


def set_aside_what_is_loaded() -> None:
    """Collect once, then keep every object alive now out of later collections.

    Plugins, policy and modules are most of the heap and live until the next reload, yet each
    full collection walked them all: 5 of them in 7,000 requests took up to 140 ms each on this
    machine, stalling every request in flight (benchmarks/README.md, the HTTP path). Frozen
    (:func:`gc.freeze`), they cost collections nothing. A policy compiled later, by a reload, is
    frozen with them by the compile itself.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def create_app_from_env() -> Starlette:
    """App factory for ``uvicorn --factory`` and for each worker of ``castgate serve --workers``."""
    settings = Settings.from_env()
    configure_logging(settings)
    return create_app(settings, owns_process=True)


async def healthz(request: Request) -> Response:
    """The process is alive and serving (for liveness probes: touches no dependency)."""
    gate: Gate = request.state.gate
    return JSONResponse({"status": "ok", "policy": gate.policy.version})


async def readyz(request: Request) -> Response:
    """Ready to decide: a policy is loaded and the state backend answers. 503 when not."""
    gate: Gate = request.state.gate
    reachable = await _state_reachable(gate)
    return JSONResponse(
        {
            "status": "ready" if reachable else "unready",
            "policy": {
                "version": gate.policy.version,
                "loaded": iso_time(gate.policy_loaded),
                "files": [str(path) for path in gate.policy.files],
                "rules": len(gate.policy.rules),
            },
            "vendors": sorted(gate.registry.vendors),
            "reload_error": gate.last_reload_error,
            "state": {
                "backend": "memory" if isinstance(gate.sessions, MemoryState) else "redis",
                "reachable": reachable,
            },
        },
        200 if reachable else 503,
    )


async def metrics(request: Request) -> Response:
    gate: Gate = request.state.gate
    await _state_reachable(gate)
    body, content_type = gate.metrics.exposition()
    return Response(body, media_type=content_type)


async def _state_reachable(gate: Gate) -> bool:
    store = gate.sessions
    reachable = await store.ping() if isinstance(store, RedisState) else True
    gate.metrics.state_up.set(1 if reachable else 0)
    return reachable


async def hook(request: Request) -> Response:
    """One webhook call: parse it the vendor's way, decide, answer the vendor's way."""
    gate: Gate = request.state.gate
    started = time.perf_counter()
    # Read once: a reload while this request is decided must not mix two policies' answers.
    policy = gate.policy
    vendor_name: str = request.path_params["vendor"]
    route: str = request.path_params.get("route", "")
    vendor = gate.registry.vendors.get(vendor_name)
    if vendor is None:
        known = ", ".join(sorted(gate.registry.vendors)) or "none"
        return _not_found(f"no vendor {vendor_name!r} (this server has: {known})")
    if route not in vendor.routes:
        declared = ", ".join(repr(each) for each in vendor.routes)
        return _not_found(f"vendor {vendor_name!r} has no route {route!r} (it has: {declared})")
    if vendor.signature is not None and vendor_name in gate.signing_keys:
        problem = signature_problem(
            vendor.signature, gate.signing_keys[vendor_name], request.headers, await request.body()
        )
        if problem:
            gate.metrics.refused.labels("signature").inc()
            _log.warning("refused a %s hook request: %s", vendor_name, problem)
            return PlainTextResponse(problem, 403)

    try:
        event = await vendor.parse(request, route)
        if isinstance(event, Batch):
            return await _answer_batch(gate, vendor, event, policy, started)
        if not isinstance(event, Event):
            raise TypeError(f"parse returned {type(event).__name__}, not a castgate.Event")
    except MalformedRequest as error:
        return _answer_malformed(gate, vendor, route, error, policy, started)
    except Exception:
        gate.metrics.errors.labels("plugin_parse").inc()
        _log.exception(
            "%s: vendor %r failed to parse a request to route %r; answered as malformed",
            gate.registry.provider_of(vendor.name).origin,
            vendor.name,
            route,
        )
        malformed = MalformedRequest("the request could not be read")
        return _answer_malformed(gate, vendor, route, malformed, policy, started)

    decided = await decide(gate, vendor, event, policy)
    response, decision = _render(gate, vendor, decided.decision, event)
    latency_ms = (time.perf_counter() - started) * 1000
    after = [(event, decision, decided.record_after_answer)]
    _after_answer(response, gate, vendor, policy, after, latency_ms)
    return response


async def _answer_batch(
    gate: Gate, vendor: Vendor, batch: Batch, policy: PolicySet, started: float
) -> Response:
    """Decide every event of a batch, answer once, and log each decision."""
    decided = [await decide(gate, vendor, event, policy) for event in batch.events]
    decisions = [each.decision for each in decided]
    response = _vendor_answer(
        gate,
        vendor,
        f"answer a batch of {len(batch.events)} events; answered 400",
        lambda: vendor.render_batch(batch, decisions),
    ) or PlainTextResponse("the answer could not be rendered", 400)
    latency_ms = (time.perf_counter() - started) * 1000
    after = [
        (event, each.decision, each.record_after_answer)
        for event, each in zip(batch.events, decided, strict=True)
    ]
    _after_answer(response, gate, vendor, policy, after, latency_ms)
    return response


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/hooks/{vendor}", hook, methods=["GET", "POST"]),
    Route("/hooks/{vendor}/{route:path}", hook, methods=["GET", "POST"]),
]


def _not_found(reason: str) -> Response:
    # A misrouted streaming server denies every stream; the operator must find out from our log.
    _log.warning("answered 404: %s", reason)
    return PlainTextResponse(reason, 404)


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
        return PlainTextResponse("", 403), refusal(decision, "the answer could not be rendered")
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
        gate.metrics.errors.labels("plugin_render").inc()
        _log.exception(
            "%s: vendor %r failed to %s",
            gate.registry.provider_of(vendor.name).origin,
            vendor.name,
            doing,
        )
        return None
    return response


def _answer_malformed(
    gate: Gate,
    vendor: Vendor,
    route: str,
    error: MalformedRequest,
    policy: PolicySet,
    started: float,
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
    gate.metrics.errors.labels("malformed").inc()
    after = [(event, decision, None)]
    _after_answer(response, gate, vendor, policy, after, latency_ms, malformed=True)
    return response


def _after_answer(
    response: Response,
    gate: Gate,
    vendor: Vendor,
    policy: PolicySet,
    decided: Sequence[tuple[Event, Decision, StateRecord | None]],
    latency_ms: float,
    *,
    malformed: bool = False,
) -> None:
    """Record the decisions, in order, once the answer is sent, off the request path: each
    one's session record if it was left for now (``record_after_answer``), then its
    metrics, logs and observers."""
    tasks = [
        BackgroundTask(
            _record_on_the_loop,
            gate,
            vendor,
            policy.version,
            event,
            decision,
            response.status_code,
            latency_ms,
            malformed=malformed,
            state_record=state_record,
        )
        for event, decision, state_record in decided
    ]
    # Ours run first: a vendor's own background task failing must not lose the decision log.
    if response.background is not None:
        tasks.append(response.background)
    response.background = tasks[0] if len(tasks) == 1 else BackgroundTasks(tasks)


async def _record_on_the_loop(
    *args: Any, malformed: bool, state_record: StateRecord | None
) -> None:
    """:func:`_record`, on the event loop once the answer is out. A plain function handed to a
    BackgroundTask would run on anyio's thread pool: a thread wake-up per request, measured at
    about 100 µs of CPU (benchmarks/README.md, the HTTP path)."""
    # Yield once first, so the connection is closed before recording: nginx-rtmp acts on the close.
    await asyncio.sleep(0)
    try:
        if state_record is not None:
            # First, so observers told of the decision find its session recorded.
            await state_record()
    finally:
        # Even if the record is cancelled (a server stopping with a grace period): the
        # decision was answered, so it is logged.
        _record(*args, malformed=malformed)


def _record(
    gate: Gate,
    vendor: Vendor,
    policy_version: str,
    event: Event,
    decision: Decision,
    status: int,
    latency_ms: float,
    *,
    malformed: bool,
) -> None:
    """One decision into the metrics, the decision log, the log and the observers."""
    gate.metrics.decided(vendor, event, decision, latency_ms / 1000)
    header = decision_header(
        event,
        decision,
        status=status,
        latency_ms=latency_ms,
        policy=policy_version,
        malformed=malformed,
    )
    if gate.decision_log is not None:
        gate.decision_log.append(with_event(header, event, decision, gate.redactor))
    level = _LOG_LEVELS[gate.settings.log_decisions]
    if level and _decisions.isEnabledFor(level):
        # The event's main fields, never its param values (they carry keys and tokens).
        fields = {**header, **gate.redactor.summary(event)}
        if decision.trace is not None:
            fields["trace"] = decision.to_dict()["trace"]
        _decisions.log(level, "decision", extra={"fields": fields})
    if not malformed and gate.registry.observe_decision(event, decision):
        gate.metrics.errors.labels("observer").inc()


_LOG_LEVELS = {"info": logging.INFO, "debug": logging.DEBUG, "off": 0}
