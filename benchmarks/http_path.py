"""castgate over HTTP against a bare Starlette endpoint: requests/s at saturation, and latency at
a fixed rate of half that.

Run by hand from the repository root::

    python benchmarks/http_path.py                 # full run, about six minutes
    python benchmarks/http_path.py --quick         # a few seconds per server (the smoke test)
    python benchmarks/http_path.py --duration 20 --json out.json

Five servers, each a subprocess on a free loopback port, stopped by PID at the end:

* ``bare``: ``benchmarks/bare_app.py``, a Starlette endpoint that only answers 200, under the
  uvicorn settings ``castgate serve`` uses: the ceiling;
* castgate's ``/hooks/nginx_rtmp`` and ``/hooks/livepeer``, each with memory state and with Redis
  state (a redis-server this script starts), deciding with the reference policy
  (``benchmarks/policies/reference``) plus ``benchmarks/policies/http/livepeer.policy``.

Each server first answers every request body of its mix once, and each answer's status is checked
(allowed 200, denied 403, notifications 200). Then wrk (Debian package ``wrk``, with
``benchmarks/http_path.lua``) saturates it, the servers taken in turn for ``--rounds`` rounds;
then, in as many rounds, an open-loop client in this process sends at half the best saturation
rate and times each answer from the moment its request was due, so a slow answer cannot hold back
the requests behind it (no coordinated omission). Every request opens its own connection:
castgate answers ``Connection: close``, as nginx-rtmp needs, and so does the bare endpoint.

On two or more CPUs the servers run on CPU 0 and wrk, redis-server and this script on CPU 1, so
the load generator never competes with the server it measures. Progress goes to stderr, a
Markdown report to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import gc
import importlib
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REFERENCE_POLICY = HERE / "policies" / "reference"
LIVEPEER_POLICY = HERE / "policies" / "http" / "livepeer.policy"
BROADCASTER_KEYS = HERE / "policies" / "http" / "broadcaster-keys.txt"
BARE_APP = HERE / "bare_app.py"
WRK_SCRIPT = HERE / "http_path.lua"

#: ``castgate`` run by this interpreter, so that it is the castgate this script imports (a
#: ``PYTHONPATH`` pointing at another checkout applies to the servers too).
CASTGATE = [sys.executable, "-c", "import sys; from castgate.cli import main; sys.exit(main())"]

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

#: wrk's connections: enough to keep a one-process server busy while one connection is being
#: set up or torn down; more only lengthens the queue (and wrk's latencies) at the same rate.
WRK_CONNECTIONS = 16
#: The rate of the status check that sends every body of a mix once.
CHECK_RATE = 500.0
#: The open-loop rate when wrk is missing and there is no saturation rate to halve.
RATE_WITHOUT_WRK = 200.0
#: An answer slower than this counts as an error in the open-loop run.
REQUEST_TIMEOUT_S = 10.0

TARGET_SHARE_OF_BARE = 0.80
TARGET_P99_MS = 5.0

#: Where the servers run and where the load comes from, on a machine with two CPUs or more.
SERVER_CPUS = {0}
LOAD_CPUS = {1}

Progress = Callable[[str], None]


# The requests -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call:
    """One request body of a mix and the status its answer must have."""

    label: str
    body: bytes
    expected: int


@dataclass(frozen=True, slots=True)
class Target:
    """One server and the mix of requests it is measured with."""

    name: str
    vendor: str
    state: str
    path: str
    content_type: str
    calls: tuple[Call, ...]

    @property
    def is_bare(self) -> bool:
        return self.vendor == "bare"


def nginx_rtmp_calls(sessions: int) -> list[Call]:
    """Upstream nginx-rtmp bodies, in the field order of ``tests/fixtures/nginx_rtmp/recorded``:
    for each of ``sessions`` streams a studio publish, two plays, an update and both ends (all
    200), and four refusals (403) the reference policy decides by different rules."""
    calls: list[Call] = []
    for i in range(sessions):
        studio = f"10.20.{i // 250}.{i % 250 + 1}"
        viewer = f"192.0.2.{i % 250 + 1}"
        cam = f"cam{i}"
        publisher, viewer_id, token_viewer, other = (str(4 * i + n) for n in range(1, 5))
        token = f"token=v1.{i:016x}"
        calls += [
            Call("allowed publish", _publish("live", studio, publisher, cam), 200),
            Call("allowed play", _play("public", viewer, viewer_id, cam), 200),
            Call("allowed play", _play("live", viewer, token_viewer, cam, token), 200),
            Call("allowed update", _update("live", studio, publisher, cam), 200),
            Call("denied publish", _publish("live", f"198.51.100.{i % 250}", other, cam), 403),
            Call("denied publish", _publish("live", viewer, other, cam, "key=k0unknown"), 403),
            Call("denied play", _play("public", viewer, other, "admin"), 403),
            Call("denied play", _play("live", viewer, other, cam), 403),
            Call("done", _notify("play_done", "public", viewer, viewer_id, cam), 200),
            Call("done", _notify("publish_done", "live", studio, publisher, cam), 200),
        ]
    return calls


def _nginx_body(call: str, app: str, addr: str, clientid: str, fields: str, args: str) -> bytes:
    session = (
        f"app={app}&flashver=FMLE/3.0%20(compatible%3B%20Lavf59.27&swfurl="
        f"&tcurl=rtmp://127.0.0.1:1935/{app}&pageurl=&addr={addr}&clientid={clientid}"
    )
    # The client's args come last, as upstream nginx-rtmp appends them.
    return f"{session}&call={call}&{fields}{'&' + args if args else ''}".encode()


def _publish(app: str, addr: str, clientid: str, name: str, args: str = "") -> bytes:
    return _nginx_body("publish", app, addr, clientid, f"name={name}&type=live", args)


def _play(app: str, addr: str, clientid: str, name: str, args: str = "") -> bytes:
    fields = f"name={name}&start=4294965296&duration=0&reset=0"
    return _nginx_body("play", app, addr, clientid, fields, args)


def _update(app: str, addr: str, clientid: str, name: str) -> bytes:
    fields = f"time=2&timestamp=1983&name={name}"
    return _nginx_body("update_publish", app, addr, clientid, fields, "")


def _notify(call: str, app: str, addr: str, clientid: str, name: str) -> bytes:
    return _nginx_body(call, app, addr, clientid, f"name={name}", "")


def livepeer_calls(sessions: int) -> list[Call]:
    """go-livepeer broadcaster bodies: for each of ``sessions`` gateways a keyed RTMP publish and
    HTTP push (200, with a manifest ID), and four refusals (403): an unknown key, a reserved and a
    test stream name, and a recordings read no rule admits."""
    keys = _broadcaster_keys()
    calls: list[Call] = []
    for i in range(sessions):
        key = keys[i % len(keys)]
        rtmp = f"rtmp://gw{i}.example.com:1935/live"
        http = f"http://gw{i}.example.com:8935"
        calls += [
            Call("allowed publish", _url(f"{rtmp}/{key}?ladder=low"), 200),
            Call("allowed publish", _url(f"{http}/live/{key}/{i}.ts"), 200),
            Call("denied publish", _url(f"{rtmp}/sk{i:012x}"), 403),
            Call("denied publish", _url(f"{rtmp}/admin"), 403),
            Call("denied publish", _url(f"{rtmp}/test-cam{i}"), 403),
            Call("denied play", _url(f"{http}/recordings/studio1/index.m3u8"), 403),
        ]
    return calls


def _broadcaster_keys() -> list[str]:
    lines = BROADCASTER_KEYS.read_text(encoding="utf-8").splitlines()
    return [line.split()[0] for line in lines if line.strip() and not line.startswith("#")]


def _url(url: str) -> bytes:
    # Compact, as Go's json.Marshal writes it.
    return json.dumps({"url": url}, separators=(",", ":")).encode()


def targets(sessions: int) -> list[Target]:
    nginx = tuple(nginx_rtmp_calls(sessions))
    livepeer = tuple(livepeer_calls(sessions))
    # The ceiling gets the nginx-rtmp bodies: same sizes on the wire, and it answers 200 to all.
    bare = tuple(Call(call.label, call.body, 200) for call in nginx)
    return [
        Target("bare", "bare", "-", "/hooks/nginx_rtmp", FORM, bare),
        Target("nginx_rtmp, memory", "nginx_rtmp", "memory", "/hooks/nginx_rtmp", FORM, nginx),
        Target("livepeer, memory", "livepeer", "memory", "/hooks/livepeer", JSON, livepeer),
        Target("nginx_rtmp, redis", "nginx_rtmp", "redis", "/hooks/nginx_rtmp", FORM, nginx),
        Target("livepeer, redis", "livepeer", "redis", "/hooks/livepeer", JSON, livepeer),
    ]


def http_request(target: Target, port: int, call: Call) -> bytes:
    """The request as this script sends it: what wrk sends, without keep-alive tricks."""
    head = (
        f"POST {target.path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: {target.content_type}\r\nContent-Length: {len(call.body)}\r\n\r\n"
    )
    return head.encode() + call.body


# Processes ----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def pinning_available() -> bool:
    return (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None


def on_cpus(cpus: set[int], command: list[str]) -> list[str]:
    """``command`` run on ``cpus`` only (taskset execs it: the PID stays the command's)."""
    if not pinning_available():
        return command
    return ["taskset", "-c", ",".join(map(str, sorted(cpus))), *command]


@contextlib.contextmanager
def this_process_on(cpus: set[int]) -> Iterator[None]:
    """Runs this process's open-loop client away from the servers, and gives the CPUs back."""
    if not pinning_available():
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """A full collection over thousands of live requests stalls the client for milliseconds,
    which its latencies would charge to the server."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start(command: list[str], port: int, log: Path, ready: Callable[[], bool]) -> Server:
    """Start ``command`` with its output in ``log``; return once ``ready()`` says it serves."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CASTGATE_")}
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    server = Server(process, port, log)
    deadline = time.monotonic() + 30
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            tail = log.read_text(encoding="utf-8", errors="replace")[-2000:]
            raise RuntimeError(f"{' '.join(command)} did not start serving:\n{tail}")
        time.sleep(0.05)
    return server


