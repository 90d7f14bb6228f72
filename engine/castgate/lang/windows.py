"""Time windows in IANA zones: weekdays, dates and times of day, judged on the wall clock.

Wall-clock semantics make DST explicit: on the day clocks spring forward, a window inside the
skipped hour never matches; on the day they fall back, a window inside the repeated hour matches
both times. A time range that crosses midnight (``22:00..06:00``) belongs to the day it starts on,
so ``weekdays fri 22:00..06:00`` includes Saturday 03:00.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

_ONE_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class DateRange:
    first: date
    last: date  # inclusive


@dataclass(frozen=True, slots=True)
class MomentRange:
    start: datetime  # aware, inclusive
    end: datetime  # aware, exclusive


class TimeWindow:
    """``now in window``; build with :meth:`weekly`, :meth:`daily` or :meth:`dated`."""

    __slots__ = ("_clock", "_dates", "_days", "_moments", "zone")

    def __init__(
        self,
        zone: ZoneInfo,
        *,
        days: frozenset[int] | None = None,
        clock: tuple[int, int] | None = None,
        dates: Sequence[DateRange] = (),
        moments: Sequence[MomentRange] = (),
    ) -> None:
        self.zone = zone
        self._days = days
        self._clock = clock
        self._dates = tuple(dates)
        self._moments = tuple(moments)

    def contains(self, timestamp: float) -> bool:
        return self.contains_local(datetime.fromtimestamp(timestamp, self.zone))

    def contains_local(self, local: datetime) -> bool:
        """:meth:`contains` for a time already in :attr:`zone`: a decision testing several
        windows in one zone converts the event's time once (the conversion is most of a test)."""
        if self._moments:
            return any(m.start <= local < m.end for m in self._moments)
        day = local.date()
        if self._clock is not None:
            start, end = self._clock
            second = local.hour * 3600 + local.minute * 60 + local.second
            if start < end:
                if not start <= second < end:
                    return False
            elif second < end:
                day -= _ONE_DAY  # the small hours belong to the night that began yesterday
            elif second < start:
                return False
        if self._days is not None and day.weekday() not in self._days:
            return False
        return not self._dates or any(r.first <= day <= r.last for r in self._dates)

    def __contains__(self, timestamp: object) -> bool:
        return isinstance(timestamp, int | float) and self.contains(float(timestamp))

    def __repr__(self) -> str:
        return f"<time window in {self.zone.key}>"
