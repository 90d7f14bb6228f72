"""The ``castgate`` command: ``plugins`` in-process, ``serve`` as a real process on loopback."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from distributions import Site
from hardening.castgate_process import Served, castgate_serve, free_port

from castgate.cli import main

CASTGATE = str(Path(sys.executable).parent / "castgate")


def run_plugins(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["plugins", *args])
    out, err = capsys.readouterr()
    return code, out, err


def listed(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, dict[str, Any]]:
    code, out, _ = run_plugins(capsys, "--json", *args)
    assert code == 0
    return {plugin["name"]: plugin for plugin in json.loads(out)["plugins"]}


@pytest.fixture(autouse=True)
def _logging(isolated_logging: None) -> None:
    """Every verb configures logging; keep that from leaking into other tests."""


def test_plugins_lists_the_built_in_vendor_as_a_plugin_of_castgate(
    capsys: pytest.CaptureFixture[str],
) -> None:
    builtin = listed(capsys)["nginx_rtmp"]
    assert (builtin["distribution"], builtin["status"]) == ("castgate", "loaded")


def test_plugins_json_describes_vendors_and_functions(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    site.install_testcam()
    testcam = listed(capsys)["testcam"]
    assert (testcam["distribution"], testcam["version"]) == ("castgate-testcam", "1.0")
    assert testcam["vendors"] == [
        {
            "name": "testcam",
            "routes": ["", "done"],
            "actions": ["play", "publish", "publish_done"],
            "response_fields": {"rename": {"type": "string", "doc": "the stream's new name"}},
        }
    ]
    assert testcam["functions"] == []


def test_plugins_text_shows_each_plugin_with_its_paths_and_response_fields(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    site.install_testcam()
    code, out, _ = run_plugins(capsys)
    assert code == 0
    assert (
        "testcam  loaded  castgate-testcam 1.0  (castgate_testcam)\n"
        "  vendor testcam: /hooks/testcam, /hooks/testcam/done\n"
        "    actions: play, publish, publish_done\n"
        "    response rename: string  the stream's new name\n"
    ) in out


def test_a_plugin_disabled_by_flag_or_environment_is_shown_as_blocked(
    site: Site, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    site.install_testcam()
    assert listed(capsys, "--disable-plugin", "testcam")["testcam"]["status"] == "blocked"
    monkeypatch.setenv("CASTGATE_DISABLE_PLUGINS", "testcam")
    assert listed(capsys)["testcam"]["status"] == "blocked"


def test_a_broken_plugin_is_shown_with_its_error_and_exits_1(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    site.install("acme", entry_points={"acme": "acme_missing"}, modules={})
    code, out, _ = run_plugins(capsys)
    assert code == 1
    assert "acme  broken  acme 1.0  (acme_missing)\n  error: cannot import 'acme_missing'" in out
    code, out, _ = run_plugins(capsys, "--json")
    assert code == 1
    [acme] = [plugin for plugin in json.loads(out)["plugins"] if plugin["name"] == "acme"]
    assert acme["status"] == "broken"
    assert "ModuleNotFoundError" in acme["error"]


def test_an_invalid_variable_exits_2_naming_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CASTGATE_LOG_LEVEL", "loud")
    code, _, err = run_plugins(capsys)
    assert code == 2
    assert err.startswith("castgate: CASTGATE_LOG_LEVEL: expected one of debug, info")


def test_an_invalid_flag_exits_2_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["serve", "--port", "http"])
    assert raised.value.code == 2
    assert "argument --port: expected a whole number from 1 to 65535" in capsys.readouterr().err


# serve, as the operator runs it


@contextmanager
def castgate_serving(site: Site, *args: str, env: dict[str, str] | None = None) -> Iterator[Served]:
    """``castgate serve`` with ``site``'s plugins (the test vendor, not nginx-rtmp)."""
    plugins = {"PYTHONPATH": site.env()["PYTHONPATH"]}
    with castgate_serve(
        site.root.parent, "--disable-plugin", "nginx_rtmp", *args, env={**plugins, **(env or {})}
    ) as served:
        yield served


def stopped(served: Served) -> str:
    """Stop the server and return everything it logged."""
    served.process.terminate()
    served.process.wait(timeout=15)
    return served.log_text()


def decision_lines(stderr: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return [line for line in lines if line["logger"] == "castgate.decisions"]


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    path = tmp_path / "main.policy"
    path.write_text('rule keyed { on publish from testcam allow if params.key == "k1" }\n')
    return path


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_decides_and_logs_one_json_line_per_decision(
    site: Site, policy: Path, workers: str
) -> None:
    site.install_testcam()
    with castgate_serving(site, "--policies", str(policy), "--workers", workers) as served:
        hook = f"{served.url}/hooks/testcam"
        allowed = httpx.post(hook, json={"stream": "a", "params": {"key": "k1"}})
        denied = httpx.post(hook, json={"stream": "b", "params": {"key": "no"}})
        assert (allowed.status_code, denied.status_code) == (200, 403)
        stderr = stopped(served)
    # Sorted: with two workers, each logs its own decision, in whichever order they get to it.
    assert sorted((line["stream"], line["effect"]) for line in decision_lines(stderr)) == [
        ("a", "allow"),
        ("b", "deny"),
    ]


def test_serve_refuses_a_broken_policy_with_the_report_before_binding_the_port(
    site: Site, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.policy"
    broken.write_text("rule r {\n  on publish\n  allow if\n}\n")
    with socket.socket() as occupant:
        # Holding the port proves the order: binding first would fail with uvicorn's exit 3.
        occupant.bind(("127.0.0.1", 0))
        occupant.listen()
        port = str(occupant.getsockname()[1])
        finished = subprocess.run(
            [CASTGATE, "serve", "--policies", str(broken), "--port", port],
            env=site.env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert finished.returncode == 1
    assert f"{broken}:4:1" in finished.stderr
    assert "1 error in policy" in finished.stderr


def test_serve_refuses_to_start_with_a_broken_plugin(site: Site, policy: Path) -> None:
    site.install("acme", entry_points={"acme": "acme_missing"}, modules={})
    finished = subprocess.run(
        [CASTGATE, "serve", "--policies", str(policy), "--port", str(free_port())],
        env={**site.env(), "CASTGATE_LOG_FORMAT": "text"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 1
    assert "plugin 'acme' (acme 1.0): cannot import 'acme_missing'" in finished.stderr


def test_serve_takes_settings_from_the_environment(site: Site, policy: Path) -> None:
    site.install_testcam()
    env = {"CASTGATE_POLICIES": str(policy), "CASTGATE_EXPLAIN": "1"}
    with castgate_serving(site, env=env) as served:
        httpx.post(f"{served.url}/hooks/testcam", json={"params": {"key": "k1"}})
        stderr = stopped(served)
    [line] = decision_lines(stderr)
    assert line["trace"] == [{"rule": "keyed", "effect": "allow", "matched": True}]