def answers_http(port: int) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as reply:
                return bool(reply.status == 200)
        except OSError:
            return False

    return ready


def accepts_connections(port: int) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False

    return ready


def start_redis(workdir: Path) -> Server:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("needs redis-server (Debian package redis-server)")
    port = free_port()
    # No persistence: the disk is not what this benchmark measures.
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir"]
    command += [str(workdir), "--appendonly", "no"]
    return start(
        on_cpus(LOAD_CPUS, command), port, workdir / "redis.log", accepts_connections(port)
    )


def start_target(target: Target, workdir: Path, redis_url: str) -> Server:
    port = free_port()
    if target.is_bare:
        command = [sys.executable, str(BARE_APP), "--port", str(port)]
    else:
        command = [*CASTGATE, "serve", "--port", str(port), "--log-format", "json"]
        command += ["--policies", str(REFERENCE_POLICY), "--policies", str(LIVEPEER_POLICY)]
        command += ["--state", redis_url if target.state == "redis" else "memory"]
    log = workdir / f"{target.name.replace(', ', '-')}.log"
    return start(on_cpus(SERVER_CPUS, command), port, log, answers_http(port))


# The open-loop client -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    """One request's outcome: its call, the status (0: none), and from its due time to the
    moment it started and to the answer's end, in seconds."""

    call: int
    status: int
    lag_s: float
    latency_s: float
    error: str = ""


