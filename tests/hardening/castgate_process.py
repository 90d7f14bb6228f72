"""``castgate serve`` as an operator runs it: a real process on a free loopback port, stopped by
its PID, its log kept in a file (a pipe nobody reads would stall a chatty server)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from hardening.raw_http import exchange, post
from hardening.vendor_requests import FIXTURES

CASTGATE = str(Path(sys.executable).parent / "castgate")

#: How long a server may take to answer /healthz after it is started.
START_SECONDS = 30

#: A real nginx-rtmp publish from this host: the shipped default policy admits it.
PUBLISH = post(
    b"/hooks/nginx_rtmp",
    (FIXTURES / "nginx_rtmp/recorded/post/publish.body").read_bytes(),
    b"application/x-www-form-urlencoded",
)


@dataclass(frozen=True, slots=True)
class Served:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def castgate_serve(
    directory: Path, *args: str, env: Mapping[str, str] | None = None
) -> Iterator[Served]:
    """Serve with ``args`` (the shipped default policy unless they name another) and the
    ``CASTGATE_*`` variables in ``env`` (none of the caller's) until /healthz answers;
    terminated afterwards, killed if it does not stop."""
    port = free_port()
    log = directory / f"castgate-{port}.log"
    inherited = {key: value for key, value in os.environ.items() if not key.startswith("CASTGATE_")}
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [CASTGATE, "serve", "--port", str(port), "--log-format", "json", *args],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**inherited, **(env or {})},
        )
    served = Served(port, process, log)
    try:
        _wait_until_healthy(served)
        yield served
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _wait_until_healthy(served: Served) -> None:
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            if httpx.get(f"{served.url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if served.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"castgate serve did not start:\n{served.log_text()}")
        time.sleep(0.1)


def publish_is_admitted(served: Served) -> bool:
    answer = exchange(served.port, PUBLISH)
    return answer.status == 200 and answer.closed
