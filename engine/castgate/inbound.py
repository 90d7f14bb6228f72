"""Who may call the hooks: source networks, a shared secret, per-caller rate limits, and the
caller's address behind trusted proxies. Signatures over the body are checked later, once the
body is read (:func:`signature_problem`).

Only ``/hooks/...`` is guarded; ``/healthz``, ``/readyz`` and ``/metrics`` are for the operator's
own monitoring and answer anyone who can reach the port (bind or firewall them accordingly).

A refusal is a plain 4xx naming what was wrong, never which secret was expected, and one warning
per caller and reason per minute, so an attack cannot flood the log.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import time
from collections.abc import Callable

from cachetools import TTLCache
from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from castgate.settings import IPNetwork, Settings
from castgate.vendor import RequestSignature

_log = logging.getLogger(__name__)

#: Path prefix under which a hook URL carries the shared secret: ``/s/<secret>/hooks/<vendor>``,
#: for streaming servers that cannot send headers (nginx-rtmp, Nimble).
SECRET_PREFIX = "/s/"
#: Headers that carry the shared secret.
SECRET_HEADER = "x-castgate-secret"

#: Callers remembered for rate limits and log throttling; the oldest are forgotten first.
MAX_TRACKED_CALLERS = 100_000
#: Seconds between two warnings about the same caller and reason.
WARN_EVERY_SECONDS = 60.0

Refuse = Callable[[str], None]


class HookGuard:
    """Pure ASGI middleware in front of the hook routes."""

    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        refused: Refuse = lambda reason: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        secret = settings.hook_secret
        self.secret = hashlib.sha256(secret.reveal().encode()).digest() if secret else None
        self.networks = settings.hook_networks
        self.proxies = settings.trusted_proxies
        self.rate = settings.hook_rate
        #: Called with the reason word of each refusal (for metrics).
        self.refused = refused
        self.clock = clock
        # caller -> (tokens left, when last refilled): a token bucket holding one second's worth.
        self._buckets: TTLCache[str, tuple[float, float]] = TTLCache(
            MAX_TRACKED_CALLERS, ttl=60.0, timer=clock
        )
        self._warned: TTLCache[tuple[str, str], bool] = TTLCache(
            MAX_TRACKED_CALLERS, ttl=WARN_EVERY_SECONDS, timer=clock
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Under a root path (``uvicorn --root-path``, a mount) routes match what follows it.
        path: str = scope["path"].removeprefix(scope.get("root_path", ""))
        presented_in_path = None
        if path.startswith(SECRET_PREFIX):
            presented_in_path, _, rest = path[len(SECRET_PREFIX) :].partition("/")
            path = "/" + rest
            scope = _with_path(scope, path)
        if not path.startswith("/hooks/"):
            if presented_in_path is not None:
                await PlainTextResponse("the secret prefix only leads to /hooks/", 404)(
                    scope, receive, send
                )
                return
            await self.app(scope, receive, send)
            return

        scope = self._with_caller(scope)
        caller = scope["client"][0] if scope.get("client") else ""
        if self.networks and not _within(caller, self.networks):
            await self._refuse(scope, receive, send, 403, "network", "source address not allowed")
            return
        if self.secret is not None and not self._secret_matches(scope, presented_in_path):
            await self._refuse(scope, receive, send, 401, "secret", "missing or wrong hook secret")
            return
        if self.rate and not self._take_token(caller):
            await self._refuse(
                scope, receive, send, 429, "rate_limit", f"over {self.rate:g} requests/s"
            )
            return
        await self.app(scope, receive, send)

    def _with_caller(self, scope: Scope) -> Scope:
        """The scope with ``client`` set to the real caller when a trusted proxy forwarded it:
        the rightmost ``X-Forwarded-For`` address that is not itself a trusted proxy."""
        client = scope.get("client")
        if not self.proxies or not client or not _within(client[0], self.proxies):
            return scope
        forwarded = Headers(scope=scope).getlist("x-forwarded-for")
        hops = [_address_of(hop) for line in forwarded for hop in line.split(",") if hop.strip()]
        for hop in reversed(hops):
            if not _within(hop, self.proxies):
                # An unreadable hop ("unknown", garbage) is nobody: never the proxy itself, which
                # would pass every network check and share one rate bucket with everyone.
                return {**scope, "client": (hop if _is_address(hop) else "", 0)}
        return {**scope, "client": ("", 0)}

    def _secret_matches(self, scope: Scope, presented_in_path: str | None) -> bool:
        assert self.secret is not None
        headers = Headers(scope=scope)
        candidates = [presented_in_path, headers.get(SECRET_HEADER)]
        authorization = headers.get("authorization", "")
        if authorization.lower().startswith("bearer "):
            candidates.append(authorization[7:].strip())
        # Digests of equal length are compared, every candidate, so neither the time taken nor
        # an early return on a length mismatch tells anything about the secret.
        matched = False
        for candidate in candidates:
            if candidate is not None:
                digest = hashlib.sha256(candidate.encode("utf-8", "surrogateescape")).digest()
                matched |= hmac.compare_digest(digest, self.secret)
        return matched

    def _take_token(self, caller: str) -> bool:
        now = self.clock()
        # At least one request's worth, so a rate under 1/s (600/h) still admits its requests.
        capacity = max(1.0, self.rate)
        tokens, since = self._buckets.get(caller, (capacity, now))
        tokens = min(capacity, tokens + (now - since) * self.rate)
        if tokens < 1.0:
            self._buckets[caller] = (tokens, now)
            return False
        self._buckets[caller] = (tokens - 1.0, now)
        return True

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, status: int, reason: str, text: str
    ) -> None:
        caller = scope["client"][0] if scope.get("client") else "?"
        if (caller, reason) not in self._warned:
            self._warned[(caller, reason)] = True
            # The path is left out: it may carry a secret.
            _log.warning("refused a hook request from %s: %s (%d)", caller, text, status)
        self.refused(reason)
        await PlainTextResponse(text, status)(scope, receive, send)


def signature_problem(
    signature: RequestSignature, key: bytes, headers: Headers, body: bytes
) -> str:
    """Why a request's signature does not hold (``""`` when it does)."""
    presented = headers.get(signature.header)
    if presented is None:
        return f"missing {signature.header} header"
    if not signature.verify(key, body, presented):
        return f"{signature.header} does not match the body"
    return ""


def _with_path(scope: Scope, path: str) -> Scope:
    return {**scope, "path": path, "raw_path": path.encode()}


def _address_of(hop: str) -> str:
    """The address in an ``X-Forwarded-For`` entry, which some proxies write with a port
    (``192.0.2.1:4711``, ``[2001:db8::1]:443``)."""
    hop = hop.strip()
    if hop.startswith("["):
        return hop[1 : hop.find("]")] if "]" in hop else hop
    if hop.count(":") == 1:
        return hop.split(":", 1)[0]
    return hop


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _within(address: str, networks: tuple[IPNetwork, ...]) -> bool:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    return any(parsed in network for network in networks)