class OpenLoop:
    """Sends ``count`` requests of a mix, in turn, at ``rate`` per second, each at its due time
    whatever became of the ones before it, and collects every :class:`Answer`.

    Each request is a non-blocking socket driven by event-loop callbacks, with no task, transport
    or future of its own: the client must stay far cheaper than the server it measures, or its own
    delays would show up as the server's latency.
    """

    def __init__(self, port: int, requests: list[bytes], rate: float, count: int) -> None:
        self.loop = asyncio.get_running_loop()
        self.address = ("127.0.0.1", port)
        self.requests = requests
        self.rate = rate
        self.count = count
        self.answers: list[Answer] = []
        self.in_flight: set[_Exchange] = set()
        self.sent = 0
        self.began = self.loop.time() + 0.05
        self.finished: asyncio.Future[None] = self.loop.create_future()

    async def run(self) -> float:
        """Send everything and wait for every answer; the seconds it took."""
        self.loop.call_at(self.began, self._send_due)
        self.loop.call_later(1.0, self._expire)
        await self.finished
        return self.loop.time() - self.began

    def _send_due(self) -> None:
        # Every request already due goes out now, so a late wake-up never thins the rate.
        due_now = min(self.count, int((self.loop.time() - self.began) * self.rate) + 1)
        for index in range(self.sent, due_now):
            request = index % len(self.requests)
            _Exchange(self, request, self.began + index / self.rate)
        self.sent = max(self.sent, due_now)
        if self.sent < self.count:
            self.loop.call_at(self.began + self.sent / self.rate, self._send_due)

    def _expire(self) -> None:
        now = self.loop.time()
        for exchange in [e for e in self.in_flight if now - e.due > REQUEST_TIMEOUT_S]:
            exchange.end(0, "TimeoutError")
        if not self.finished.done():
            self.loop.call_later(1.0, self._expire)

    def answered(self, answer: Answer) -> None:
        self.answers.append(answer)
        if len(self.answers) == self.count:
            self.finished.set_result(None)


