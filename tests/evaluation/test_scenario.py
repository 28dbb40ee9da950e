"""The scenario generator: deterministic for a seed, and drawn as documented."""

from __future__ import annotations

from collections import Counter
from datetime import time, timedelta
from decimal import Decimal

from evcms_desktop.domain.peak import PeakCalendar
from evcms_desktop.domain.tariff import Tariff
from evcms_desktop.evaluation.scenario import (
    PAPER_DURATIONS_MIN,
    ScenarioConfig,
    generate_scenario,
)


def test_same_seed_gives_the_same_requests() -> None:
    config = ScenarioConfig(bookings=200, seed=7)
    assert generate_scenario(config) == generate_scenario(config)


def test_another_seed_gives_other_requests() -> None:
    one = generate_scenario(ScenarioConfig(bookings=200, seed=1))
    two = generate_scenario(ScenarioConfig(bookings=200, seed=2))
    assert one.requests != two.requests


def test_requests_follow_the_documented_distributions() -> None:
    config = ScenarioConfig(bookings=500, seed=1)
    calendar = PeakCalendar()
    crate = Tariff().charge_rate_kw
    requests = generate_scenario(config).requests

    assert [r.tid for r in requests] == list(range(500))
    assert [r.booked_at for r in requests] == sorted(r.booked_at for r in requests)
    minutes = Counter(int(r.duration.total_seconds() // 60) for r in requests)
    paper_share = sum(minutes[m] for m in PAPER_DURATIONS_MIN) / 500
    assert 0.75 < paper_share < 0.9
    assert all(m % 15 == 0 and 30 <= m <= 240 for m in minutes)
    first = calendar.local_to_utc(config.first_day, time(0))
    for r in requests:
        full = crate * Decimal(r.duration.total_seconds()) / 3600
        assert Decimal(0) < r.energy_kwh <= full
        assert timedelta(minutes=30) <= r.arrival - r.booked_at <= timedelta(hours=48)
        assert r.latest_departure >= r.arrival + r.duration
        assert first <= r.arrival < first + timedelta(days=config.days)
        assert r.arrival.minute % 15 == 0
    full_power = sum(
        r.energy_kwh == crate * Decimal(r.duration.total_seconds()) / 3600 for r in requests
    )
    assert 0.65 < full_power / 500 < 0.85
    peak_on = sum(calendar.is_peak_on(r.arrival, r.arrival + r.duration) for r in requests)
    assert peak_on / 500 > 0.5  # enough Peak On demand that bookings collide
