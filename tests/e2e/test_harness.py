"""The harness against real nginx-rtmp, with a stand-in webhook instead of castgate.

These tests pin down what Debian's nginx-rtmp (upstream arut) actually sends and how it treats
answers; the request bodies they record are the ground truth the parser's unit tests read from
``tests/fixtures/nginx_rtmp/recorded/``. Set ``CASTGATE_RECORD_FIXTURES=1`` to rewrite those files
from a fresh run; otherwise a run checks that the saved files still match nginx's field order.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import Processes
from .harness import HookRecorder, HookReply, HookRequest, nginx_binary, play, publish

RECORDED = Path(__file__).parents[1] / "fixtures" / "nginx_rtmp" / "recorded"
RECORD = os.environ.get("CASTGATE_RECORD_FIXTURES") == "1"

SPOOF = "addr=6.6.6.6&call=play&name=evil&app=x&clientid=99"
SESSION = ["app", "flashver", "swfurl", "tcurl", "pageurl", "addr", "clientid"]
CONNECT = ["app", "flashver", "swfurl", "tcurl", "pageurl", "addr", "epoch"]

pytestmark = pytest.mark.nginx


def _save_or_compare(recorded: dict[str, HookRequest], folder: Path, *, get: bool) -> None:
    """Write the recordings (CASTGATE_RECORD_FIXTURES=1) or check the saved ones have the same
    keys in the same order as what nginx sent just now."""
    suffix = ".target" if get else ".body"
    for name, hook in recorded.items():
        path = folder / f"{name}{suffix}"
        data = hook.target.encode("latin-1") if get else hook.body
        if RECORD:
            folder.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            continue
        assert path.is_file(), f"{path} missing: run with CASTGATE_RECORD_FIXTURES=1"
        saved = HookRequest("GET" if get else "POST", path.read_text("latin-1"), {}, b"")
        if not get:
            saved = HookRequest("POST", hook.target, {}, path.read_bytes())
        assert saved.keys() == hook.keys(), f"{path} no longer matches nginx's field order"


def _one(recorder: HookRecorder, call: str, clientid: str) -> HookRequest:
    found = [hook for hook in recorder.calls(call) if hook.first("clientid") == clientid]
    assert found, f"no {call} for clientid {clientid}: {[h.params for h in recorder.calls()]}"
    return found[0]


def test_upstream_bodies_put_session_first_and_client_args_last(
    processes: Processes, hook_recorder: HookRecorder, tmp_path: Path
) -> None:
    nginx = processes.nginx(hook_recorder.url(), record=True)
    logs = tmp_path / "ffmpeg"
    spoofing = publish(nginx.url("cam1", f"key=k1&{SPOOF}"), logs, seconds=4.5)
    # An empty stream name (everything after "?") and a name+args beyond nginx's 255 bytes.
    empty = publish(
        nginx.url("x"), logs, seconds=2.8, extra=["-rtmp_playpath", "?name=evil&key=k1"]
    )
    long_name = publish(nginx.url("n" * 300, "key=k1"), logs, seconds=1.5)
    assert hook_recorder.wait_for("publish", 5, name="cam1"), spoofing.output()
    frames = play(
        nginx.url("cam1", "vk=v1&addr=6.6.6.6&call=publish&name=evil"),
        seconds=2.6,
        extra=["-rtmp_app", "live?ck=c1&addr=6.6.6.6&call=publish"],
    )
    assert frames > 0
    for publisher in (spoofing, empty, long_name):
        assert publisher.ends_within(6)
    assert hook_recorder.wait_for("record_done", 5, name="cam1")
    time.sleep(0.5)  # the last disconnect follows record_done

    publisher_id = hook_recorder.calls("publish", name="cam1")[0].first("clientid")
    viewer_id = hook_recorder.calls("play", name="cam1")[0].first("clientid")
    empty_id = hook_recorder.calls("publish", name="")[0].first("clientid")
    long_publish = [h for h in hook_recorder.calls("publish") if h.first("name").startswith("nn")]
    connects = hook_recorder.calls("connect")
    recorded = {
        "connect": next(h for h in connects if "ck=c1" not in h.params),
        "connect_args": next(h for h in connects if "ck=c1" in h.params),
        "publish": _one(hook_recorder, "publish", publisher_id),
        "play": _one(hook_recorder, "play", viewer_id),
        "update_publish": _one(hook_recorder, "update_publish", publisher_id),
        "update_play": _one(hook_recorder, "update_play", viewer_id),
        "publish_done": _one(hook_recorder, "publish_done", publisher_id),
        "play_done": _one(hook_recorder, "play_done", viewer_id),
        "done_publisher": _one(hook_recorder, "done", publisher_id),
        "done_viewer": _one(hook_recorder, "done", viewer_id),
        "record_done": _one(hook_recorder, "record_done", publisher_id),
        "disconnect": _one(hook_recorder, "disconnect", publisher_id),
        "disconnect_args": _one(hook_recorder, "disconnect", viewer_id),
        # the harness's own port probe: a TCP connection that never spoke RTMP
        "disconnect_no_session": next(
            h for h in hook_recorder.calls("disconnect") if not h.first("tcurl")
        ),
        "publish_empty_name": _one(hook_recorder, "publish", empty_id),
        "update_publish_empty_name": _one(hook_recorder, "update_publish", empty_id),
        "publish_long_name": long_publish[0],
    }

    for name, hook in recorded.items():
        keys = hook.keys()
        assert hook.method == "POST", name
        assert hook.headers.get("Content-Type") == "application/x-www-form-urlencoded"
        assert hook.headers.get("Connection") == "Close"
        expected = CONNECT if name.startswith("connect") else SESSION
        assert keys[: len(expected) + 1] == [*expected, "call"], (name, hook.params)
        # genuine values come first; the client's forged ones only after call=
        assert hook.first("addr") == "127.0.0.1", name
        assert "bytes_in" not in keys, name  # the fork's field, not upstream's

    # The client's own args come last, raw and after the module's fields.
    assert recorded["publish"].params.endswith(f"&call=publish&name=cam1&type=live&key=k1&{SPOOF}")
    assert "&call=play&name=cam1&start=4294965296&duration=0&reset=0&vk=v1&" in (
        recorded["play"].params
    )
    assert recorded["update_publish"].keys()[7:11] == ["call", "time", "timestamp", "name"]
    assert recorded["record_done"].keys()[7:11] == ["call", "recorder", "name", "path"]
    assert recorded["disconnect"].params.endswith("&call=disconnect&app=live")
    assert recorded["connect_args"].params.endswith("&call=connect&ck=c1&addr=6.6.6.6&call=publish")
    assert recorded["disconnect_args"].params.endswith(
        "&call=disconnect&app=live&ck=c1&addr=6.6.6.6&call=publish"
    )
    # Upstream writes name= even when empty on publish but drops it from update: there a
    # client's name= takes the slot. This is why castgate refuses an empty publish name.
    assert "&call=publish&name=&type=live&name=evil&key=k1" in recorded["publish_empty_name"].params
    assert "&timestamp=" in recorded["update_publish_empty_name"].params
    assert recorded["update_publish_empty_name"].params.endswith("&name=evil&key=k1")
    # name + args are read into 256 bytes: the name is cut and the args are lost.
    assert recorded["publish_long_name"].first("name") == "n" * 255
    assert "key=k1" not in recorded["publish_long_name"].params

    _save_or_compare(recorded, RECORDED / "post", get=False)
    if RECORD:
        version = subprocess.run(
            [nginx_binary() or "nginx", "-v"], capture_output=True, text=True, check=False
        ).stderr.strip()
        package = subprocess.run(
            ["dpkg-query", "-W", "-f=${Package} ${Version}", "libnginx-mod-rtmp"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        meta = {
            "nginx": version,
            "module": package or "unknown",
            "headers": recorded["publish"].headers,
            "publish_url": f"rtmp://127.0.0.1:PORT/live/cam1?key=k1&{SPOOF}",
            "play_app": "live?ck=c1&addr=6.6.6.6&call=publish",
            "play_url": "rtmp://127.0.0.1:PORT/live/cam1?vk=v1&addr=6.6.6.6&call=publish&name=evil",
            "empty_name_playpath": "?name=evil&key=k1",
            "long_name_url": "rtmp://127.0.0.1:PORT/live/" + "n" * 300 + "?key=k1",
        }
        (RECORDED / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")


def test_get_method_appends_parameters_after_the_operator_query(
    processes: Processes, hook_recorder: HookRecorder, tmp_path: Path
) -> None:
    nginx = processes.nginx(hook_recorder.url("/hooks/nginx_rtmp?node=edge1"), notify_method="get")
    with_args = publish(nginx.url("cam2", f"key=k1&{SPOOF}"), tmp_path, seconds=2.6)
    assert with_args.ends_within(6)
    assert hook_recorder.wait_for("disconnect", 4)

    publisher_id = hook_recorder.calls("publish")[0].first("clientid")
    recorded = {
        "connect": next(h for h in hook_recorder.calls("connect") if h.first("flashver")),
        **{
            call: _one(hook_recorder, call, publisher_id)
            for call in ("publish", "update_publish", "publish_done", "done", "disconnect")
        },
    }
    for call, hook in recorded.items():
        assert hook.method == "GET", call
        assert hook.body == b"", call
        assert hook.headers.get("Content-Length") == "0"
        # the URL's own query stays first; nginx-rtmp adds a second "?"
        assert hook.target.startswith("/hooks/nginx_rtmp?node=edge1?app=live&flashver="), call
    assert recorded["publish"].target.endswith(f"&call=publish&name=cam2&type=live&key=k1&{SPOOF}")
    _save_or_compare(recorded, RECORDED / "get", get=True)


def test_nginx_honours_deny_rename_and_update_answers(processes: Processes, tmp_path: Path) -> None:
    too_long = "r" * 300

    def answer(hook: HookRequest) -> HookReply:
        name = hook.first("name")
        if hook.call == "publish" and name == "denied":
            return HookReply(403)
        if hook.call == "publish" and name == "secret1":
            return HookReply(302, (("Location", "public1"),))
        if hook.call == "publish" and name == "longloc":
            return HookReply(302, (("Location", too_long),))
        if hook.call == "update_publish" and name == "cutme":
            return HookReply(403)
        return HookReply(200)

    recorder = HookRecorder(answer).start()
    try:
        nginx = processes.nginx(recorder.url())
        started = time.monotonic()
        denied = publish(nginx.url("denied"), tmp_path, seconds=20)
        renamed = publish(nginx.url("secret1"), tmp_path, seconds=20)
        cut = publish(nginx.url("cutme"), tmp_path, seconds=20)
        long_location = publish(nginx.url("longloc"), tmp_path, seconds=20)
        try:
            assert denied.ends_within(4), "a 403 on publish must drop the publisher"
            assert cut.alive(), "cutme must run until its first update"
            assert play(nginx.url("public1"), seconds=1.5) > 0, "302 Location renames"
            assert cut.ends_within(8), "a 403 on update must end the session"
            assert time.monotonic() - started >= 1.8  # not before the first update (2 s)
            assert renamed.alive() and long_location.alive()
            redirects = nginx.log_lines("publish redirect to")
            assert any("'public1'" in line for line in redirects)
            # nginx-rtmp keeps 254 bytes of a Location and silently drops the rest.
            assert any(f"'{'r' * 254}'" in line for line in redirects), redirects
            assert not any(f"'{'r' * 255}" in line for line in redirects)
        finally:
            for publisher in (denied, renamed, cut, long_location):
                publisher.stop()
    finally:
        recorder.stop()