class _Exchange:
    """One request on its own connection: connect, write, read until the server closes."""

    def __init__(self, client: OpenLoop, call: int, due: float) -> None:
        self.client = client
        self.call = call
        self.due = due
        self.started = client.loop.time()
        self.chunks: list[bytes] = []
        try:
            self.sock = socket.socket()
        except OSError as failure:
            # Out of file descriptors: the server is far behind, and this request is lost.
            self._answered(0, type(failure).__name__)
            return
        self.sock.setblocking(False)
        client.in_flight.add(self)
        error = self.sock.connect_ex(client.address)
        if error in (0, errno.EINPROGRESS):
            # On loopback the handshake is usually over when connect returns: write at once.
            self._write()
        else:
            self.end(0, errno.errorcode.get(error, str(error)))

    def _write(self) -> None:
        loop = self.client.loop
        loop.remove_writer(self.sock)
        request = self.client.requests[self.call]
        try:
            # A fresh connection's send buffer takes these few hundred bytes whole.
            written = self.sock.send(request)
        except BlockingIOError:
            loop.add_writer(self.sock, self._write)  # still connecting
            return
        except OSError as failure:
            self.end(0, type(failure).__name__)
            return
        if written != len(request):
            self.end(0, "short write")
            return
        loop.add_reader(self.sock, self._read)

    def _read(self) -> None:
        # The answer and the server's close often arrive together: read until either is missing.
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return
            except OSError as failure:
                self.end(0, type(failure).__name__)
                return
            if not data:
                self.end(_status(b"".join(self.chunks)))
                return
            self.chunks.append(data)

    def end(self, status: int, error: str = "") -> None:
        loop = self.client.loop
        loop.remove_reader(self.sock)
        loop.remove_writer(self.sock)
        self.sock.close()
        self.client.in_flight.discard(self)
        self._answered(status, error)

    def _answered(self, status: int, error: str) -> None:
        now = self.client.loop.time()
        self.client.answered(
            Answer(self.call, status, self.started - self.due, now - self.due, error)
        )


def _status(answer: bytes) -> int:
    # "HTTP/1.1 200 OK": the three digits after the first space; anything else is 0.
    parts = answer.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


async def open_loop(
    target: Target, port: int, rate: float, duration: float
) -> tuple[list[Answer], float]:
    """The mix at ``rate`` requests/s for ``duration`` seconds: every answer, and the seconds
    it all took."""
    requests = [http_request(target, port, call) for call in target.calls]
    client = OpenLoop(port, requests, rate, max(1, int(rate * duration)))
    took = await client.run()
    return client.answers, took


async def each_once(target: Target, port: int) -> list[Answer]:
    """Every call of the mix once, at a gentle rate: the status check, and the warm-up."""
    requests = [http_request(target, port, call) for call in target.calls]
    client = OpenLoop(port, requests, CHECK_RATE, len(requests))
    await client.run()
    return client.answers


# wrk ----------------------------------------------------------------------------------------------


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, all its threads included, so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def busy_seconds(cpus: set[int]) -> float:
    """How long ``cpus`` have been busy so far, whoever kept them busy (Linux /proc/stat)."""
    total = 0.0
    for line in Path("/proc/stat").read_text(encoding="ascii").splitlines():
        name, *ticks = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            idle, iowait = int(ticks[3]), int(ticks[4])
            total += sum(int(tick) for tick in ticks[:8]) - idle - iowait
    return total / os.sysconf("SC_CLK_TCK")


