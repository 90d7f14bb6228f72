"""The policy toolchain verbs of ``castgate``: check, eval, test, fmt, sign."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from castgate.cli import main
from castgate.lang.tokens import secure_link
from castgate.lang.values import Secret

REPO = Path(__file__).resolve().parent.parent
CASTGATE = str(Path(sys.executable).parent / "castgate")
POLICY = (
    'let keys = lines("keys.txt")\n'
    "rule keyed { on publish from nginx_rtmp  allow if params.key in keys }\n"
)


@pytest.fixture(autouse=True)
def _logging(isolated_logging: None) -> None:
    """Every verb configures logging; keep that from leaking into other tests."""


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    (tmp_path / "keyed.policy").write_text(POLICY)
    (tmp_path / "keys.txt").write_text("k1\n")
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_check_reports_a_clean_policy(capsys: pytest.CaptureFixture[str], policy_dir: Path) -> None:
    code, out, _ = run(capsys, "check", str(policy_dir))
    assert code == 0
    assert out.startswith("ok: 1 rules in 1 files")


def test_check_reports_every_error_with_position_and_caret(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "a.policy").write_text("rule a { on publsh  allow }\n")
    (tmp_path / "b.policy").write_text('rule b { on play  allow if stream.nme == "x" }\n')
    code, out, _ = run(capsys, "check", str(tmp_path))
    assert code == 1
    assert f"{tmp_path}/a.policy:1:13: E204: unknown action `publsh`" in out
    assert f"{tmp_path}/b.policy:1:35: E203: unknown field `stream.nme`" in out
    assert "did you mean `publish`" in out and "did you mean `stream.name`" in out
    assert "^^^" in out and out.rstrip().endswith("2 errors in policy")


def test_check_json_lists_diagnostics(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "a.policy").write_text("rule a { on publsh  allow }\n")
    code, out, _ = run(capsys, "check", "--json", str(tmp_path))
    assert code == 1
    [diagnostic] = json.loads(out)["diagnostics"]
    assert (diagnostic["code"], diagnostic["line"], diagnostic["column"]) == ("E204", 1, 13)


def test_eval_prints_the_decision_and_the_explanation(
    capsys: pytest.CaptureFixture[str], policy_dir: Path, tmp_path: Path
) -> None:
    event = tmp_path / "event.json"
    event.write_text(
        json.dumps({"vendor": "nginx_rtmp", "action": "publish", "params": {"key": "k1"}})
    )
    code, out, _ = run(capsys, "eval", "--event", str(event), "--explain", str(policy_dir))
    assert code == 0
    decision = json.loads(out)
    assert (decision["effect"], decision["rule"]) == ("allow", "keyed")
    assert decision["trace"] == [{"rule": "keyed", "effect": "allow", "matched": True}]


def test_eval_reads_session_counts(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "one.policy").write_text(
        'rule one { on publish  deny "taken" if sessions.publishers(stream.name) >= 1 }\n'
        "rule open { on publish  allow }\n"
    )
    (tmp_path / "e.json").write_text('{"vendor": "nginx_rtmp", "action": "publish", "stream": "c"}')
    (tmp_path / "s.json").write_text('{"publisher:stream:c": 1}')
    code, out, _ = run(
        capsys,
        "eval",
        "--event",
        str(tmp_path / "e.json"),
        "--state",
        str(tmp_path / "s.json"),
        str(tmp_path),
    )
    assert code == 0 and json.loads(out)["reason"] == "taken"


def test_eval_refuses_a_malformed_event(
    capsys: pytest.CaptureFixture[str], policy_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "e.json").write_text('{"vendor": "nginx_rtmp"}')
    code, _, err = run(capsys, "eval", "--event", str(tmp_path / "e.json"), str(policy_dir))
    assert code == 2 and "'action' must be a non-empty string" in err


def test_test_runs_the_shipped_policy_tests(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "test", str(REPO / "policies"))
    assert code == 0, out
    passed = int(out.strip().splitlines()[-1].split()[0])
    assert passed >= 25 and out.rstrip().endswith(" passed, 0 failed")


def test_test_shows_a_diff_and_fails(capsys: pytest.CaptureFixture[str], policy_dir: Path) -> None:
    (policy_dir / "keyed.test.yaml").write_text(
        "cases:\n"
        "  - name: wrong expectation\n"
        "    event: {vendor: nginx_rtmp, action: publish, params: {key: k1}}\n"
        "    expect: {effect: deny}\n"
    )
    code, out, _ = run(capsys, "test", str(policy_dir))
    assert code == 1
    assert "FAIL" in out and "wrong expectation" in out
    assert '-  "effect": "deny"' in out and '+  "effect": "allow"' in out
    assert out.rstrip().endswith("0 passed, 1 failed")


def test_test_without_tests_fails(capsys: pytest.CaptureFixture[str], policy_dir: Path) -> None:
    code, _, err = run(capsys, "test", str(policy_dir))
    assert code == 1 and "no *.test.yaml files" in err


def test_fmt_check_reports_then_fmt_rewrites(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "messy.policy"
    path.write_text('rule   r{on play allow if params.a=="x"}')
    code, out, _ = run(capsys, "fmt", "--check", str(tmp_path))
    assert code == 1 and f"would reformat {path}" in out
    assert path.read_text() == 'rule   r{on play allow if params.a=="x"}'
    code, _, _ = run(capsys, "fmt", str(tmp_path))
    assert code == 0
    formatted = path.read_text()
    assert formatted != 'rule   r{on play allow if params.a=="x"}'
    assert run(capsys, "fmt", "--check", str(tmp_path))[0] == 0
    assert run(capsys, "check", str(tmp_path))[0] == 0


def test_shipped_policies_are_formatted(capsys: pytest.CaptureFixture[str]) -> None:
    folders = sorted(p for p in (REPO / "policies").iterdir() if list(p.glob("*.policy")))
    assert len(folders) >= 2
    code, out, _ = run(capsys, "fmt", "--check", *map(str, folders))
    assert code == 0, out


def test_sign_mints_a_link_secure_link_accepts(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SIGNING_KEY", "a-signing-key")
    code, out, _ = run(
        capsys, "sign", "--secret-env", "TEST_SIGNING_KEY", "--ttl", "10m", "live/cam1"
    )
    assert code == 0
    fields = dict(pair.split("=", 1) for pair in out.strip().split("&"))
    secret = Secret("a-signing-key", "test")
    now = int(fields["expires"]) - 600
    assert secure_link("live/cam1", fields["expires"], fields["sig"], secret, now)
    assert not secure_link("live/cam2", fields["expires"], fields["sig"], secret, now)


def test_sign_needs_the_secret(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "sign", "--secret-env", "CASTGATE_NOT_SET_ANYWHERE", "x")
    assert code == 2 and "CASTGATE_NOT_SET_ANYWHERE is not set" in err


# Literals the grammar reads but that hold no value: a policy error, never a traceback.

BAD_LITERALS = (
    'let tabbed = "a\tb"\n'  # 1:16
    'let surrogate = "x\\ud800"\n'  # 2:19
    f"let long = 1{'0' * 5000}\n"  # 3:12
    f"rule r {{ on publish  allow with {{ lifetime: 1{'0' * 400}d }} }}\n"  # 4:45
)
BAD_LITERAL_ERRORS = [
    (1, 16, "E103", "control character U+0009 in a string: write \\t"),
    (2, 19, "E103", "lone surrogate `\\ud800` in a string: it is half of a pair and no character"),
    (3, 12, "E309", "integer literal too long: 5001 digits"),
    (4, 45, "E309", "duration literal too large"),
]


def test_check_reports_bad_literals_as_policy_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "literals.policy"
    path.write_text(BAD_LITERALS)
    code, out, err = run(capsys, "check", str(path))
    assert code == 1 and not err
    for line, column, error, message in BAD_LITERAL_ERRORS:
        assert f"{path}:{line}:{column}: {error}: {message}\n" in out
    assert '   1 | let tabbed = "a b"\n     |                ^\n' in out
    assert out.rstrip().endswith("4 errors in policy")
    code, out, _ = run(capsys, "check", "--json", str(path))
    assert code == 1
    found = json.loads(out)["diagnostics"]
    assert [(d["line"], d["column"], d["code"], d["message"]) for d in found] == BAD_LITERAL_ERRORS


def test_the_castgate_command_reports_bad_literals_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "literals.policy"
    path.write_text(BAD_LITERALS)
    for verb in (["check"], ["fmt", "--check"]):
        done = subprocess.run(
            [CASTGATE, *verb, str(path)], capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 1, done
        assert "Traceback" not in done.stdout + done.stderr
        report = done.stdout + done.stderr
        for line, column, error, message in BAD_LITERAL_ERRORS:
            assert f"{path}:{line}:{column}: {error}: {message}\n" in report
        assert report.rstrip().endswith("4 errors in policy")


def test_sign_refuses_a_ttl_past_the_float_range(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["sign", "--secret-env", "X", "--ttl", f"1{'0' * 400}s", "live/cam1"])
    assert exited.value.code == 2
    assert "argument --ttl: invalid" in capsys.readouterr().err
