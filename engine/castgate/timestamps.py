"""Reading points in time from JSON: epoch seconds (or milliseconds) and ISO 8601 strings."""

from __future__ import annotations

import re
from datetime import datetime

# Epoch values above this are milliseconds: 1e11 seconds is the year 5138.
_MILLISECONDS_THRESHOLD = 100_000_000_000
_NUMERIC = re.compile(r"[0-9]+(\.[0-9]+)?")


def parse_timestamp(value: object) -> float:
    """Seconds since the epoch from a number, a numeric string, or ISO 8601 with an offset.

    Raises :class:`ValueError` for anything else, including ISO times without an offset: a policy
    that decides by time of day must never guess the zone a test author meant.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"not a timestamp: {value!r}")
    if isinstance(value, str) and not _NUMERIC.fullmatch(value.strip()):
        return _iso_timestamp(value)
    seconds = float(value)
    if seconds > _MILLISECONDS_THRESHOLD:
        seconds /= 1000.0
    return seconds


def _iso_timestamp(value: str) -> float:
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"not a timestamp: {value!r}") from None
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {value!r} needs a UTC offset, e.g. 'Z' or '+01:00'")
    return moment.timestamp()
