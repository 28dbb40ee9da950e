import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from evcms_desktop.domain.peak import (
    LocalTimeError,
    PeakCalendar,
    PeakIndex,
    format_window,
    parse_window,
    resolve_local,
)

CAL = PeakCalendar()


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_winter_weekday_windows_are_local_gmt():
    # Tuesday 1 December 2026: London is on GMT.
    windows = CAL.windows_utc(utc(2026, 12, 1, 0), utc(2026, 12, 2, 0))
    assert windows == [
        (utc(2026, 12, 1, 8), utc(2026, 12, 1, 11)),
        (utc(2026, 12, 1, 16), utc(2026, 12, 1, 22)),
    ]


def test_summer_weekday_windows_move_an_hour_in_utc():
    # Wednesday 1 July 2026: BST, so 08:00 local is 07:00 UTC.
    assert CAL.is_peak_on(utc(2026, 7, 1, 7, 30))
    assert not CAL.is_peak_on(utc(2026, 7, 1, 10, 30))  # 11:30 local


def test_day_of_the_spring_clock_change():
    # Monday 30 March 2026 is the first weekday after the change of 29 March.
    assert CAL.windows_utc(utc(2026, 3, 30, 0), utc(2026, 3, 31, 0))[0] == (
        utc(2026, 3, 30, 7),
        utc(2026, 3, 30, 10),
    )
    # Friday 27 March 2026, still GMT.
    assert CAL.windows_utc(utc(2026, 3, 27, 0), utc(2026, 3, 28, 0))[0][0] == utc(2026, 3, 27, 8)


def test_autumn_change_on_a_weekday_calendar():
    cal = PeakCalendar(week={6: ((time(0, 30), time(3)),)})  # Sunday 00:30-03:00 local
    # Sunday 25 October 2026: 02:00 BST becomes 01:00 GMT, so the window lasts 3.5 h.
    (start, end), *_ = cal.windows_utc(utc(2026, 10, 24, 12), utc(2026, 10, 26, 0))
    assert start == utc(2026, 10, 24, 23, 30)
    assert end == utc(2026, 10, 25, 3)
    assert cal.peak_on_seconds(start - timedelta(hours=1), end + timedelta(hours=1)) == 3.5 * 3600


def test_weekends_are_peak_off_by_default():
    saturday = utc(2026, 12, 5, 9)
    assert not CAL.is_peak_on(saturday, saturday + timedelta(hours=12))


def test_interval_touching_a_window_is_peak_on_and_boundaries_are_half_open():
    assert CAL.is_peak_on(utc(2026, 12, 1, 7), utc(2026, 12, 1, 8, 15))
    assert not CAL.is_peak_on(utc(2026, 12, 1, 7), utc(2026, 12, 1, 8))
    assert not CAL.is_peak_on(utc(2026, 12, 1, 11), utc(2026, 12, 1, 16))


def test_other_time_zones_are_honoured():
    cal = PeakCalendar(tz_name="America/New_York")
    assert cal.is_peak_on(utc(2026, 12, 1, 13, 30))  # 08:30 EST
    assert not cal.is_peak_on(utc(2026, 12, 1, 8, 30))


def test_description_round_trips():
    described = CAL.describe()
    assert described["Mon"] == ["08:00-11:00", "16:00-22:00"]
    assert described["Sat"] == []
    assert PeakCalendar.from_description("Europe/London", described) == CAL


def test_window_text_parsing():
    assert parse_window("7:30-24:00") == (time(7, 30), time.max)
    assert format_window(parse_window("7:30-24:00")) == "07:30-24:00"
    assert CAL.is_peak_on(utc(2026, 12, 1, 8))
    for bad in ["8-11", "11:00-08:00", "25:00-26:00", "08:00-24:30"]:
        with pytest.raises(ValueError):
            parse_window(bad)


def test_overlapping_windows_and_unknown_zones_are_refused():
    with pytest.raises(ValueError):
        PeakCalendar(week={0: ((time(8), time(11)), (time(10), time(12)))})
    with pytest.raises(Exception):  # noqa: B017 - zoneinfo raises its own error type
        PeakCalendar(tz_name="Mars/Olympus")


def test_peak_index_agrees_with_the_calendar():
    start = utc(2026, 11, 30, 0)
    index = PeakIndex(CAL, start, start + timedelta(days=7))
    for quarter in range(7 * 96):
        a = start + timedelta(minutes=15 * quarter)
        b = a + timedelta(minutes=45)
        assert index.is_peak_on(a, b) == CAL.is_peak_on(a, b), a


LONDON = ZoneInfo("Europe/London")
CHANGE = date(2026, 10, 25)  # the clocks go back at 02:00 BST


@pytest.mark.parametrize(
    ("day", "at", "offset", "utc"),
    [
        (date(2026, 12, 1), time(17), None, datetime(2026, 12, 1, 17, tzinfo=UTC)),
        (date(2026, 7, 1), time(17), timedelta(hours=1), datetime(2026, 7, 1, 16, tzinfo=UTC)),
        (
            date(2026, 10, 25),
            time(1, 30),
            timedelta(hours=1),
            datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        ),
        (date(2026, 10, 25), time(1, 30), timedelta(0), datetime(2026, 10, 25, 1, 30, tzinfo=UTC)),
    ],
)
def test_local_times_resolve_to_one_instant(day, at, offset, utc):
    assert resolve_local(LONDON, day, at, offset) == utc


@pytest.mark.parametrize(
    ("day", "at", "offset", "message"),
    [
        (
            date(2026, 3, 29),
            time(1, 30),
            None,
            "does not exist in Europe/London (the clocks go forward)",
        ),
        (
            date(2026, 10, 25),
            time(1, 30),
            None,
            "the clocks go back): say which, with 01:30+01:00 or 01:30+00:00",
        ),
        (date(2026, 7, 1), time(17), timedelta(0), "is at +01:00, not +00:00"),
    ],
)
def test_clock_change_times_are_refused_or_asked_about(day, at, offset, message):
    with pytest.raises(LocalTimeError, match=re.escape(message)):
        resolve_local(LONDON, day, at, offset)
