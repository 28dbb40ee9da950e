"""Energy is bounded by the connector's power times the time (plus a tolerance)."""

from datetime import UTC, datetime, timedelta

import pytest

from evcms_desktop.domain.plausibility import (
    LIVE_DELAY,
    ImplausibleReading,
    check_register_step,
    max_energy_wh,
    session_energy,
    skew_text,
    vouched_start,
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


def test_vouched_start_of_a_live_charger_is_its_receipt():
    """A start claimed while the charger was connected, and sent much later, counts from
    its receipt (less a minute); one sent at once counts from its claim."""
    connected = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    received = connected + timedelta(minutes=20)
    claimed = received - timedelta(minutes=13)
    assert vouched_start(claimed, received, connected, None) == received - LIVE_DELAY
    prompt = received - timedelta(seconds=3)
    assert vouched_start(prompt, received, connected, None) == prompt


def test_vouched_start_of_an_offline_start_is_its_claim_after_the_charger_went():
    went = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    connected = went + timedelta(minutes=40)
    received = connected + timedelta(seconds=5)
    offline = went + timedelta(minutes=5)
    assert vouched_start(offline, received, connected, went) == offline
    before = went - timedelta(hours=2)  # it was connected then, and said nothing
    assert vouched_start(before, received, connected, went) == went - LIVE_DELAY


def test_session_energy_is_capped_by_the_vouched_time():
    start = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    stop = start + timedelta(minutes=11)
    claimed = session_energy(1000, 5500, start, stop, max_power_kw=22)
    assert claimed.review is None and claimed.energy_wh == 4500
    seen = session_energy(1000, 5500, start, stop, max_power_kw=22, vouched=timedelta(seconds=62))
    assert seen.energy_wh == 0 and "62 s" in (seen.review or "")
