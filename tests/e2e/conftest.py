"""Fixtures for the end-to-end tests: real nginx-rtmp, ffmpeg and castgate processes.

Tests marked ``@pytest.mark.nginx`` skip, with the reason, where nginx, its rtmp module or ffmpeg
is missing; with ``CI=true`` they fail instead, so a CI image that lost a package cannot turn the
suite green by skipping it. The same rule applies to ``castgate serve`` for the tests that need it.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from dependencies import unavailable

from .harness import (
    Castgate,
    HookRecorder,
    Nginx,
    castgate_serve_missing,
    missing_tools,
    tail,
)

#: Log files to show when a test fails, registered by the fixtures that start processes.
_LOGS = pytest.StashKey[list[tuple[str, Path]]]()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # Runs before fixtures, so a machine without nginx never tries to start one.
    if item.get_closest_marker("nginx") is not None:
        missing = missing_tools()
        if missing:
            unavailable("needs " + ", ".join(missing))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        for node in item.listchain():
            for title, path in node.stash.get(_LOGS, []):
                report.sections.append((title, tail(path)))
    return report


def _register_log(node: pytest.Item | pytest.Collector, title: str, path: Path) -> None:
    node.stash.setdefault(_LOGS, []).append((title, path))


class Processes:
    """Starts nginx and castgate for one test (or module) and stops them all at teardown."""

    def __init__(self, node: pytest.Item | pytest.Collector, workdir: Path) -> None:
        self._node = node
        self._workdir = workdir
        self._stoppers: list[Callable[[], None]] = []

    def nginx(self, hook_url: str, **options: Any) -> Nginx:
        index = len(self._stoppers)
        server = Nginx(self._workdir / f"nginx{index}", hook_url, **options)
        _register_log(self._node, f"nginx{index} error.log", server.error_log)
        self._stoppers.append(server.stop)
        return server.start()

    def castgate(self, policies: Path) -> Castgate:
        reason = castgate_serve_missing()
        if reason is not None:
            unavailable(reason)
        index = len(self._stoppers)
        server = Castgate(policies, self._workdir / f"castgate{index}")
        _register_log(self._node, f"castgate{index} stderr", server.stderr_path)
        self._stoppers.append(server.stop)
        return server.start()

    def stop_all(self) -> None:
        for stopper in reversed(self._stoppers):
            stopper()
        self._stoppers.clear()


@pytest.fixture
def processes(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Processes]:
    started = Processes(request.node, tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


@pytest.fixture(scope="module")
def module_processes(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Processes]:
    started = Processes(request.node, tmp_path_factory.mktemp("e2e"))
    try:
        yield started
    finally:
        started.stop_all()


@pytest.fixture
def hook_recorder() -> Iterator[HookRecorder]:
    """A stand-in webhook on a free port that records requests and answers 200 by default."""
    recorder = HookRecorder().start()
    try:
        yield recorder
    finally:
        recorder.stop()