def saturate_once(
    target: Target, server: Server, redis: Server, duration: float, workdir: Path
) -> dict[str, Any]:
    """One wrk run, with the CPU time the server (and redis-server) spent per answer, and how
    much of the server's CPU went to anything else: a shared machine's other tenants."""
    pids = {"server": server.process.pid, "redis": redis.process.pid}
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    server_cpus_before = busy_seconds(SERVER_CPUS)
    figures = run_wrk(target, server.port, duration, workdir)
    spent = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
    answered = max(1, figures["answered"])
    figures["server_cpu_us"] = spent["server"] / answered * 1e6
    # Near 100 %: the server was the bottleneck; well below: something else held it back.
    figures["server_busy"] = spent["server"] / figures["seconds"]
    if pinning_available():
        others = busy_seconds(SERVER_CPUS) - server_cpus_before - spent["server"]
        figures["others_on_server_cpu"] = max(0.0, others) / figures["seconds"]
    if target.state == "redis":
        figures["redis_cpu_us"] = spent["redis"] / answered * 1e6
    return figures


def run_wrk(target: Target, port: int, duration: float, workdir: Path) -> dict[str, Any]:
    """One saturation run; wrk's numbers plus the statuses it counted (see http_path.lua)."""
    bodies = workdir / f"{target.name.replace(', ', '-')}.bodies"
    bodies.write_bytes(b"".join(call.body + b"\n" for call in target.calls))
    seconds = max(1, round(duration))
    command = ["wrk", "-t1", f"-c{WRK_CONNECTIONS}", f"-d{seconds}s", "-s", str(WRK_SCRIPT)]
    command += [f"http://127.0.0.1:{port}{target.path}", "--", target.content_type, str(bodies)]
    done = subprocess.run(
        on_cpus(LOAD_CPUS, command),
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    )
    for line in done.stdout.splitlines():
        if line.startswith("http_path_result "):
            result: dict[str, Any] = json.loads(line.removeprefix("http_path_result "))
            return _wrk_figures(target, result)
    raise RuntimeError(f"wrk printed no result:\n{done.stdout}\n{done.stderr}")


def _wrk_figures(target: Target, result: dict[str, Any]) -> dict[str, Any]:
    statuses = {int(status): count for status, count in result["statuses"].items()}
    answered = sum(statuses.values())
    latency = {key: value / 1000 for key, value in result["latency_us"].items()}
    seconds = result["duration_us"] / 1e6
    return {
        "requests_per_s": answered / seconds,
        "answered": answered,
        "seconds": seconds,
        "latency_ms": latency,
        "statuses": statuses,
        "errors": result["errors"],
        "statuses_as_expected": _wrk_statuses_as_expected(target, statuses, result["errors"]),
    }


def _wrk_statuses_as_expected(
    target: Target, statuses: dict[int, int], errors: dict[str, int]
) -> bool:
    """wrk cannot say which body got which answer, but it sends the mix in turn: the count of each
    status must match the mix's share of it, give or take the requests in flight at the end."""
    if any(errors.values()):
        return False
    expected = Counter(call.expected for call in target.calls)
    answered = sum(statuses.values())
    slack = WRK_CONNECTIONS + len(target.calls)
    if set(statuses) != set(expected):
        return False
    share = {status: count / len(target.calls) for status, count in expected.items()}
    return all(abs(statuses[status] - answered * share[status]) <= slack for status in share)


# Measuring ----------------------------------------------------------------------------------------


