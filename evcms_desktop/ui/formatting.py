"""How the console writes times, durations, power and energy: local time, short units."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from PySide6.QtCore import QDate
from PySide6.QtWidgets import QDateEdit

from evcms_desktop.domain.validation import FIRST_DATE, LAST_DATE

DASH = "–"


def local(moment: datetime, tz: ZoneInfo) -> datetime:
    return moment.astimezone(tz)


def local_qdate(moment: datetime, tz: ZoneInfo) -> QDate:
    """The station-local calendar day of a moment, for Qt's date widgets."""
    day = moment.astimezone(tz).date()
    return QDate(day.year, day.month, day.day)


def bound_dates(*edits: QDateEdit) -> None:
    """Date fields take the dates the command line takes (Qt's own go to 9999-12-31, whose
    next day the store cannot represent)."""
    for edit in edits:
        edit.setDateRange(QDate(FIRST_DATE), QDate(LAST_DATE))


def fmt_time(moment: datetime | None, tz: ZoneInfo) -> str:
    return DASH if moment is None else f"{local(moment, tz):%H:%M}"


def fmt_clock(moment: datetime | None, tz: ZoneInfo) -> str:
    return DASH if moment is None else f"{local(moment, tz):%H:%M:%S}"


def fmt_datetime(moment: datetime | None, tz: ZoneInfo) -> str:
    return DASH if moment is None else f"{local(moment, tz):%a %d %b %H:%M}"


def fmt_span(start: datetime, end: datetime, tz: ZoneInfo, this_year: int | None = None) -> str:
    """'Tue 01 Dec 09:00–10:30' (the end's date is added when the span crosses midnight;
    the year when it is not `this_year`)."""
    a, b = local(start, tz), local(end, tz)
    end_text = f"{b:%H:%M}" if a.date() == b.date() else f"{fmt_day(b, this_year)} {b:%H:%M}"
    return f"{fmt_day(a, this_year)} {a:%H:%M}{DASH}{end_text}"


def fmt_day(moment: datetime, this_year: int | None = None) -> str:
    """'Tue 01 Dec', with the year when it is not `this_year` (given)."""
    year = "" if this_year is None or moment.year == this_year else f" {moment.year}"
    return f"{moment:%a %d %b}{year}"


def fmt_duration(delta: timedelta | None) -> str:
    if delta is None:
        return DASH
    seconds = max(0, int(delta.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes >= 10:
        return f"{minutes} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def fmt_number(value: Decimal | float | None, unit: str, places: int = 1) -> str:
    if value is None:
        return DASH
    return f"{float(value):,.{places}f} {unit}"


def fmt_kw(value: Decimal | float | None) -> str:
    return fmt_number(value, "kW")


def fmt_kwh(value: Decimal | float | None) -> str:
    return fmt_number(value, "kWh", 2)


def fmt_percent(value: float | None) -> str:
    return DASH if value is None else f"{value:.0f} %"


def state_text(value: str) -> str:
    """'checked_in' -> 'Checked in'."""
    return value.replace("_", " ").capitalize()


def plural(count: int, noun: str) -> str:
    """'1 session', '2 sessions'."""
    return f"{count} {noun}{'' if count == 1 else 's'}"
