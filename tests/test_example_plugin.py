"""The example third-party plugin, installed with pip, is picked up with no configuration.

It is installed with ``pip install --target`` into a temporary directory rather than into the
running environment: other test runs share that environment, and a plugin appearing in it
mid-run would change what they load.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from distributions import installed_site

from castgate import Event
from castgate.lang import compile_policies
from castgate.plugins import PluginStatus, load_plugins
from castgate.state import EMPTY_STATE

EXAMPLE = Path(__file__).parents[1] / "examples" / "castgate-example-plugin"
CASTGATE = str(Path(sys.executable).parent / "castgate")


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the example: pip and pytest write into the tree they work on."""
    copy = tmp_path_factory.mktemp("example") / "castgate-example-plugin"
    shutil.copytree(
        EXAMPLE, copy, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    return copy


@pytest.fixture(scope="module")
def target(example: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example built and installed by pip into a directory of its own."""
    installed = tmp_path_factory.mktemp("target")
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "install", "--quiet"),
            *("--no-deps", "--no-build-isolation", "--target", str(installed), str(example)),
        ],
        check=True,
        timeout=120,
    )
    return installed


@pytest.fixture
def on_path(target: Path) -> Iterator[Path]:
    with installed_site(target):
        yield target


def with_target(target: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(target)}


def test_castgate_plugins_lists_it_without_configuration(target: Path) -> None:
    listed = subprocess.run(
        [CASTGATE, "plugins", "--json"],
        env=with_target(target),
        capture_output=True,
        text=True,
        timeout=60,
    )
    [example] = [p for p in json.loads(listed.stdout)["plugins"] if p["name"] == "example"]
    assert (example["distribution"], example["version"], example["status"]) == (
        "castgate-example-plugin",
        "0.1.0",
        "loaded",
    )
    assert [vendor["name"] for vendor in example["vendors"]] == ["example"]
    assert example["vendors"][0]["response_fields"]["redirect"]["type"] == "string"
    assert example["functions"][0]["name"] == "example.country"


def test_a_policy_calling_its_function_compiles_and_decides(on_path: Path, tmp_path: Path) -> None:
    registry = load_plugins()
    assert registry.provider_of("example").status is PluginStatus.LOADED
    policy = tmp_path / "geo.policy"
    policy.write_text(
        'rule home { on play from example allow if example.country(client.ip) == "DE" }\n'
    )
    compiled = compile_policies([policy], vendors=registry.vendors, functions=registry.functions)
    home = compiled.decide(Event("example", "play", client_ip="192.0.2.1"), EMPTY_STATE)
    abroad = compiled.decide(Event("example", "play", client_ip="198.51.100.1"), EMPTY_STATE)
    assert (home.allowed, home.rule) == (True, "home")
    assert abroad.allowed is False


def test_its_own_test_suite_passes(example: Path, target: Path) -> None:
    # The template's tests are part of what a plugin author copies; keep them green.
    finished = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=example,
        env=with_target(target),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert " passed" in finished.stdout