def percentiles_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p90, p99 (nearest rank) and max, in milliseconds."""
    ordered = sorted(seconds)
    if not ordered:
        return {"p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0}

    def rank(p: float) -> float:
        return ordered[max(0, -(-len(ordered) * p // 100) - 1)] * 1000

    return {"p50": rank(50), "p90": rank(90), "p99": rank(99), "max": ordered[-1] * 1000}


def status_check(target: Target, answers: Sequence[Answer]) -> dict[str, dict[str, Any]]:
    """Per label of the mix: the status expected and the statuses answered (errors as 0)."""
    labels: dict[str, dict[str, Any]] = {}
    for answer in answers:
        call = target.calls[answer.call]
        entry = labels.setdefault(call.label, {"expected": call.expected, "answered": Counter()})
        entry["answered"][answer.status] += 1
    return {
        label: {"expected": entry["expected"], "answered": dict(entry["answered"])}
        for label, entry in labels.items()
    }


def all_as_expected(check: dict[str, dict[str, Any]]) -> bool:
    return all(set(entry["answered"]) == {entry["expected"]} for entry in check.values())


def half_rate_figures(
    target: Target, answers: list[Answer], rate: float, took: float
) -> dict[str, Any]:
    answered = [a for a in answers if not a.error]
    return {
        "rate_per_s": rate,
        "sent": len(answers),
        "answered_per_s": len(answered) / took,
        "errors": dict(Counter(a.error for a in answers if a.error)),
        "latency_ms": percentiles_ms([a.latency_s for a in answers]),
        # How late this client started requests: part of the latencies above, not the server's.
        "client_lag_ms": percentiles_ms([a.lag_s for a in answers]),
        "statuses": status_check(target, answers),
    }


@dataclass(frozen=True, slots=True)
class Plan:
    duration: float
    rounds: int
    sessions: int


QUICK = Plan(duration=1.0, rounds=1, sessions=4)
FULL = Plan(duration=10.0, rounds=3, sessions=40)


def measure(plan: Plan, progress: Progress, workdir: Path) -> dict[str, dict[str, Any]]:
    """Start every server, check its answers, saturate each in turn for every round, then run the
    open-loop client at half of each one's best saturation rate as many rounds; stop them all."""
    chosen = targets(plan.sessions)
    redis = start_redis(workdir)
    servers: dict[str, Server] = {}
    try:
        redis_url = f"redis://127.0.0.1:{redis.port}/0"
        for target in chosen:
            progress(f"starting {target.name}")
            servers[target.name] = start_target(target, workdir, redis_url)
        results = {t.name: _checked_once(t, servers[t.name]) for t in chosen}
        if wrk_available():
            _saturate(chosen, servers, redis, plan, progress, workdir, results)
        _at_half_rate(chosen, servers, plan, progress, results)
        for target in chosen:
            results[target.name]["errors_logged"] = errors_logged(servers[target.name].log)
        return results
    finally:
        for server in servers.values():
            server.stop()
        redis.stop()


def errors_logged(log: Path) -> dict[str, Any]:
    """How many error lines a server logged, and the first few messages. A hook answered 200 can
    still have lost something (a session record Redis refused), which statuses do not show."""
    messages: list[str] = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict) and entry.get("level") in ("error", "critical"):
                messages.append(str(entry.get("message", ""))[:200])
    return {"count": len(messages), "first": sorted(set(messages[:20]))[:3]}


def _checked_once(target: Target, server: Server) -> dict[str, Any]:
    answers = asyncio.run(each_once(target, server.port))
    return {
        "vendor": target.vendor,
        "state": target.state,
        "mix": dict(Counter(call.label for call in target.calls)),
        "each_once": status_check(target, answers),
    }


def _saturate(
    chosen: list[Target],
    servers: dict[str, Server],
    redis: Server,
    plan: Plan,
    progress: Progress,
    workdir: Path,
    results: dict[str, dict[str, Any]],
) -> None:
    """The servers take turns, round after round, so a slow spell of the machine is shared. The
    fastest round is reported, whole (its latencies belong with its rate): another tenant of the
    machine can only slow a run down."""
    runs: dict[str, list[dict[str, Any]]] = {target.name: [] for target in chosen}
    for round_number in range(1, plan.rounds + 1):
        for target in chosen:
            progress(f"round {round_number}/{plan.rounds}: wrk on {target.name}")
            server = servers[target.name]
            runs[target.name].append(saturate_once(target, server, redis, plan.duration, workdir))
    for name, each in runs.items():
        best = max(each, key=lambda run: run["requests_per_s"])
        results[name]["saturation"] = {**best, "rounds_per_s": [r["requests_per_s"] for r in each]}


def _at_half_rate(
    chosen: list[Target],
    servers: dict[str, Server],
    plan: Plan,
    progress: Progress,
    results: dict[str, dict[str, Any]],
) -> None:
    """The open-loop runs, in turns and rounds like the saturation runs. The round with the
    lowest p99 is reported, as the fastest saturation round is; the statuses and errors of every
    round are counted."""
    rounds: dict[str, list[dict[str, Any]]] = {target.name: [] for target in chosen}
    answers: dict[str, list[Answer]] = {target.name: [] for target in chosen}
    for round_number in range(1, plan.rounds + 1):
        for target in chosen:
            rate = _half_rate(results[target.name])
            progress(
                f"round {round_number}/{plan.rounds}: open loop on {target.name} at "
                f"{rate:.0f} requests/s"
            )
            with this_process_on(LOAD_CPUS), collector_paused():
                answered, took = asyncio.run(
                    open_loop(target, servers[target.name].port, rate, plan.duration)
                )
            rounds[target.name].append(half_rate_figures(target, answered, rate, took))
            answers[target.name] += answered
    for target in chosen:
        each = rounds[target.name]
        best = min(each, key=lambda run: run["latency_ms"]["p99"])
        results[target.name]["half"] = {
            **best,
            "rounds_p99_ms": [run["latency_ms"]["p99"] for run in each],
            "errors": dict(sum((Counter(run["errors"]) for run in each), Counter())),
            "statuses": status_check(target, answers[target.name]),
        }


