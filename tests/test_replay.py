"""castgate.replay: re-deciding a decision log with another policy."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from castgate.decisionlog import DecisionLog, Redactor, decision_record
from castgate.events import Decision, Effect, Event
from castgate.lang import PolicySet, compile_policies
from castgate.lang.functions import DependencyError, PolicyFunction
from castgate.logs import iso_time
from castgate.plugins import Registry, load_plugins
from castgate.replay import LogError, ProgressBar, Report, Skipped, replay_logs
from castgate.settings import Settings
from castgate.state import LIFETIME_ENDED

#: 2026-11-18T11:06:40Z, a Wednesday.
T0 = 1_795_000_000.0

#: What the logged decisions were made with: everything allowed by one rule.
OLD_RULE = "open"

ONE_PUBLISHER = """
rule one_publisher {
  on publish from nginx_rtmp
  deny "ExistStreamName" if sessions.publishers(stream.name) >= 1
}
rule banned { on publish from nginx_rtmp  deny "banned" if client.ip == "203.0.113.9" }
rule open { on publish, play, update from nginx_rtmp  allow }
"""


def record(
    action: str,
    *,
    at: float = 0.0,
    stream: str = "cam1",
    client: str = "10.0.0.1",
    session: str = "1",
    role: str = "",
    params: Mapping[str, str] | None = None,
    effect: str = "allow",
    rule: str | None = OLD_RULE,
    **extra: Any,
) -> dict[str, Any]:
    """A decision log record as the log format describes it (``extra``: failed, malformed,
    redacted, ...)."""
    event = Event(
        vendor="nginx_rtmp",
        action=action,
        app="live",
        stream=stream,
        params=dict(params or {}),
        client_ip=client,
        session_id=session,
        node="edge1",
        role=role,
        time=T0 + at,
    )
    return {
        "time": iso_time(event.time),
        "vendor": event.vendor,
        "action": action,
        "effect": effect,
        "rule": rule,
        "reason": f"logged {effect}",
        "status": 200 if effect != "deny" else 403,
        "latency_ms": 0.41,
        "policy": "0ld0ld0ld0ld",
        **extra,
        "event": event.to_dict(),
    }


def done(action: str, **fields: Any) -> dict[str, Any]:
    """A notification record: always acknowledged."""
    return record(action, effect="ack", rule=None, **fields)


def write_log(path: Path, records: Iterable[Mapping[str, Any]], tail: str = "") -> Path:
    """One JSON line per record, then ``tail`` verbatim; gzip when ``path`` ends in .gz."""
    text = "".join(json.dumps(each) + "\n" for each in records) + tail
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_plugins()


def compiled(
    directory: Path, source: str, registry: Registry, **functions: PolicyFunction
) -> PolicySet:
    (directory / "new.policy").write_text(source)
    return compile_policies(
        [directory / "new.policy"],
        vendors=registry.vendors,
        functions={**registry.functions, **functions},
    )


def replay(
    tmp_path: Path,
    registry: Registry,
    source: str,
    records: Iterable[Mapping[str, Any]],
    **options: Any,
) -> Report:
    log = write_log(tmp_path / "decisions.log", records)
    return replay_logs([log], compiled(tmp_path, source, registry), registry, Settings(), **options)


def test_changed_decisions_are_grouped_counted_and_exemplified(
    tmp_path: Path, registry: Registry
) -> None:
    intruders = [
        record("publish", at=i, client=f"10.0.0.{i + 1}", session=str(i + 1)) for i in range(5)
    ]
    report = replay(tmp_path, registry, ONE_PUBLISHER, intruders, examples=2)
    assert (report.compared, report.unchanged, report.effect_changes) == (5, 1, 4)
    [group] = report.changes()
    assert (group.key.vendor, group.key.action, group.count) == ("nginx_rtmp", "publish", 4)
    assert (group.key.old_rule, group.key.new_rule) == (OLD_RULE, "one_publisher")
    first = group.examples[0].to_dict()
    assert len(group.examples) == 2
    assert first == {
        "where": f"{tmp_path / 'decisions.log'}:2",
        "time": "2026-11-18T11:06:41.000Z",
        "vendor": "nginx_rtmp",
        "action": "publish",
        "app": "live",
        "stream": "cam1",
        "client_ip": "10.0.0.2",
        "old": {"effect": "allow", "rule": OLD_RULE, "reason": "logged allow"},
        "new": {"effect": "deny", "rule": "one_publisher", "reason": "ExistStreamName"},
        "uncertain": False,
        "redacted": [],
    }


def test_a_second_publisher_is_refused_only_while_the_first_is_admitted_and_live(
    tmp_path: Path, registry: Registry
) -> None:
    log = [
        record("publish", at=0, session="a"),  # admitted
        record("publish", at=1, session="b", client="10.0.0.2"),  # refused: a is live
        done("publish_done", at=2, session="a"),
        record("publish", at=3, session="c", client="10.0.0.3"),  # a is gone: admitted
        record("publish", at=4, stream="cam2", session="d", client="203.0.113.9"),  # banned
        record("publish", at=5, stream="cam2", session="e", client="10.0.0.5"),  # d never was
    ]
    report = replay(tmp_path, registry, ONE_PUBLISHER, log)
    wheres = {example.where.rsplit(":", 1)[1] for g in report.changes() for example in g.examples}
    assert wheres == {"2", "5"}
    assert {g.key.new_rule: g.count for g in report.changes()} == {"one_publisher": 1, "banned": 1}


def test_sessions_expire_by_the_logs_clock(tmp_path: Path, registry: Registry) -> None:
    """A publisher whose updates stop ends after the idle time of the log, not of the wall
    clock: a second publisher 60 s after its last update is refused, one 300 s after is not."""
    quiet_publisher = [
        record("publish", at=0, session="a"),
        record("update", at=30, session="a", role="publisher"),
    ]
    soon = replay(
        tmp_path, registry, ONE_PUBLISHER, [*quiet_publisher, record("publish", at=90, session="b")]
    )
    later = replay(
        tmp_path,
        registry,
        ONE_PUBLISHER,
        [*quiet_publisher, record("publish", at=330, session="b")],
    )
    assert (soon.effect_changes, later.effect_changes) == (1, 0)


def test_a_lifetime_ends_the_session_at_its_first_update_past_it(
    tmp_path: Path, registry: Registry
) -> None:
    source = "rule timed { on publish, update from nginx_rtmp  allow with { lifetime: 1m } }\n"
    log = [
        record("publish", at=0),
        record("update", at=30, role="publisher"),
        record("update", at=90, role="publisher"),
    ]
    report = replay(tmp_path, registry, source, log)
    [ended] = [g for g in report.changes() if g.key.changes_effect]
    assert (ended.key.action, ended.key.new_rule, ended.count) == ("update", "timed", 1)
    assert ended.examples[0].new.reason == LIFETIME_ENDED


def test_the_same_effect_by_another_rule_is_counted_apart(
    tmp_path: Path, registry: Registry
) -> None:
    source = (
        'rule studio { on publish from nginx_rtmp  allow if client.ip == "10.0.0.1" }\n'
        "rule open { on publish from nginx_rtmp  allow }\n"
    )
    log = [record("publish", session="a"), record("publish", client="10.0.0.2", session="b")]
    report = replay(tmp_path, registry, source, log)
    assert (report.effect_changes, report.rule_changes, report.unchanged) == (0, 1, 1)
    [group] = report.changes()
    assert group.to_dict()["kind"] == "rule"
    assert (group.key.old_rule, group.key.new_rule) == (OLD_RULE, "studio")


def test_unusable_lines_are_skipped_counted_and_named(tmp_path: Path, registry: Registry) -> None:
    log = [
        record("publish", session="a"),
        record("publish", session="m", malformed=True),
        record("publish", session="f", effect="deny", rule=None, failed=True),
        {"time": "2026-11-18T11:06:40Z", "effect": "allow"},  # no event
        record("publish", session="v") | {"event": {"vendor": "acme", "action": "publish"}},
    ]
    path = write_log(
        tmp_path / "decisions.log",
        log,
        tail='2026-11-18 11:06:41 INFO started\n{"time": "2026-11-18T11:06:42Z", "vend',
    )
    report = replay_logs([path], compiled(tmp_path, ONE_PUBLISHER, registry), registry, Settings())
    assert report.skipped == {
        Skipped.MALFORMED: 1,
        Skipped.FAILED: 1,
        Skipped.NOT_A_RECORD: 2,
        Skipped.UNKNOWN_VENDOR: 1,
        Skipped.TRUNCATED: 1,
    }
    assert (report.lines, report.records, report.compared, report.unchanged) == (7, 4, 1, 1)
    assert report.problems == [
        f"{path}:4: not a decision record: no event object",
        f"{path}:6: not JSON: '2026-11-18 11:06:41 INFO started'",
        f"{path}:7: last line cut short (a crash?)",
    ]


def test_a_lone_surrogate_the_writer_kept_is_read(tmp_path: Path, registry: Registry) -> None:
    line = json.dumps(record("publish", params={"note": "\ud800"}), ensure_ascii=False) + "\n"
    log = tmp_path / "decisions.log"
    log.write_bytes(line.encode("utf-8", errors="surrogatepass"))
    report = replay_logs([log], compiled(tmp_path, ONE_PUBLISHER, registry), registry, Settings())
    assert (report.records, report.unchanged) == (1, 1)


def test_a_failure_decision_is_not_compared_but_opens_the_session_the_new_policy_admits(
    tmp_path: Path, registry: Registry
) -> None:
    log = [
        record("publish", session="a", effect="deny", rule=None, failed=True),
        record("publish", session="b", client="10.0.0.2"),
    ]
    report = replay(tmp_path, registry, ONE_PUBLISHER, log)
    assert report.skipped[Skipped.FAILED] == 1
    assert [g.key.new_rule for g in report.changes()] == ["one_publisher"]


def test_a_failing_dependency_while_replaying_is_not_compared(
    tmp_path: Path, registry: Registry
) -> None:
    def unreachable(address: str) -> str:
        raise DependencyError("connection refused")

    country = PolicyFunction("country", ("ip",), "string", unreachable, deadline=1.0)
    source = 'rule local { on publish from nginx_rtmp  allow if country(client.ip) == "DE" }\n'
    policy = compiled(tmp_path, source, registry, country=country)
    log = write_log(tmp_path / "decisions.log", [record("publish")])
    report = replay_logs([log], policy, registry, Settings())
    assert report.skipped[Skipped.DEPENDENCY_FAILED] == 1
    assert (report.compared, report.effect_changes) == (0, 0)


def test_a_changed_decision_on_a_redacted_record_is_uncertain(
    tmp_path: Path, registry: Registry
) -> None:
    (tmp_path / "keys.txt").write_text("k1\n")
    source = (
        'let keys = lines("keys.txt")\n'
        "rule keyed { on publish from nginx_rtmp  allow if params.key in keys }\n"
        'rule studio { on publish from nginx_rtmp  allow if client.ip == "10.0.0.1" }\n'
    )
    redacted: dict[str, Any] = {"params": {"key": "<redacted>"}, "redacted": ["params.key"]}
    log = [
        record("publish", session="a", client="10.0.0.9", **redacted),  # now denied: uncertain
        record("publish", session="b", stream="cam2", rule="studio", **redacted),  # unchanged
        record("publish", session="c", stream="cam3", client="10.0.0.9", params={"key": "k2"}),
    ]
    report = replay(tmp_path, registry, source, log)
    assert (report.unchanged, report.effect_changes, report.uncertain(effect=True)) == (1, 2, 1)
    [group] = report.changes()
    assert (group.count, group.uncertain) == (2, 1)
    assert [example.uncertain for example in group.examples] == [True, False]
    assert group.examples[0].to_dict()["redacted"] == ["params.key"]


def test_rotated_files_are_replayed_oldest_first_whatever_their_order_and_compression(
    tmp_path: Path, registry: Registry
) -> None:
    older = write_log(tmp_path / "decisions.log.1.gz", [record("publish", session="a")])
    newer = write_log(tmp_path / "decisions.log", [record("publish", at=60, session="b")])
    policy = compiled(tmp_path, ONE_PUBLISHER, registry)
    report = replay_logs([newer, older], policy, registry, Settings())
    assert report.files == [older, newer]
    [group] = report.changes()
    assert group.examples[0].where == f"{newer}:1"


def test_a_compressed_file_cut_short_counts_as_a_truncated_last_line(
    tmp_path: Path, registry: Registry
) -> None:
    whole = gzip.compress(
        b"".join(json.dumps(record("publish", session=str(i))).encode() + b"\n" for i in range(50))
    )
    cut = tmp_path / "decisions.log.gz"
    cut.write_bytes(whole[: len(whole) - 20])
    report = replay_logs([cut], compiled(tmp_path, ONE_PUBLISHER, registry), registry, Settings())
    assert report.skipped[Skipped.TRUNCATED] == 1
    assert 0 < report.records < 50


def test_only_the_filtered_records_are_compared_but_all_keep_the_sessions(
    tmp_path: Path, registry: Registry
) -> None:
    source = (
        "rule one_viewer {\n"
        '  on play from nginx_rtmp  deny "full" if sessions.viewers(stream.name) >= 1\n'
        "}\n"
        "rule open { on play from nginx_rtmp  allow }\n"
    )
    log = [
        record("play", session="a"),
        done("play_done", at=1, session="a"),
        record("play", at=2, session="b"),
    ]
    report = replay(tmp_path, registry, source, log, actions=["play"], vendors=["nginx_rtmp"])
    assert report.skipped[Skipped.FILTERED] == 1
    assert (report.compared, report.unchanged) == (2, 2)


def test_a_missing_log_is_refused(tmp_path: Path, registry: Registry) -> None:
    policy = compiled(tmp_path, ONE_PUBLISHER, registry)
    with pytest.raises(LogError, match=r"cannot read .*missing\.log: No such file"):
        replay_logs([tmp_path / "missing.log"], policy, registry, Settings())


def test_a_file_without_any_record_is_not_a_decision_log(
    tmp_path: Path, registry: Registry
) -> None:
    access = tmp_path / "access.log"
    access.write_text('127.0.0.1 - - "GET /healthz" 200\n')
    policy = compiled(tmp_path, ONE_PUBLISHER, registry)
    with pytest.raises(LogError, match=r"no decision records in .*access.log: .*:1: not JSON"):
        replay_logs([access], policy, registry, Settings())


def test_the_progress_bar_draws_a_few_times_a_second_and_clears_itself() -> None:
    now = [0.0]
    screen = io.StringIO()
    bar = ProgressBar(screen, clock=lambda: now[0])
    bar.update(10, 100)  # within the first interval: a quick replay shows no bar
    assert screen.getvalue() == ""
    now[0] = 0.3
    bar.update(25_000_000, 100_000_000)
    drawn = screen.getvalue()
    assert drawn.startswith("\rreplaying [########") and " 25%  25/100 MB  ETA 0:01" in drawn
    bar.update(50_000_000, 100_000_000)  # too soon after the last draw
    assert screen.getvalue() == drawn
    bar.close()
    assert screen.getvalue().endswith("\r" + " " * (len(drawn) - 1) + "\r")


def test_what_the_server_writes_is_what_replay_reads(tmp_path: Path, registry: Registry) -> None:
    """The writer (castgate.decisionlog) and the reader agree on the format, redaction included."""
    log = DecisionLog(tmp_path / "written.log", flush=0.0)
    for number, stream in enumerate(["cam1", "cam1", "cam2"], start=1):
        event = Event(
            vendor="nginx_rtmp",
            action="publish",
            app="live",
            stream=stream,
            params={"token": "t0p"},
            client_ip=f"10.0.0.{number}",
            session_id=str(number),
            time=1_795_000_000.0 + number,
        )
        allowed = Decision(Effect.ALLOW, "logged allow", OLD_RULE)
        log.append(
            decision_record(
                event, allowed, status=200, latency_ms=0.2, policy="old", redactor=Redactor()
            )
        )
    log.close()
    policy = compiled(tmp_path, ONE_PUBLISHER, registry)
    report = replay_logs([tmp_path / "written.log"], policy, registry, Settings())
    assert (report.records, report.compared, report.effect_changes) == (3, 3, 1)
    [group] = report.changes()
    assert group.key.new_rule == "one_publisher"
    assert [example.redacted for example in group.examples] == [("params.token",)]
