"""Tests that need a real program (nginx-rtmp, ffmpeg, redis-server) where it is missing: they
skip with the reason, except with ``CI=true``, where they fail, so a CI machine that lost a
package cannot turn the suite green by skipping."""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def unavailable(reason: str) -> None:
    """Skip for ``reason``, or fail when running in CI."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing dependency fails here)", pytrace=False)
    pytest.skip(reason)
