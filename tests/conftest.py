"""Fixtures shared by the engine's tests."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from distributions import Site, installed_site


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """An empty site on ``sys.path`` to install distributions into; gone after the test."""
    with installed_site(tmp_path / "site") as empty:
        yield empty


@pytest.fixture
def isolated_logging() -> Iterator[None]:
    """For code that configures logging: the root logger is put back as it was afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
