"""castgate deciding for a real nginx-rtmp: ffmpeg publishes and plays, nginx asks castgate.

What castgate decided is read from its decision log (one JSON line per answered hook on stderr).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from .conftest import Processes
from .harness import Castgate, Nginx, play, publish, publishing

pytestmark = pytest.mark.nginx

KEYS = "k1\nk2\n"

POLICY = """\
let studio = [127.0.0.0/8, ::1]
let keys = lines("keys.txt")

rule connects {
  on connect
  allow if client.ip in studio
}
# These two deny only if a client's forged addr=/name= were believed.
rule forged_addr {
  on publish, play
  deny "forged addr" if client.ip in [6.6.6.6/32]
}
rule forged_name {
  on publish
  deny "forged name" if stream.name == "evil"
}
rule rename_secret {
  on publish from nginx_rtmp
  allow with { rename: "public1" } if stream.name == "secret1" and params.key in keys
}
rule keyed {
  on publish, update
  allow if params.key in keys
}
# Allows only if a client's forged name=vip were believed.
rule vip {
  on publish
  allow if stream.name == "vip"
}
rule viewers {
  on play
  allow
}
rule viewing {
  on update
  allow if role == "viewer"
}
"""


def _window_policy(start: datetime, end: datetime) -> str:
    def stamp(moment: datetime) -> str:
        return moment.strftime("%Y-%m-%dT%H:%M:%S")

    return f"""\
let keys = lines("keys.txt")

rule window {{
  on publish, update
  allow if params.key in keys and now in dates {stamp(start)}..{stamp(end)} "UTC"
}}
rule viewers {{
  on play
  allow
}}
"""


def _policies(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "e2e.policy").write_text(text)
    (folder / "keys.txt").write_text(KEYS)
    return folder


@dataclass
class Stack:
    castgate: Castgate
    nginx: Nginx
    logs: Path


@pytest.fixture(scope="module")
def stack(module_processes: Processes, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("stack")
    castgate = module_processes.castgate(_policies(root / "policies", POLICY))
    nginx = module_processes.nginx(castgate.hook_url)
    yield Stack(castgate, nginx, root / "ffmpeg")


def _decision(stack: Stack, timeout: float = 5.0, **match: object) -> dict[str, object]:
    entry = stack.castgate.wait_for_decision(timeout, vendor="nginx_rtmp", **match)
    assert entry is not None, (match, stack.castgate.decisions()[-20:])
    return entry


def _rule_is(entry: dict[str, object], name: str) -> bool:
    # The log names the rule, possibly qualified by its file ("e2e.policy:keyed").
    rule = str(entry["rule"])
    return rule == name or rule.endswith(f":{name}")


def test_allowed_key_publishes_plays_and_every_event_is_logged(stack: Stack) -> None:
    with publishing(stack.nginx.url("cam1", "key=k1"), stack.logs) as publisher:
        assert publisher.stays_up(1.0), publisher.output()
        assert play(stack.nginx.url("cam1"), seconds=2.5) > 0
        assert publisher.alive()
    publish_entry = _decision(stack, action="publish", stream="cam1")
    assert (publish_entry["effect"], publish_entry["status"]) == ("allow", 200)
    assert _rule_is(publish_entry, "keyed")
    assert _rule_is(_decision(stack, action="play", stream="cam1"), "viewers")
    # the publish ran > 3 s with updates every 2 s
    assert _decision(stack, action="update", stream="cam1")["effect"] == "allow"
    assert _decision(stack, action="connect")["effect"] == "allow"
    for action in ("publish_done", "play_done", "done"):
        entry = _decision(stack, action=action, stream="cam1")
        assert (entry["effect"], entry["status"]) == ("ack", 200), entry
    assert _decision(stack, action="disconnect")["effect"] == "ack"


def test_denied_key_is_refused(stack: Stack) -> None:
    publisher = publish(stack.nginx.url("cam2", "key=wrong"), stack.logs)
    try:
        assert publisher.ends_within(5), "nginx must drop a refused publisher"
    finally:
        publisher.stop()
    entry = _decision(stack, action="publish", stream="cam2")
    assert (entry["effect"], entry["status"]) == ("deny", 403)
    # a refused publish gets no done events
    time.sleep(0.5)
    assert not [
        e
        for e in stack.castgate.decisions()
        if e.get("stream") == "cam2" and e["action"] in ("publish_done", "done")
    ]


def test_renamed_stream_plays_under_the_new_name(stack: Stack) -> None:
    with publishing(stack.nginx.url("secret1", "key=k1"), stack.logs) as publisher:
        assert publisher.stays_up(1.0), publisher.output()
        assert play(stack.nginx.url("public1"), seconds=1.5) > 0
        assert publisher.alive()
    entry = _decision(stack, action="publish", stream="secret1")
    assert (entry["effect"], entry["status"]) == ("allow", 302)
    assert _rule_is(entry, "rename_secret")
    assert any(
        "publish redirect to 'public1'" in line for line in stack.nginx.log_lines("redirect")
    )


def test_forged_addr_and_name_do_not_change_the_decision(stack: Stack) -> None:
    forged = "addr=6.6.6.6&call=play&name=evil&app=x&clientid=99"
    allowed = publish(stack.nginx.url("spoofcam", f"key=k1&{forged}"), stack.logs)
    # would be allowed by rule vip if name=vip were believed
    refused = publish(stack.nginx.url("nokey", "name=vip&addr=127.0.0.1"), stack.logs)
    try:
        # Waited for before anything is stopped: on a loaded machine ffmpeg may still be starting
        # when the refused publish has ended, and stopping it then means no publish is asked.
        entry = _decision(stack, timeout=20, action="publish", stream="spoofcam")
        assert refused.ends_within(5)
        assert allowed.alive(), allowed.output()
    finally:
        allowed.stop()
        refused.stop()
    assert entry["effect"] == "allow"
    assert _rule_is(entry, "keyed")
    assert entry["client_ip"] == "127.0.0.1"
    assert _decision(stack, action="publish", stream="nokey")["effect"] == "deny"


def test_get_method_and_node_in_the_hook_url(stack: Stack, processes: Processes) -> None:
    nginx = processes.nginx(
        f"{stack.castgate.hook_url}?node=edge1", notify_method="get", server_hooks=False
    )
    with publishing(nginx.url("getcam", "key=k1&name=evil"), stack.logs) as publisher:
        assert publisher.stays_up(1.5), publisher.output()
    entry = _decision(stack, action="publish", stream="getcam")
    assert entry["effect"] == "allow"


def test_fork_route_refuses_upstream_bodies(stack: Stack, processes: Processes) -> None:
    # A route that does not match the module must fail closed, never read forged fields.
    nginx = processes.nginx(f"{stack.castgate.hook_url}/fork", server_hooks=False)
    publisher = publish(nginx.url("forkcam", "key=k1"), stack.logs)
    try:
        assert publisher.ends_within(5)
    finally:
        publisher.stop()
    entry = _decision(stack, action="publish", effect="deny")
    assert "/hooks/nginx_rtmp" in str(entry["reason"])


def test_a_closing_time_window_cuts_the_stream_at_the_next_update(
    processes: Processes, tmp_path: Path
) -> None:
    started = datetime.now(UTC)
    # Whole seconds, as the policy writes it: the window closes at exactly this moment.
    end = (started + timedelta(seconds=8)).replace(microsecond=0)
    castgate = processes.castgate(
        _policies(tmp_path / "policies", _window_policy(started - timedelta(minutes=1), end))
    )
    nginx = processes.nginx(castgate.hook_url, server_hooks=False)
    left = (end - datetime.now(UTC)).total_seconds()
    assert left > 4, f"castgate took too long to start; only {left:.1f}s of the window left"
    with publishing(nginx.url("windowed", "key=k1"), tmp_path) as publisher:
        # open window: the publish and the updates before the end are allowed
        assert publisher.stays_up(left - 1.0), publisher.output()
        # the first update after the end (period 2 s) is denied and nginx drops the publisher
        assert publisher.ends_within(5.0), "the publish outlived its window"
    assert datetime.now(UTC) >= end
    stack = Stack(castgate, nginx, tmp_path)
    assert _decision(stack, action="publish", stream="windowed")["effect"] == "allow"
    assert _decision(stack, action="update", stream="windowed", effect="allow")
    denied = _decision(stack, action="update", stream="windowed", effect="deny")
    assert denied["status"] == 403
    assert _decision(stack, action="publish_done", stream="windowed")["effect"] == "ack"


SESSION_POLICY = """\
let keys = lines("keys.txt")

