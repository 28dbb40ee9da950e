"""Energy is bounded by the connector's power times the time (plus a tolerance)."""

from datetime import UTC, datetime, timedelta

import pytest

from evcms_desktop.domain.plausibility import (
    ImplausibleReading,
    check_register_step,
    max_energy_wh,
    session_energy,
    skew_text,
)

START = datetime(2026, 12, 1, 10, tzinfo=UTC)


def test_the_bound_is_power_times_time_with_a_tolerance():
    assert max_energy_wh(22, timedelta(hours=1)) == pytest.approx(22_000 * 1.1 + 100)
    assert max_energy_wh(22, timedelta(0)) == pytest.approx(100)
    assert max_energy_wh(22, timedelta(seconds=-30)) == pytest.approx(100)  # clock ran back


def test_a_register_step_beyond_the_connector_is_implausible():
    check_register_step(0, 22_000, 22, timedelta(hours=1))  # a full hour at 22 kW
    with pytest.raises(ImplausibleReading, match="22 kW connector"):
        check_register_step(0, 400_000, 22, timedelta(seconds=10))


def test_an_impossible_stop_is_flagged_and_not_billed():
    """meterStop 9,000,000,000 Wh 30 s after meterStart 0 on 22 kW was billed in full."""
    billed = session_energy(0, 9_000_000_000, START, START + timedelta(seconds=30), max_power_kw=22)
    assert billed.energy_wh == 0.0
    assert billed.review is not None and "22 kW connector" in billed.review


def test_an_impossible_stop_is_billed_from_the_last_plausible_reading():
    billed = session_energy(
        1_000, 400_000, START, START + timedelta(minutes=30), 8_000.0, max_power_kw=22
    )
    assert billed.energy_wh == 7_000.0
    assert billed.review is not None and "last meter reading" in billed.review


def test_a_plausible_stop_is_billed_as_measured():
    billed = session_energy(1_000, 11_000, START, START + timedelta(minutes=30), max_power_kw=22)
    assert billed == type(billed)(10_000.0)
    unbounded = session_energy(0, 9_000_000_000, START, START + timedelta(seconds=30))
    assert unbounded.review is None  # without a known power only the register's range holds


@pytest.mark.parametrize(
    ("skew", "text"),
    [
        (timedelta(minutes=5, seconds=8, microseconds=37777), "5 min 8 s ahead of"),
        (timedelta(seconds=-42.6), "43 s behind"),
        (timedelta(hours=3, minutes=2, seconds=59), "3 h 2 min ahead of"),
        (datetime(2000, 1, 1, tzinfo=UTC) - START, "9831 days behind"),
    ],
)
def test_a_clock_skew_is_said_in_whole_units(skew: timedelta, text: str):
    assert skew_text(skew) == text
