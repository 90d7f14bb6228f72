"""Real processes for the end-to-end tests: nginx with the rtmp module, ffmpeg, castgate, and a
stand-in webhook server that records what nginx-rtmp sends.

Every wait here has a timeout and every process is stopped by its PID, so a broken build fails a
test instead of hanging the suite.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

RTMP_MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")
HOST = "127.0.0.1"


def nginx_binary() -> str | None:
    # Debian keeps nginx in /usr/sbin, which is not on every user's PATH.
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def missing_tools() -> list[str]:
    """What the nginx end-to-end tests need and this machine lacks, one phrase each."""
    missing = []
    if nginx_binary() is None:
        missing.append("nginx")
    if not RTMP_MODULE.is_file():
        missing.append(f"the rtmp module ({RTMP_MODULE}, Debian: libnginx-mod-rtmp)")
    for tool in ("ffmpeg",):
        if shutil.which(tool) is None:
            missing.append(tool)
    return missing


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def wait_port(port: int, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    """Return once something accepts on ``HOST:port``; fail early if ``process`` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listened on {HOST}:{port} within {timeout}s")


def stop(process: subprocess.Popen[bytes] | None, grace: float = 3.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; always by PID, never by name."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=grace)


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def tail(path: Path, limit: int = 6000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as error:
        return f"<{path}: {error}>"
    return text[-limit:]


# --------------------------------------------------------------------------------------------
# nginx with the rtmp module


#: Every application-level notify directive, and the two server-level ones.
APP_HOOKS = (
    "on_publish",
    "on_play",
    "on_update",
    "on_publish_done",
    "on_play_done",
    "on_done",
    "on_record_done",
)
SERVER_HOOKS = ("on_connect", "on_disconnect")


@dataclass
class Nginx:
    """One nginx (single process, no daemon) with an rtmp server and an application ``live``."""

    workdir: Path
    #: The webhook URL every notify directive points at, e.g.
    #: ``http://127.0.0.1:8080/hooks/nginx_rtmp`` (may carry an operator query like ``?node=e1``).
    hook_url: str
    notify_method: str = "post"
    update_timeout: str = "2s"
    #: Record every publish (for on_record_done); off by default as it only costs disk.
    record: bool = False
    server_hooks: bool = True
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def error_log(self) -> Path:
        return self.workdir / "error.log"

    def url(self, name: str, args: str = "") -> str:
        return f"rtmp://{HOST}:{self.port}/live/{name}" + (f"?{args}" if args else "")

    def config(self) -> str:
        hook = self.hook_url
        server_hooks = (
            "".join(f"        {name} {hook};\n" for name in SERVER_HOOKS)
            if self.server_hooks
            else ""
        )
        app_hooks = "".join(
            f"            {name} {hook};\n"
            for name in APP_HOOKS
            if self.record or name != "on_record_done"
        )
        record = (
            f"            record all;\n"
            f"            record_path {self.workdir / 'recordings'};\n"
            f"            record_max_size 16M;\n"
            if self.record
            else ""
        )
        return f"""\
load_module {RTMP_MODULE};
master_process off;
worker_processes 1;
error_log {self.error_log} info;
events {{ worker_connections 256; }}
rtmp {{
    server {{
        listen {HOST}:{self.port};
        notify_method {self.notify_method};
{server_hooks}        application live {{
            live on;
            notify_method {self.notify_method};
            notify_update_timeout {self.update_timeout};
{app_hooks}{record}        }}
    }}
}}
"""

    def start(self, timeout: float = 10.0) -> Nginx:
        binary = nginx_binary()
        if binary is None:
            raise RuntimeError("nginx is not installed")
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "recordings").mkdir(exist_ok=True)
        conf = self.workdir / "nginx.conf"
        conf.write_text(self.config())
        # -e: the error log nginx uses before it has read the config (else /var/log/nginx).
        command = [
            binary,
            "-p",
            str(self.workdir),
            "-c",
            str(conf),
            "-e",
            str(self.error_log),
            "-g",
            f"daemon off; pid {self.workdir / 'nginx.pid'};",
        ]
        with (self.workdir / "stdout.log").open("wb") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        try:
            wait_port(self.port, timeout, self.process)
        except (RuntimeError, TimeoutError) as error:
            self.stop()
            raise RuntimeError(f"nginx did not start: {error}\n{tail(self.error_log)}") from None
        return self

    def stop(self) -> None:
        stop(self.process)

    def log_lines(self, needle: str) -> list[str]:
        return [line for line in tail(self.error_log, 10**7).splitlines() if needle in line]


# --------------------------------------------------------------------------------------------
# ffmpeg


@dataclass
class Publisher:
    """A background ffmpeg publishing a test pattern over RTMP."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def stays_up(self, seconds: float) -> bool:
        """True when the publish is still running after ``seconds``."""
        return not wait_until(lambda: not self.alive(), seconds)

    def ends_within(self, seconds: float) -> bool:
        """True when the publish stops (refused or cut off) within ``seconds``."""
        return wait_until(lambda: not self.alive(), seconds)

    def stop(self) -> None:
        stop(self.process)

    def output(self) -> str:
        return tail(self.log)


def publish(
    url: str,
    logdir: Path,
    *,
    seconds: float = 30.0,
    extra: Sequence[str] = (),
) -> Publisher:
    """Start publishing to ``url``; ``seconds`` bounds the publish even if nobody stops it."""
    logdir.mkdir(parents=True, exist_ok=True)
    log = logdir / f"publish-{time.monotonic_ns()}.log"
    command = [
        "ffmpeg",
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "warning",
        "-re",
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x240:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-tune",
        "zerolatency",
        "-g",
        "25",
        "-c:a",
        "aac",
        "-t",
        f"{seconds:g}",
        *extra,
        "-f",
        "flv",
        url,
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=out, stdin=subprocess.DEVNULL
        )
    return Publisher(url, process, log)


@contextlib.contextmanager
def publishing(url: str, logdir: Path, **options: Any) -> Iterator[Publisher]:
    publisher = publish(url, logdir, **options)
    try:
        yield publisher
    finally:
        publisher.stop()


def play(url: str, *, seconds: float = 2.0, timeout: float = 8.0, extra: Sequence[str] = ()) -> int:
    """Frames received while playing ``url`` for ``seconds`` (0 when refused or nothing came).

    ``timeout`` bounds the whole run: playing a stream nobody publishes waits forever otherwise.
    """
    command = [
        "ffmpeg",
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        *extra,
        "-i",
        url,
        "-t",
        f"{seconds:g}",
        "-map",
        "0:v:0",
        "-f",
        "framecrc",
        "-",
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
    )
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(process, grace=1.0)
        out, _ = process.communicate()
    return sum(1 for line in out.splitlines() if line and not line.startswith(b"#"))


# --------------------------------------------------------------------------------------------
# castgate


@dataclass
class Castgate:
    """``castgate serve`` as a real subprocess, with its stderr (the decision log) in a file."""

    policies: Path
    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def hook_url(self) -> str:
        return f"{self.base_url}/hooks/nginx_rtmp"

    @property
    def stderr_path(self) -> Path:
        return self.workdir / "castgate.stderr"

    def start(self, timeout: float = 20.0) -> Castgate:
        self.workdir.mkdir(parents=True, exist_ok=True)
        command = [
            *castgate_command(),
            "serve",
            "--policies",
            str(self.policies),
            "--host",
            HOST,
            "--port",
            str(self.port),
        ]
        # The decision log is read back from stderr, so its format must not depend on the
        # caller's environment.
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "CASTGATE_LOG_FORMAT": "json",
            "CASTGATE_LOG_LEVEL": "info",
        }
        with self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                command,
                stdout=err,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.workdir,
            )
        if not wait_until(self._healthy, timeout, interval=0.1):
            code = self.process.poll()
            self.stop()
            raise RuntimeError(
                f"castgate did not answer GET /healthz with 200 within {timeout}s "
                f"(exit code {code})\n{tail(self.stderr_path)}"
            )
        return self

    def _healthy(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            return True  # dead: stop waiting, start() reports it
        try:
            with urllib.request.urlopen(f"{self.base_url}/healthz", timeout=1) as reply:
                return bool(reply.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def stop(self) -> None:
        stop(self.process, grace=5.0)

    def decisions(self) -> list[dict[str, Any]]:
        """Decision log entries: stderr lines holding a JSON object with vendor/action/effect."""
        entries = []
        for line in tail(self.stderr_path, 10**8).splitlines():
            start = line.find("{")
            if start < 0:
                continue
            try:
                entry = json.loads(line[start:])
            except ValueError:
                continue
            if isinstance(entry, dict) and {"vendor", "action", "effect"} <= entry.keys():
                entries.append(entry)
        return entries

    def wait_for_decision(self, timeout: float, **match: Any) -> dict[str, Any] | None:
        found: list[dict[str, Any]] = []

        def seen() -> bool:
            found[:] = [
                entry
                for entry in self.decisions()
                if all(_matches(entry, key, value) for key, value in match.items())
            ]
            return bool(found)

        wait_until(seen, timeout)
        return found[-1] if found else None


def _matches(entry: dict[str, Any], key: str, value: Any) -> bool:
    actual = entry.get(key)
    if key == "rule" and isinstance(actual, str) and isinstance(value, str):
        # rule ids are "file.policy:name"; tests name just the rule
        return actual == value or actual.endswith(f":{value}")
    return bool(actual == value)


def castgate_command() -> list[str]:
    script = shutil.which("castgate")
    if script is None:
        raise RuntimeError("the castgate console script is not installed (pip install -e .)")
    return [script]


@functools.cache
def castgate_serve_missing() -> str | None:
    """Why ``castgate serve`` cannot run here, or ``None`` when it can."""
    try:
        command = castgate_command()
    except RuntimeError as error:
        return str(error)
    try:
        result = subprocess.run(
            [*command, "serve", "--help"],
            capture_output=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"castgate serve --help failed: {error}"
    if result.returncode != 0:
        return "castgate serve --help failed: " + result.stderr.decode(errors="replace")[-500:]
    return None


# --------------------------------------------------------------------------------------------
# a stand-in webhook that records what nginx-rtmp sends


@dataclass(frozen=True)
class HookRequest:
    method: str
    #: The request target exactly as sent (path and query), e.g. ``/hooks/nginx_rtmp?node=e1``.
    target: str
    headers: dict[str, str]
    body: bytes

    @property
    def params(self) -> str:
        """The notify parameter string: the body, or for GET what follows the second ``?``."""
        if self.body:
            return self.body.decode("latin-1")
        query = urlsplit(self.target).query
        if query.startswith("app="):
            return query  # upstream order, no operator query in the hook URL
        _, sep, rest = query.partition("?")
        return rest if sep else query

    def first(self, key: str) -> str:
        """The FIRST value of ``key``: under upstream order that is nginx-rtmp's own."""
        for name, value in parse_qsl(self.params, keep_blank_values=True):
            if name == key:
                return value
        return ""

    @property
    def call(self) -> str:
        return self.first("call")

    def keys(self) -> list[str]:
        return [name for name, _ in parse_qsl(self.params, keep_blank_values=True)]


@dataclass(frozen=True)
class HookReply:
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()


Responder = Callable[[HookRequest], HookReply]


class HookRecorder:
    """A threaded HTTP server that keeps every request and answers through ``responder``."""

    def __init__(self, responder: Responder | None = None) -> None:
        self.requests: list[HookRequest] = []
        self.responder: Responder = responder or (lambda _: HookReply())
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                hook = HookRequest(self.command, self.path, dict(self.headers.items()), body)
                with recorder._lock:
                    recorder.requests.append(hook)
                reply = recorder.responder(hook)
                self.send_response(reply.status)
                for name, value in reply.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.send_header("Connection", "close")
                self.end_headers()

            def do_GET(self) -> None:
                self._handle()

            def do_POST(self) -> None:
                self._handle()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((HOST, 0), Handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str = "/hooks/nginx_rtmp") -> str:
        return f"http://{HOST}:{self.port}{path}"

    def start(self) -> HookRecorder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def calls(self, call: str | None = None, name: str | None = None) -> list[HookRequest]:
        with self._lock:
            found = list(self.requests)
        return [
            hook
            for hook in found
            if (call is None or hook.call == call) and (name is None or hook.first("name") == name)
        ]

    def wait_for(self, call: str, timeout: float, name: str | None = None) -> HookRequest | None:
        wait_until(lambda: bool(self.calls(call, name)), timeout)
        found = self.calls(call, name)
        return found[0] if found else None
