"""CPU time castgate's ASGI app spends per hook request, with no sockets and no uvicorn: the part
of benchmarks/http_path.py's server CPU that is castgate's own code.

Run by hand from the repository root::

    python benchmarks/app_in_process.py                   # both vendors, 5 batches of 3,000
    python benchmarks/app_in_process.py --vendor livepeer --requests 10000
    python benchmarks/app_in_process.py --quick           # a few hundred requests (smoke test)

The app is built with the default settings, the reference policy and memory state, the decision
line logged as JSON to ``/dev/null``; its lifespan runs first, as uvicorn runs it. Each request
is from the mix of benchmarks/http_path.py, and each answer's status is checked against the mix
once before timing. Reported: the median and the lowest of the batches' CPU microseconds per
request (``time.process_time``, so other tenants of the machine count less).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import http_path

from castgate.app import create_app
from castgate.logs import configure_logging
from castgate.settings import Settings


async def measure(vendor: str, requests: int, batches: int) -> dict[str, float]:
    """Per-request CPU microseconds of ``batches`` batches of ``requests`` each."""
    target = next(t for t in http_path.targets(50) if t.vendor == vendor and t.state == "memory")
    settings = Settings(
        policies=(http_path.REFERENCE_POLICY, http_path.LIVEPEER_POLICY), log_format="json"
    )
    configure_logging(settings)
    with Path(os.devnull).open("w", encoding="utf-8") as sink:
        handler = logging.getLogger().handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(sink)
        app = create_app(settings)
        lifespan = _Lifespan(app)
        state = await lifespan.start()
        try:
            for call in target.calls:
                status = await _request(app, state, target, call.body)
                if status != call.expected:
                    raise AssertionError(f"{call.label}: answered {status}, not {call.expected}")
            gc.collect()
            per_request = []
            for _ in range(batches):
                started = time.process_time()
                for index in range(requests):
                    await _request(app, state, target, target.calls[index % len(target.calls)].body)
                await asyncio.sleep(0)  # the last request's record
                per_request.append((time.process_time() - started) / requests * 1e6)
        finally:
            await lifespan.stop()
    return {"median_us": statistics.median(per_request), "lowest_us": min(per_request)}


class _Lifespan:
    """Runs the app's lifespan the way uvicorn does: startup before requests, shutdown after."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.inbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.state: dict[str, Any] = {}

    async def start(self) -> dict[str, Any]:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": self.state}
        self.task = asyncio.create_task(self.app(scope, self.inbox.get, self.outbox.put))
        await self.inbox.put({"type": "lifespan.startup"})
        answer = await self.outbox.get()
        if answer["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"castgate did not start: {answer}")
        return self.state

    async def stop(self) -> None:
        await self.inbox.put({"type": "lifespan.shutdown"})
        await self.task


async def _request(app: Any, state: dict[str, Any], target: Any, body: bytes) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": target.path,
        "raw_path": target.path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", target.content_type.encode()),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8070),
        "state": dict(state),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # a client that stays connected
        raise AssertionError("unreachable")

    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(scope, receive, send)
    return statuses[0]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vendor", choices=["nginx_rtmp", "livepeer"], action="append")
    parser.add_argument("--requests", type=int, default=3000, help="requests per batch")
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 batches of 200 requests")
    args = parser.parse_args(argv)
    requests, batches = (200, 2) if args.quick else (args.requests, args.batches)
    for vendor in args.vendor or ["nginx_rtmp", "livepeer"]:
        result = asyncio.run(measure(vendor, requests, batches))
        print(
            f"{vendor}: {result['median_us']:.1f} µs of CPU per request "
            f"(median of {batches} batches of {requests}; lowest {result['lowest_us']:.1f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
