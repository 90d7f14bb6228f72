"""``kill -9`` during load: the decision log keeps every decision answered before the last flush
interval, and what is on disk is still whole JSON lines."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import httpx

from .castgate_process import castgate_serve

FLUSH_SECONDS = 0.2
#: Answers older than this when the server is killed must be in the log: the flush interval
#: plus generous room for a loaded machine (CI shares its cores) to schedule the writer thread.
SURELY_FLUSHED_SECONDS = FLUSH_SECONDS + 2.0


def test_a_killed_server_leaves_a_whole_log_with_every_flushed_decision(tmp_path: Path) -> None:
    decision_log = tmp_path / "decisions.log"
    env = {"CASTGATE_DECISION_LOG_FLUSH": f"{FLUSH_SECONDS}"}
    answered: list[tuple[str, float]] = []
    stop = threading.Event()

    with castgate_serve(tmp_path, "--decision-log", str(decision_log), env=env) as served:
        hook = f"{served.url}/hooks/nginx_rtmp"

        def load() -> None:
            number = 0
            while not stop.is_set():
                number += 1
                body = (  # nginx-rtmp's own field order
                    "app=live&flashver=&swfurl=&tcurl=rtmp://127.0.0.1/live&pageurl="
                    f"&addr=127.0.0.1&clientid={number}&call=play&name=stream{number}"
                    "&start=-2&duration=0&reset=0"
                )
                headers = {"content-type": "application/x-www-form-urlencoded"}
                try:
                    httpx.post(hook, content=body, headers=headers, timeout=5)
                except httpx.HTTPError:
                    return  # the server is gone
                answered.append((f"stream{number}", time.monotonic()))

        client = threading.Thread(target=load, daemon=True)
        client.start()
        # Count-based, not time-based: a loaded CI machine answers fewer requests per second.
        deadline = time.monotonic() + 120
        while sum(at < time.monotonic() - SURELY_FLUSHED_SECONDS for _, at in answered) < 50:
            assert time.monotonic() < deadline, f"only {len(answered)} requests were answered"
            time.sleep(0.1)
        served.process.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        served.process.wait(timeout=10)
        stop.set()
        client.join(timeout=10)

    data = decision_log.read_bytes()
    assert data.endswith(b"\n"), "the last line was cut in half"
    logged = {json.loads(line)["event"]["stream"] for line in data.decode().splitlines()}
    flushed = [stream for stream, at in answered if at < killed_at - SURELY_FLUSHED_SECONDS]
    assert len(flushed) >= 50
    missing = [stream for stream in flushed if stream not in logged]
    assert missing == [], f"{len(missing)} of {len(flushed)} flushed decisions are not in the log"
