"""Policy reload while serving: on file change and SIGHUP, refused when broken, sessions
re-checked afterwards."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from served import served

from castgate.app import create_app
from castgate.settings import Settings

ALLOW_K1 = 'rule keyed { on publish, update from nginx_rtmp  allow if params.key == "k1" }\n'
ALLOW_K2 = 'rule keyed { on publish, update from nginx_rtmp  allow if params.key == "k2" }\n'


def body(call: str, key: str, clientid: int = 1) -> str:
    session = (
        f"app=live&flashver=&swfurl=&tcurl=rtmp://127.0.0.1/live&pageurl="
        f"&addr=127.0.0.1&clientid={clientid}&call={call}"
    )
    if call == "publish":
        return f"{session}&name=cam{clientid}&type=live&key={key}"
    return f"{session}&time=2&timestamp=2000&name=cam{clientid}&key={key}"


def post(url: str, text: str) -> int:
    headers = {"content-type": "application/x-www-form-urlencoded"}
    return httpx.post(url, content=text, headers=headers, timeout=5).status_code


def eventually(check: Callable[[], bool], seconds: float = 8.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    folder = tmp_path / "policies"
    folder.mkdir()
    path = folder / "keys.policy"
    path.write_text(ALLOW_K1)
    return path


@pytest.fixture
def server(policy_file: Path) -> Iterator[str]:
    settings = Settings(policies=(policy_file.parent,), log_format="json")
    with served(create_app(settings)) as base_url:
        yield base_url


def test_a_changed_policy_file_is_reloaded(server: str, policy_file: Path) -> None:
    hook = f"{server}/hooks/nginx_rtmp"
    assert post(hook, body("publish", "k2", 1)) == 403
    policy_file.write_text(ALLOW_K2)
    assert eventually(lambda: post(hook, body("publish", "k2", 2)) == 200)
    assert post(hook, body("publish", "k1", 3)) == 403


def test_a_broken_policy_is_refused_and_the_last_good_one_keeps_serving(
    server: str, policy_file: Path
) -> None:
    hook = f"{server}/hooks/nginx_rtmp"
    version = httpx.get(f"{server}/readyz").json()["policy"]["version"]
    policy_file.write_text("rule keyed { on publsh  allow }\n")

    def refused() -> bool:
        return "E204" in httpx.get(f"{server}/readyz").json()["reload_error"]

    assert eventually(refused)
    assert httpx.get(f"{server}/readyz").json()["policy"]["version"] == version
    assert post(hook, body("publish", "k1", 1)) == 200
    policy_file.write_text(ALLOW_K2)
    assert eventually(lambda: httpx.get(f"{server}/readyz").json()["reload_error"] == "")


def test_live_sessions_the_new_policy_denies_end_at_their_next_update(
    server: str, policy_file: Path
) -> None:
    hook = f"{server}/hooks/nginx_rtmp"
    assert post(hook, body("publish", "k1", 7)) == 200
    assert post(hook, body("update_publish", "k1", 7)) == 200
    policy_file.write_text(ALLOW_K2 + "rule others { on update  allow }\n")
    # the reloaded policy would let any update through, but the session it now denies is ended
    assert eventually(lambda: post(hook, body("publish", "k2", 8)) == 200)
    assert eventually(lambda: post(hook, body("update_publish", "k1", 7)) == 403)


def test_sighup_reloads(tmp_path: Path, policy_file: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path / "serve.log"
    castgate = str(Path(sys.executable).parent / "castgate")
    process = subprocess.Popen(
        [
            castgate,
            "serve",
            "--policies",
            str(policy_file.parent),
            "--port",
            str(port),
            "--log-format",
            "json",
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        assert eventually(lambda: _up(base), 20), log.read_text()
        process.send_signal(signal.SIGHUP)
        assert eventually(lambda: "policy reloaded" in log.read_text()), log.read_text()
        assert process.poll() is None
        assert httpx.get(f"{base}/healthz").status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=10)


def _up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
