"""How castgate writes its log to stderr: JSON lines for collectors, plain text for people.

Structured records carry their data in ``extra={"fields": {...}}``; both formats print those
fields, so a decision reads the same in either (see :data:`DECISION_LOGGER`).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import sys
from datetime import UTC, datetime
from typing import Any

from castgate.settings import Settings

#: The logger that writes one record per answered hook request (keys in docs/plugins.md).
DECISION_LOGGER = "castgate.decisions"


def configure_logging(settings: Settings) -> None:
    """Route every logger, uvicorn's included, to stderr in the configured format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines() if settings.log_format == "json" else TextLines())
    # Neither format prints the caller, thread or process, and collecting them costs every record
    # a stack walk and lookups (a few µs of a decision line's ~18, measured in
    # benchmarks/README.md): the logging HOWTO's "Optimization" section switches them off so.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())


def iso_time(epoch_seconds: float) -> str:
    """UTC with milliseconds and a ``Z``, the form log collectors parse without configuration.

    Exactly ``datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="milliseconds")``
    with ``Z``: its microseconds rounding included, but the date and time of day made once per
    second. Every decision writes two of these, and building a datetime was most of their cost.
    """
    fraction, whole = math.modf(epoch_seconds)
    # datetime's own rounding: to the microsecond, half to even, carrying into the second.
    micros = round(fraction * 1e6)
    if micros >= 1_000_000:
        whole += 1
        micros -= 1_000_000
    elif micros < 0:
        whole -= 1
        micros += 1_000_000
    return f"{_second_of(int(whole))}.{micros // 1000:03d}Z"


@functools.lru_cache(maxsize=4)
def _second_of(epoch_seconds: int) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")


#: One encoder for every record: ``json.dumps`` with an option builds a new one per call.
_encode = json.JSONEncoder(default=str).encode


class JsonLines(logging.Formatter):
    """One JSON object per record: time, level, logger, message, then the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": iso_time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return _encode(entry)


class TextLines(logging.Formatter):
    """``time level logger: message key=value ...``, with any traceback on the lines after."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{iso_time(record.created)} {record.levelname} {record.name}: {record.getMessage()}"
        fields = getattr(record, "fields", {})
        if fields:
            line += " " + " ".join(f"{key}={_encode(value)}" for key, value in fields.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line