rule one_publisher_per_key {
  on publish
  deny "ExistStreamName" if sessions.key_publishers(params.key) >= 1
}

rule short_lived {
  on publish app live
  allow with { lifetime: 3s } if params.key == "k2"
}

rule keyed {
  on publish, update
  allow if params.key in keys
}

rule viewers {
  on play, update
  allow if action == "play" or role == "viewer"
}
"""


def test_a_second_publisher_to_a_live_key_is_refused(processes: Processes, tmp_path: Path) -> None:
    castgate = processes.castgate(_policies(tmp_path / "policies", SESSION_POLICY))
    nginx = processes.nginx(castgate.hook_url, server_hooks=False)
    stack = Stack(castgate, nginx, tmp_path)
    with publishing(nginx.url("first", "key=k1"), tmp_path) as first:
        assert first.stays_up(1.0), first.output()
        second = publish(nginx.url("second", "key=k1"), tmp_path)
        try:
            assert second.ends_within(5), "a second publisher with a live key must be dropped"
        finally:
            second.stop()
        assert first.alive()
    refused = _decision(stack, action="publish", stream="second")
    assert (refused["effect"], refused["reason"]) == ("deny", "ExistStreamName")
    # once the first one's done event arrived, the key is free again
    _decision(stack, action="publish_done", stream="first")
    with publishing(nginx.url("third", "key=k1"), tmp_path) as third:
        assert third.stays_up(1.0), third.output()
    assert _decision(stack, action="publish", stream="third")["effect"] == "allow"


def test_a_session_past_its_lifetime_is_cut_off_at_the_next_update(
    processes: Processes, tmp_path: Path
) -> None:
    castgate = processes.castgate(_policies(tmp_path / "policies", SESSION_POLICY))
    nginx = processes.nginx(castgate.hook_url, server_hooks=False)
    stack = Stack(castgate, nginx, tmp_path)
    with publishing(nginx.url("limited", "key=k2"), tmp_path) as publisher:
        # lifetime 3 s, updates every 2 s: the update at ~4 s is the first past it
        assert publisher.stays_up(2.5), publisher.output()
        assert publisher.ends_within(5.0), "the publish outlived its lifetime"
    assert _rule_is(_decision(stack, action="publish", stream="limited"), "short_lived")
    ended = _decision(stack, action="update", stream="limited", effect="deny")
    assert ended["reason"] == "the session's lifetime has ended"
