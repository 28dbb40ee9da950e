"""Peak On windows per weekday, in the station's local time, answered in UTC.

Windows are local wall-clock times (the UK's "08:00-11:00" stays 08:00 in summer and
winter), so each one is turned into UTC for its own date; that is what keeps them right
across the clock changes.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

Window = tuple[time, time]
Interval = tuple[datetime, datetime]

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
DEFAULT_WINDOWS: tuple[Window, ...] = ((time(8), time(11)), (time(16), time(22)))
_WINDOW_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def default_week() -> dict[int, tuple[Window, ...]]:
    return {day: (DEFAULT_WINDOWS if day < 5 else ()) for day in range(7)}


def parse_window(text: str) -> Window:
    """Parse '08:00-11:00'; '24:00' is accepted as the end of the day."""
    match = _WINDOW_RE.match(text)
    if not match:
        raise ValueError(f"'{text}' is not a window like 08:00-11:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2):
        raise ValueError(f"'{text}' has an impossible time")
    start = time(h1, m1)
    end = time.max if h2 == 24 else time(h2, m2)
    if end <= start:
        raise ValueError(f"'{text}' ends before it starts")
    return start, end


def format_window(window: Window) -> str:
    start, end = window
    end_text = "24:00" if end == time.max else end.strftime("%H:%M")
    return f"{start.strftime('%H:%M')}-{end_text}"


@dataclass(frozen=True)
class PeakCalendar:
    """Peak On windows for each weekday (0 = Monday) in the time zone `tz_name`."""

    tz_name: str = "Europe/London"
    week: Mapping[int, Sequence[Window]] = field(default_factory=default_week)

    def __post_init__(self) -> None:
        ZoneInfo(self.tz_name)  # raises for an unknown zone
        for day, windows in self.week.items():
            if day not in range(7):
                raise ValueError(f"weekday {day} is not 0..6")
            ordered = sorted(windows)
            for (_, end), (start, _) in itertools.pairwise(ordered):
                if start < end:
                    raise ValueError(f"Peak On windows of {WEEKDAYS[day]} overlap")

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.tz_name)

    def to_local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.tz)

    def local_to_utc(self, day: date, at: time) -> datetime:
        """A local wall-clock time on a date, in UTC (the end of day for time.max)."""
        if at == time.max:
            return datetime.combine(day + timedelta(days=1), time(0), self.tz).astimezone(UTC)
        return datetime.combine(day, at, self.tz).astimezone(UTC)

    def windows_utc(self, start: datetime, end: datetime) -> list[Interval]:
        """Peak On intervals (UTC, sorted) that touch [start, end)."""
        first = self.to_local(start).date() - timedelta(days=1)
        last = self.to_local(end).date() + timedelta(days=1)
        out: list[Interval] = []
        day = first
        while day <= last:
            for w_start, w_end in sorted(self.week.get(day.weekday(), ())):
                a, b = self.local_to_utc(day, w_start), self.local_to_utc(day, w_end)
                if a < end and b > start:
                    out.append((a, b))
            day += timedelta(days=1)
        return out

    def is_peak_on(self, start: datetime, end: datetime | None = None) -> bool:
        """True when [start, end) touches a Peak On window (an instant when end is None)."""
        stop = end if end is not None else start + timedelta(microseconds=1)
        return bool(self.windows_utc(start, stop))

    def peak_on_seconds(self, start: datetime, end: datetime) -> float:
        return sum(
            (min(b, end) - max(a, start)).total_seconds() for a, b in self.windows_utc(start, end)
        )

    def describe(self) -> dict[str, list[str]]:
        return {WEEKDAYS[d]: [format_window(w) for w in self.week.get(d, ())] for d in range(7)}

    @classmethod
    def from_description(cls, tz_name: str, described: Mapping[str, Iterable[str]]) -> PeakCalendar:
        week = {
            WEEKDAYS.index(day): tuple(parse_window(w) for w in ws) for day, ws in described.items()
        }
        return cls(tz_name=tz_name, week={d: week.get(d, ()) for d in range(7)})


class PeakIndex:
    """Peak On intervals of one span, precomputed so that many checks are cheap."""

    def __init__(self, calendar: PeakCalendar, start: datetime, end: datetime) -> None:
        self.start, self.end = start, end
        self.intervals = calendar.windows_utc(start, end)

    def is_peak_on(self, start: datetime, end: datetime) -> bool:
        return any(a < end and b > start for a, b in self.intervals)


class LocalTimeError(ValueError):
    """A local wall-clock time that does not exist, or happens twice, on a clock change."""


def resolve_local(tz: tzinfo, day: date, at: time, offset: timedelta | None = None) -> datetime:
    """`at` on `day` in `tz`, in UTC.

    A time skipped when the clocks go forward is refused; one that happens twice when
    they go back needs its UTC `offset` to say which.
    """
    naive = datetime.combine(day, at)
    first, second = naive.replace(tzinfo=tz, fold=0), naive.replace(tzinfo=tz, fold=1)
    if first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
        raise LocalTimeError(
            f"{day} {at:%H:%M} does not exist in {tz} (the clocks go forward); choose another time."
        )
    if first.utcoffset() == second.utcoffset():
        if offset is not None and offset != first.utcoffset():
            raise LocalTimeError(
                f"{day} {at:%H:%M} in {tz} is at {_offset(first.utcoffset())}, not"
                f" {_offset(offset)}."
            )
        return first.astimezone(UTC)
    for candidate in (first, second):
        if offset == candidate.utcoffset():
            return candidate.astimezone(UTC)
    raise LocalTimeError(
        f"{day} {at:%H:%M} happens twice in {tz} (the clocks go back): say which, with"
        f" {at:%H:%M}{_offset(first.utcoffset())} or {at:%H:%M}{_offset(second.utcoffset())}."
    )


def _offset(delta: timedelta | None) -> str:
    minutes = int((delta or timedelta(0)).total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
