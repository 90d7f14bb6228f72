from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from castgate.logs import JsonLines, TextLines, configure_logging, iso_time
from castgate.settings import Settings


def record(message: str, **fields: object) -> logging.LogRecord:
    made = logging.LogRecord("castgate.test", logging.INFO, __file__, 1, message, (), None)
    made.created = 0.25
    if fields:
        made.fields = fields
    return made


def test_time_is_utc_with_milliseconds_and_a_z() -> None:
    assert iso_time(1_700_000_000.1234) == "2023-11-14T22:13:20.123Z"


# Whole seconds plus fractions that round across a second (x.9999996) or sit on a half
# microsecond, where a shortcut is most likely to part from datetime's rounding.
_epochs = st.one_of(
    st.floats(min_value=-1e9, max_value=4e9, allow_nan=False),
    st.builds(
        lambda second, fraction: second + fraction,
        st.integers(-(10**9), 4 * 10**9),
        st.sampled_from([0.0, 0.0005, 0.0004999, 0.9995, 0.9999995, 0.9999996, 0.5, 0.1234565]),
    ),
)


@given(_epochs)
def test_time_is_exactly_what_datetime_writes(epoch: float) -> None:
    moment = datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")
    assert iso_time(epoch) == moment.replace("+00:00", "Z")


def test_a_json_line_carries_the_records_fields_at_the_top_level() -> None:
    line = JsonLines().format(record("decision", vendor="testcam", rule=None, latency_ms=0.5))
    assert json.loads(line) == {
        "time": "1970-01-01T00:00:00.250Z",
        "level": "info",
        "logger": "castgate.test",
        "message": "decision",
        "vendor": "testcam",
        "rule": None,
        "latency_ms": 0.5,
    }


def test_a_json_line_includes_the_traceback() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        failed = record("failed")
        failed.exc_info = sys.exc_info()
    entry = json.loads(JsonLines().format(failed))
    assert entry["exception"].endswith("RuntimeError: boom")


def test_a_text_line_shows_fields_as_key_value_pairs() -> None:
    line = TextLines().format(record("decision", stream="cam 1", rule=None))
    assert line == '1970-01-01T00:00:00.250Z INFO castgate.test: decision stream="cam 1" rule=null'


@pytest.mark.parametrize(("log_format", "formatter"), [("json", JsonLines), ("text", TextLines)])
def test_configure_logging_sends_every_logger_to_stderr_in_the_chosen_format(
    isolated_logging: None, log_format: str, formatter: type[logging.Formatter]
) -> None:
    configure_logging(Settings(log_format=log_format, log_level="warning"))
    root = logging.getLogger()
    [handler] = root.handlers
    assert isinstance(handler.formatter, formatter)
    assert root.level == logging.WARNING
