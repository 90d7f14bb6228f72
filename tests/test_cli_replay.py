"""``castgate replay``: re-decide a decision log with other policies, report, exit like diff."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_replay import OLD_RULE, ONE_PUBLISHER, record, write_log

from castgate.cli import main
from castgate.replay import ProgressBar

#: Two encoders on one stream: the new policy refuses the second.
TWO_PUBLISHERS = [
    record("publish", session="a"),
    record("publish", at=1, session="b", client="10.0.0.2"),
]


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    directory = tmp_path / "policies"
    directory.mkdir()
    (directory / "ingest.policy").write_text(ONE_PUBLISHER)
    return directory


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["replay", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_changed_effects_exit_1_with_counts_then_groups_then_examples(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, policies: Path
) -> None:
    log = write_log(tmp_path / "decisions.log", TWO_PUBLISHERS)
    code, out, _ = run(capsys, str(log), "--policies", str(policies))
    assert code == 1
    assert out.startswith(f"2 records in {log}, decided again with policy ")
    counts = out.index("        1 effect changes")
    groups = out.index(f"        1  nginx_rtmp publish  allow -> deny  {OLD_RULE} -> one_publisher")
    example = out.index(f"  {log}:2  2026-11-18T11:06:41.000Z  live/cam1  client 10.0.0.2")
    assert counts < groups < example
    assert "    was allow open: logged allow\n    now deny  one_publisher: ExistStreamName" in out


def test_only_another_rule_deciding_exits_0(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, policies: Path
) -> None:
    (policies / "ingest.policy").write_text("rule any_publisher { on publish  allow }\n")
    log = write_log(tmp_path / "decisions.log", TWO_PUBLISHERS)
    code, out, _ = run(capsys, str(log), "--policies", str(policies))
    assert code == 0
    assert "same effect, another rule decides:\n          2  nginx_rtmp publish  allow" in out


def test_json_for_machines(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, policies: Path
) -> None:
    intruders = [record("publish", at=i, session=str(i)) for i in range(4)]
    log = write_log(tmp_path / "decisions.log", intruders, tail="{not json\n")
    code, out, _ = run(capsys, str(log), "--policies", str(policies), "--json", "--limit", "1")
    report = json.loads(out)
    assert code == 1
    assert (report["records"], report["compared"], report["unchanged"]) == (4, 4, 1)
    assert (report["effect_changes"], report["rule_changes"]) == (3, 0)
    assert report["unreadable"] == {"not_a_record": 1, "truncated": 0}
    assert report["problems"] == [f"{log}:5: not JSON: '{{not json'"]
    assert report["logged_policies"] == {"0ld0ld0ld0ld": 4}
    [change] = report["changes"]
    assert {key: change[key] for key in ("kind", "vendor", "action", "count", "uncertain")} == {
        "kind": "effect",
        "vendor": "nginx_rtmp",
        "action": "publish",
        "count": 3,
        "uncertain": 0,
    }
    assert (change["old"], change["new"]) == (
        {"effect": "allow", "rule": OLD_RULE},
        {"effect": "deny", "rule": "one_publisher"},
    )
    [example] = change["examples"]
    assert example["where"] == f"{log}:2" and example["new"]["reason"] == "ExistStreamName"


def test_uncertain_changes_are_marked_and_still_exit_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, policies: Path
) -> None:
    (policies / "keys.txt").write_text("k1\n")
    (policies / "ingest.policy").write_text(
        'let keys = lines("keys.txt")\nrule keyed { on publish  allow if params.key in keys }\n'
    )
    redacted = record("publish", params={"key": "<redacted>"}, redacted=["params.key", "raw.key"])
    log = write_log(tmp_path / "decisions.log", [redacted])
    code, out, _ = run(capsys, str(log), "--policies", str(policies))
    assert code == 1
    assert "1 effect changes (1 uncertain: the log redacted values the policy may read)" in out
    assert "client 10.0.0.1  uncertain: params.key, raw.key redacted" in out


def test_rotated_and_compressed_logs_in_any_order(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, policies: Path
) -> None:
    older = write_log(tmp_path / "decisions.log.1.gz", TWO_PUBLISHERS[:1])
    newer = write_log(tmp_path / "decisions.log", TWO_PUBLISHERS[1:])
    code, out, _ = run(capsys, str(newer), str(older), "--policies", str(policies))
    assert code == 1
    assert out.startswith(f"2 records in {older}, {newer}, decided again with policy")


def test_vendor_and_action_choose_what_is_compared(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, policies: Path
) -> None:
    log = write_log(tmp_path / "decisions.log", TWO_PUBLISHERS)
    code, out, _ = run(capsys, str(log), "--policies", str(policies), "--action", "play")
    assert code == 0 and "2 not compared (filtered 2)" in out
    code, _, _ = run(
        capsys,
        str(log),
        "--policies",
        str(policies),
        "--vendor",
        "nginx_rtmp",
        "--action",
        "publish",
    )
    assert code == 1


def test_unreadable_logs_broken_policies_and_bad_flags_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, policies: Path
) -> None:
    code, _, err = run(capsys, str(tmp_path / "gone.log"), "--policies", str(policies))
    assert code == 2 and f"castgate replay: cannot read {tmp_path / 'gone.log'}" in err
    log = write_log(tmp_path / "decisions.log", TWO_PUBLISHERS)
    (policies / "ingest.policy").write_text("rule broken { on publsh  allow }\n")
    code, _, err = run(capsys, str(log), "--policies", str(policies))
    assert code == 2 and "unknown action `publsh`" in err
    with pytest.raises(SystemExit) as exit_:
        run(capsys, str(log), "--limit", "-1")
    assert exit_.value.code == 2 and "expected a count of 0 or more" in capsys.readouterr().err


def test_a_progress_bar_only_on_request_when_stderr_is_no_terminal(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    policies: Path,
) -> None:
    monkeypatch.setattr(ProgressBar, "interval", 0.0)  # draw at every record
    log = write_log(tmp_path / "decisions.log", TWO_PUBLISHERS)
    _, _, err = run(capsys, str(log), "--policies", str(policies))
    assert err == ""
    _, out, err = run(capsys, str(log), "--policies", str(policies), "--progress")
    assert err.startswith("\rreplaying [") and "100%" in err
    assert err.endswith("\r") and out.startswith("2 records in")
