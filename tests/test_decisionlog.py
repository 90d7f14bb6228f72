"""The decision log: record format and redaction, buffered and immediate writes, rotation by size
and by an outside logrotate, several writers on one file, and what a failing disk loses."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from castgate.decisionlog import (
    REDACTED,
    DecisionLog,
    Redactor,
    decision_record,
    rotated_logs,
)
from castgate.events import Decision, Effect, Event, RuleTrace


def event(**changes: Any) -> Event:
    fields: dict[str, Any] = {
        "vendor": "nginx_rtmp",
        "action": "publish",
        "app": "live",
        "stream": "cam1",
        "params": {"token": "t0ps3cret", "user": "ann", "tier": "gold"},
        "client_ip": "192.0.2.1",
        "time": 1_790_000_000.25,
        "raw": {"name": "cam1", "PubParam": {"streamKey": "abc", "region": "eu"}},
    }
    fields.update(changes)
    return Event(**fields)


ALLOWED = Decision(Effect.ALLOW, "allowed by rule keyed", "keyed", {"rename": "cam1_hd"})


def record(decision: Decision = ALLOWED, **options: Any) -> dict[str, Any]:
    return decision_record(
        event(),
        decision,
        status=200,
        latency_ms=0.41234,
        policy="abc123def456",
        redactor=options.pop("redactor", Redactor()),
        **options,
    )


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_record_holds_the_decision_the_event_and_the_policy_version() -> None:
    entry = record()
    assert list(entry)[:9] == [
        "time",
        "vendor",
        "action",
        "effect",
        "rule",
        "reason",
        "status",
        "latency_ms",
        "policy",
    ]
    assert entry["time"] == "2026-09-21T14:13:20.250Z"
    assert (entry["effect"], entry["rule"], entry["status"]) == ("allow", "keyed", 200)
    assert entry["latency_ms"] == 0.412
    assert entry["policy"] == "abc123def456"
    assert entry["event"]["client"] == {"ip": "192.0.2.1", "port": None}
    assert Event.from_dict(entry["event"]).stream == "cam1"
    assert "failed" not in entry and "flagged" not in entry and "malformed" not in entry


def test_failure_flag_malformed_and_trace_are_recorded_when_present() -> None:
    decision = Decision(
        Effect.ACK,
        "state down",
        failed=True,
        flagged=True,
        trace=(RuleTrace("r", "deny", True),),
    )
    entry = record(decision, malformed=True)
    assert entry["failed"] is entry["flagged"] is entry["malformed"] is True
    assert entry["trace"] == [{"rule": "r", "effect": "deny", "matched": True}]


def test_secret_looking_fields_are_redacted_in_params_and_nested_raw_data() -> None:
    entry = record()
    assert entry["event"]["params"] == {"token": REDACTED, "user": "ann", "tier": "gold"}
    assert entry["event"]["raw"]["PubParam"] == {"streamKey": REDACTED, "region": "eu"}
    assert entry["redacted"] == ["params.token", "raw.PubParam.streamKey"]
    assert "t0ps3cret" not in json.dumps(entry)


def test_the_operator_can_redact_named_fields_such_as_the_stream_name() -> None:
    entry = record(redactor=Redactor({"stream", "params.user", "raw.name"}))
    assert entry["event"]["stream"] == REDACTED
    assert entry["event"]["params"]["user"] == REDACTED
    assert entry["event"]["raw"]["name"] == REDACTED
    assert set(entry["redacted"]) >= {"stream", "params.user", "raw.name"}
    assert entry["event"]["app"] == "live"


def test_buffered_records_reach_the_file_on_flush_and_close(tmp_path: Path) -> None:
    path = tmp_path / "decisions.log"
    log = DecisionLog(path, flush=60.0)
    log.start()
    log.append(record())
    assert path.read_bytes() == b""  # buffered: the writer wakes every 60 s
    log.flush()
    assert len(lines(path)) == 1
    log.append(record())
    log.close()
    assert len(lines(path)) == 2


def test_flush_zero_writes_each_record_as_it_comes(tmp_path: Path) -> None:
    path = tmp_path / "decisions.log"
    log = DecisionLog(path, flush=0.0)
    log.append(record())
    assert len(lines(path)) == 1
    log.close()


def test_the_background_writer_flushes_on_its_interval(tmp_path: Path) -> None:
    path = tmp_path / "decisions.log"
    log = DecisionLog(path, flush=0.05, fsync=True)
    log.start()
    log.append(record())
    written = threading.Event()

    def poll() -> None:
        for _ in range(200):
            if path.read_bytes():
                written.set()
                return
            threading.Event().wait(0.02)

    poll()
    log.close()
    assert written.is_set()


def test_lone_surrogates_in_vendor_data_do_not_lose_the_record(tmp_path: Path) -> None:
    path = tmp_path / "decisions.log"
    log = DecisionLog(path, flush=0.0)
    entry = decision_record(
        event(stream="bad\udcff"),
        ALLOWED,
        status=200,
        latency_ms=1,
        policy="p",
        redactor=Redactor(),
    )
    log.append(entry)
    log.close()
    assert path.read_bytes().count(b"\n") == 1


def test_size_rotation_keeps_whole_lines_and_the_newest_files(tmp_path: Path) -> None:
    path = tmp_path / "decisions.log"
    log = DecisionLog(path, flush=0.0, max_bytes=2000, keep=3)
    for _ in range(60):
        log.append(record())
    log.close()
    rotated = rotated_logs(path)
    assert len(rotated) == 3
    assert rotated == sorted(rotated)
    for each in [*rotated, path]:
        text = each.read_text()
        assert text == "" or text.endswith("\n")
        assert all(json.loads(line)["policy"] == "abc123def456" for line in text.splitlines())
    assert all(each.stat().st_size >= 2000 for each in rotated)


def test_after_an_outside_rotation_the_log_reopens_its_path(tmp_path: Path) -> None:
    path = tmp_path / "decisions.log"
    log = DecisionLog(path, flush=0.0)
    log.append(record())
    path.rename(tmp_path / "decisions.log.1")  # what logrotate does (without copytruncate)
    log.append(record())
    assert len(lines(path)) == 1
    path.unlink()
    log.append(record())
    log.close()
    assert len(lines(path)) == 1
    assert len(lines(tmp_path / "decisions.log.1")) == 1


def test_several_writers_share_one_file_without_mixing_lines(tmp_path: Path) -> None:
    path = tmp_path / "decisions.log"
    logs = [DecisionLog(path, flush=0.0, max_bytes=50_000, keep=100) for _ in range(4)]

    def write(log: DecisionLog) -> None:
        for _ in range(300):
            log.append(record())

    threads = [threading.Thread(target=write, args=(log,)) for log in logs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for log in logs:
        log.close()
    total = 0
    for each in [*rotated_logs(path), path]:
        total += len(lines(each))  # every line parses: none was split or interleaved
    assert total == 1200


def test_records_a_write_could_not_store_are_counted_as_lost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full to make writes fail")
    lost: list[int] = []
    log = DecisionLog(Path("/dev/full"), flush=60.0, lost=lost.append)
    log.append(record())
    log.append(record())
    log.flush()
    assert lost == [2]
    assert "2 records lost" in caplog.text
    log.close()


def test_after_a_failed_write_the_next_batch_starts_on_a_new_line(tmp_path: Path) -> None:
    path = tmp_path / "decisions.log"
    log = DecisionLog(path, flush=60.0)
    log.append(record())
    log.flush()
    with path.open("ab") as torn:
        torn.write(b'{"time": "cut sho')  # what a write cut short by a full disk leaves
    log._torn = True  # as a failed write leaves it: reproducing one needs a full disk
    log.append(record())
    log.close()
    first, cut, last = path.read_text().splitlines()
    assert json.loads(first)["policy"] == json.loads(last)["policy"] == "abc123def456"
    assert cut == '{"time": "cut sho'


def test_a_log_that_cannot_be_reopened_keeps_writing_to_the_file_it_has(tmp_path: Path) -> None:
    path = tmp_path / "decisions.log"
    log = DecisionLog(path, flush=0.0)
    log.append(record())
    path.rename(tmp_path / "moved.log")
    path.mkdir()  # the path cannot be opened as a file (the tests run as root: no chmod)
    lost: list[int] = []
    log.on_lost = lost.append
    log.append(record())  # the reopen fails: counted lost, and the old file stays open
    path.rmdir()
    log.append(record())
    log.close()
    assert lost == [1]
    assert len(lines(tmp_path / "moved.log")) == 1
    assert len(lines(path)) == 1


def test_the_rotation_lock_is_hidden_from_a_glob_for_the_log(tmp_path: Path) -> None:
    path = tmp_path / "decisions.log"
    log = DecisionLog(path, flush=0.0, max_bytes=500, keep=5)
    for _ in range(5):
        log.append(record())
    log.close()
    assert (tmp_path / ".decisions.log.lock").exists()
    assert all(not each.name.endswith(".lock") for each in tmp_path.glob("decisions.log*"))


def test_a_redacted_value_is_removed_wherever_else_it_appears() -> None:
    """nginx-rtmp repeats the stream's query in ``tcurl`` and ``args``; Nimble and Livepeer
    put keys in URLs and session ids."""
    leaky = event(
        stream="k3y-as-stream",
        session_id="k3y-as-stream-17",
        params={"sig": "s1gnature", "user": "ann"},
        raw={
            "tcurl": "rtmp://edge/live?sig=s1gnature&user=ann",
            "url": "rtmp://edge/live/k3y-as-stream?expires=9",
            "nested": [{"note": "sig was s1gnature"}],
        },
    )
    data, redacted = Redactor({"stream"}).event(leaky)
    text = json.dumps(data)
    assert "s1gnature" not in text and "k3y-as-stream" not in text
    assert data["raw"]["tcurl"] == f"rtmp://edge/live?sig={REDACTED}&user=ann"
    assert data["session_id"] == f"{REDACTED}-17"
    assert redacted == ["stream", "params.sig"]


@pytest.mark.parametrize(
    ("fields", "leaky"),
    [
        ((), event(stream="cam?token=t0ken1&x=1", params={"token": "t0ken1"})),
        (("stream",), event(stream="k3y-as-stream", session_id="k3y-as-stream-17")),
        (("app", "params.user"), event(app="tenant-9", params={"user": "tenant-9-ann"})),
        ((), event(stream="s1gnature-cam", raw={"nested": [{"sig": "s1gnature"}]})),
        (("raw.who",), event(client_ip="10.1.2.3", raw={"who": "10.1.2.3"})),
        ((), event(stream="cam1", params={"key": "abc"})),
    ],
)
def test_the_process_log_summary_shows_what_the_redacted_record_shows(
    fields: tuple[str, ...], leaky: Event
) -> None:
    """The process log's decision line is built without redacting the whole event; it must
    still hide exactly what the decision log's record hides."""
    redactor = Redactor(fields)
    data, _ = redactor.event(leaky)
    assert redactor.summary(leaky) == {
        "app": data["app"],
        "stream": data["stream"],
        "client_ip": data["client"]["ip"],
        "params": sorted(data["params"]),
    }


def test_secret_named_query_arguments_are_redacted_in_any_text() -> None:
    data, _ = Redactor().event(
        event(params={}, raw={"args": "token=abc123&name=cam1", "page": "https://x/?apiKey=zz99"})
    )
    assert data["raw"] == {
        "args": f"token={REDACTED}&name=cam1",
        "page": f"https://x/?apiKey={REDACTED}",
    }
