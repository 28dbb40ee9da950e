"""A seeded, deterministic scenario of booking requests for the evaluation.

Distributions (documented in docs/evaluation.md; every draw comes from one
`random.Random(seed)`, so a seed always gives the same requests):

- day: uniform over the `days` consecutive days from `first_day` (local dates);
- arrival: local hour from HOUR_WEIGHTS (commuter peaks, so about 60 % of arrivals fall in
  Peak On and bookings collide there), minute uniform on the 15-minute grid;
- duration: 80 % the paper's 30, 60, 75 or 120 minutes (equally likely), 20 % a spread
  beyond them, uniform on the 15-minute grid from 45 minutes to 4 hours;
- energy: 75 % a full-power session as in Table 2 (Pow = Dh * Pmax * Ceff), 25 % a share
  of it uniform in [0.5, 1.0), to 0.1 kWh;
- latest departure: 40 % leave when the asked slot ends, 60 % stay longer by a uniform
  15-minute multiple up to 10 hours;
- booking time: arrival minus a lead uniform in [30 min, 48 h] to the minute. Requests
  are made, and numbered (TID), in order of booking time.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from evcms_desktop.domain.peak import PeakCalendar
from evcms_desktop.domain.tariff import Tariff
from evcms_desktop.domain.validation import PlanRequest

PAPER_DURATIONS_MIN = (30, 60, 75, 120)
# Relative weight of each local arrival hour 0..23: quiet nights, morning and evening peaks.
HOUR_WEIGHTS = (
    (0, 0.2), (1, 0.1), (2, 0.1), (3, 0.1), (4, 0.2), (5, 0.5),
    (6, 1.5), (7, 3.0), (8, 4.5), (9, 4.5), (10, 3.5), (11, 2.0),
    (12, 2.0), (13, 2.0), (14, 2.0), (15, 2.5), (16, 4.5), (17, 5.0),
    (18, 5.0), (19, 4.5), (20, 3.5), (21, 2.5), (22, 1.0), (23, 0.5),
)  # fmt: skip


@dataclass(frozen=True)
class ScenarioConfig:
    bookings: int = 500
    seed: int = 1
    connectors: int = 4
    first_day: date = date(2027, 3, 1)  # a Monday, in GMT (the clocks change on 28 March)
    days: int = 14


@dataclass(frozen=True)
class ScenarioRequest:
    """One driver's request. `tid` is its Table 2 transaction id (order of booking)."""

    tid: int
    booked_at: datetime
    arrival: datetime
    duration: timedelta
    energy_kwh: Decimal
    latest_departure: datetime

    def plan_request(self) -> PlanRequest:
        return PlanRequest(arrival=self.arrival, duration=self.duration, energy_kwh=self.energy_kwh)


@dataclass(frozen=True)
class Scenario:
    config: ScenarioConfig
    requests: tuple[ScenarioRequest, ...]


def _weighted_hour(rng: random.Random) -> int:
    hours = [h for h, _ in HOUR_WEIGHTS]
    weights = [w for _, w in HOUR_WEIGHTS]
    return rng.choices(hours, weights)[0]


def generate_scenario(
    config: ScenarioConfig,
    tariff: Tariff | None = None,
    calendar: PeakCalendar | None = None,
) -> Scenario:
    """The same requests for the same config (and tariff and calendar), on any machine."""
    if config.bookings < 1 or config.days < 1:
        raise ValueError("a scenario needs at least one booking and one day")
    tariff = tariff or Tariff()
    calendar = calendar or PeakCalendar()
    rng = random.Random(config.seed)
    drafts: list[tuple[datetime, datetime, timedelta, Decimal, datetime]] = []
    for _ in range(config.bookings):
        day = config.first_day + timedelta(days=rng.randrange(config.days))
        local = time(_weighted_hour(rng), 15 * rng.randrange(4))
        arrival = calendar.local_to_utc(day, local)
        paper = rng.random() < 0.8
        minutes = rng.choice(PAPER_DURATIONS_MIN) if paper else 15 * rng.randint(3, 16)
        duration = timedelta(minutes=minutes)
        full = tariff.energy_for_duration(Decimal(minutes) / 60)
        if rng.random() < 0.75:
            energy = full
        else:
            energy = (full * Decimal(str(rng.uniform(0.5, 1.0)))).quantize(Decimal("0.1"))
        stay = timedelta(0) if rng.random() < 0.4 else timedelta(minutes=15 * rng.randint(1, 40))
        lead = timedelta(minutes=rng.randint(30, 48 * 60))
        drafts.append((arrival - lead, arrival, duration, energy, arrival + duration + stay))
    drafts.sort(key=lambda d: (d[0], d[1]))
    requests = tuple(
        ScenarioRequest(
            tid=i,
            booked_at=booked_at,
            arrival=arrival,
            duration=duration,
            energy_kwh=energy,
            latest_departure=leave,
        )
        for i, (booked_at, arrival, duration, energy, leave) in enumerate(drafts)
    )
    return Scenario(config=config, requests=requests)


def scenario_from_requests(config: ScenarioConfig, requests: Sequence[ScenarioRequest]) -> Scenario:
    """A scenario of given requests (e.g. a station's real bookings), renumbered by booking time."""
    ordered = sorted(requests, key=lambda r: (r.booked_at, r.arrival))
    return Scenario(
        config=config,
        requests=tuple(
            ScenarioRequest(
                tid=i,
                booked_at=r.booked_at,
                arrival=r.arrival,
                duration=r.duration,
                energy_kwh=r.energy_kwh,
                latest_departure=r.latest_departure,
            )
            for i, r in enumerate(ordered)
        ),
    )
