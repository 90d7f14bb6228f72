"""A real redis-server on a free loopback port, started and stopped by PID, for tests.

Where redis-server is missing the tests that need it skip with the reason, except with
``CI=true``, where they fail: CI must never turn green by skipping them.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from dependencies import unavailable


def require_redis() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("needs redis-server (Debian package redis-server)")
        raise AssertionError("unreachable: unavailable() skips or fails")
    return binary


class RedisServer:
    """``start()`` and ``stop()`` may be called repeatedly; the port and data stay the same.
    With ``unix_socket`` it listens on that path too."""

    def __init__(self, workdir: Path, unix_socket: Path | None = None) -> None:
        self.binary = require_redis()
        self.workdir = workdir
        self.unix_socket = unix_socket
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self.workdir / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--dir",
                str(self.workdir),
                "--daemonize",
                "no",
                *(["--unixsocket", str(self.unix_socket)] if self.unix_socket else []),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError("redis-server exited; see redis.log") from None
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start listening within 10 s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None