def _half_rate(result: dict[str, Any]) -> float:
    """Half the saturation rate; without wrk, a rate any of these servers keeps up with."""
    if "saturation" in result:
        return float(result["saturation"]["requests_per_s"]) / 2
    return RATE_WITHOUT_WRK


# The report ---------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    return {
        "cpu": model,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "uvicorn": importlib.metadata.version("uvicorn"),
        "starlette": importlib.metadata.version("starlette"),
        # What uvicorn's "auto" (and castgate serve) picks: httptools and uvloop when they
        # import, else h11 and asyncio.
        "http_parser": "httptools" if _imports("httptools") else "h11",
        "event_loop": "uvloop" if _imports("uvloop") else "asyncio",
        "wrk": _wrk_version(),
        "pinning": "servers on CPU 0; wrk, redis-server and the open-loop client on CPU 1"
        if pinning_available()
        else "none (fewer than 2 CPUs or no taskset)",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _imports(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def _wrk_version() -> str:
    if not wrk_available():
        return "missing"
    out = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).split("\n", 1)[0].strip()


def compare_with_bare(results: dict[str, dict[str, Any]]) -> None:
    """Each server's throughput, and CPU time per answer, as a share of the bare endpoint's."""
    bare = results["bare"].get("saturation")
    if bare is None:
        return
    for result in results.values():
        saturation = result["saturation"]
        result["share_of_bare"] = saturation["requests_per_s"] / bare["requests_per_s"]
        result["share_of_bare_by_cpu"] = bare["server_cpu_us"] / saturation["server_cpu_us"]


def targets_met(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The issue's targets, each with its measured value; empty without saturation figures."""
    if "share_of_bare" not in results["bare"]:
        return {}
    memory = [r for r in results.values() if r["state"] == "memory"]
    redis = [r for r in results.values() if r["state"] == "redis"]
    worst_share = min(r["share_of_bare"] for r in memory)
    out = {
        "memory_throughput_ge_80pct_of_bare": {
            "value": worst_share,
            "by_cpu": min(r["share_of_bare_by_cpu"] for r in memory),
            "met": worst_share >= TARGET_SHARE_OF_BARE,
        }
    }
    for state, group in (("memory", memory), ("redis", redis)):
        worst_p99 = max(r["half"]["latency_ms"]["p99"] for r in group)
        out[f"{state}_p99_le_5ms_at_half_saturation"] = {
            "value_ms": worst_p99,
            "met": worst_p99 <= TARGET_P99_MS,
        }
    return out


def _latencies(figures: dict[str, float]) -> str:
    return " | ".join(f"{figures[key]:.2f}" for key in ("p50", "p90", "p99", "max"))


def markdown(document: dict[str, Any]) -> str:
    """The report: the two results tables, the targets and the status checks."""
    m, plan = document["machine"], document["plan"]
    lines = [
        f"castgate over HTTP: {m['cpu']}, {m['cpus']} CPUs, Python {m['python']}, uvicorn "
        f"{m['uvicorn']} ({m['http_parser']}, {m['event_loop']}), {m['wrk']}; {m['date']}",
        f"{plan['duration']:g} s per run, the best of {plan['rounds']} round(s) of each kind, "
        f"{WRK_CONNECTIONS} wrk connections; pinning: {m['pinning']}",
        "",
        *_saturation_table(document["results"]),
        "",
        *_half_rate_table(document["results"]),
        "",
        *_targets_lines(document["targets"]),
        "",
        *_status_lines(document["results"]),
    ]
    return "\n".join(lines)


def _server_name(result: dict[str, Any]) -> str:
    vendor = "bare Starlette" if result["vendor"] == "bare" else f"castgate {result['vendor']}"
    return f"{vendor} | {result['state']}"


def _saturation_table(results: dict[str, dict[str, Any]]) -> list[str]:
    if "share_of_bare" not in results["bare"]:
        return ["saturation: not measured (wrk is missing)"]
    rows = [
        "| server | state | req/s | % of bare | server CPU us/req | % of bare by CPU | busy "
        "| others on its CPU | p50 | p90 | p99 | max |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results.values():
        saturation = result["saturation"]
        redis = saturation.get("redis_cpu_us")
        others = saturation.get("others_on_server_cpu")
        rows.append(
            f"| {_server_name(result)} | {saturation['requests_per_s']:.0f} "
            f"| {result['share_of_bare'] * 100:.0f} % | {saturation['server_cpu_us']:.0f}"
            f"{f' (+{redis:.0f} redis)' if redis is not None else ''} "
            f"| {result['share_of_bare_by_cpu'] * 100:.0f} % "
            f"| {saturation['server_busy'] * 100:.0f} % "
            f"| {'-' if others is None else f'{others * 100:.0f} %'} "
            f"| {_latencies(saturation['latency_ms'])} |"
        )
    return ["Saturation (wrk), latencies in ms:", "", *rows]


def _half_rate_table(results: dict[str, dict[str, Any]]) -> list[str]:
    rows = [
        "| server | state | rate req/s | answered req/s | p50 | p90 | p99 | max "
        "| client lag p99 | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results.values():
        half = result["half"]
        errors = sum(half["errors"].values())
        rows.append(
            f"| {_server_name(result)} | {half['rate_per_s']:.0f} | {half['answered_per_s']:.0f} "
            f"| {_latencies(half['latency_ms'])} | {half['client_lag_ms']['p99']:.2f} "
            f"| {errors} |"
        )
    return [
        "Half of saturation (open loop, from each request's due time), latencies in ms:",
        "",
        *rows,
    ]


def _targets_lines(targets: dict[str, dict[str, Any]]) -> list[str]:
    if not targets:
        return ["targets: not judged (no saturation run: wrk is missing)"]
    lines = ["targets:"]
    for name, target in targets.items():
        value = {k: round(v, 3) for k, v in target.items() if k != "met"}
        lines.append(f"- {'met' if target['met'] else '**missed**'} {name}: {value}")
    return lines


def _status_lines(results: dict[str, dict[str, Any]]) -> list[str]:
    lines = ["statuses (expected -> answered, each body once, then the open-loop run):"]
    for name, result in results.items():
        for phase in ("each_once", "half"):
            check = result[phase] if phase == "each_once" else result[phase]["statuses"]
            verdict = "as expected" if all_as_expected(check) else "**UNEXPECTED**"
            detail = "; ".join(
                f"{label} {entry['expected']} -> {entry['answered']}"
                for label, entry in check.items()
            )
            lines.append(f"- {name}, {phase.replace('_', ' ')}: {verdict} ({detail})")
        saturation = result.get("saturation")
        if saturation is not None:
            verdict = "as expected" if saturation["statuses_as_expected"] else "**UNEXPECTED**"
            lines.append(
                f"- {name}, wrk: {verdict} (statuses {saturation['statuses']}, "
                f"errors {saturation['errors']})"
            )
        logged = result.get("errors_logged")
        if logged is not None and logged["count"]:
            lines.append(
                f"- {name}, server log: **{logged['count']} errors** (e.g. {logged['first']})"
            )
    return lines


def run(plan: Plan, progress: Progress) -> dict[str, Any]:
    """The whole benchmark; the ``--json`` document."""
    if not wrk_available():
        progress("wrk is missing (Debian package wrk): no saturation runs, statuses only")
    with tempfile.TemporaryDirectory(prefix="castgate-http-") as scratch:
        results = measure(plan, progress, Path(scratch))
    compare_with_bare(results)
    return {
        "benchmark": "http_path",
        "machine": machine(),
        "plan": {"duration": plan.duration, "rounds": plan.rounds, "sessions": plan.sessions},
        "results": results,
        "targets": targets_met(results),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 s runs, one round (smoke test)")
    parser.add_argument("--duration", type=float, help="seconds per wrk and open-loop run")
    parser.add_argument(
        "--rounds", type=int, help="rounds of each kind of run (default 3, quick 1)"
    )
    parser.add_argument("--json", type=Path, help="also write every number as JSON here")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    plan = Plan(args.duration or plan.duration, args.rounds or plan.rounds, plan.sessions)
    document = run(plan, lambda message: print(message, file=sys.stderr, flush=True))
    print(markdown(document))
    if args.json is not None:
        args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
