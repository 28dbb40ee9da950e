"""Every request through the real BookingService twice, on scratch SQLite files.

- The *original* system (the paper's "before"): the booking goes where it was asked and
  is priced with PricingRule.ORIGINAL, its ACM from Algorithm 1's overlap test and the
  peak status of the asked slot. When some connector is free for the asked slot, the
  service's Plan 1 (which then keeps the asked start) is confirmed. When every connector
  is taken, the paper's single charging unit still took the booking and charged the
  "not available" multiplier; we do the same: the booking is written as asked (plan 0,
  overlapped) on the connector it overlaps least, so it keeps blocking later requests.
- The *optimized* system: Algorithms 1 and 2 through BookingService.plan() with the
  OPTIMIZED rule, and the driver confirms the cheapest plan (every plan delivers the asked
  energy, so every plan meets the request).

Each request is made at its own booking time: the service's clock is set to it.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import peewee

from evcms_desktop.domain.availability import overlaps
from evcms_desktop.domain.booking_codes import new_booking_code
from evcms_desktop.domain.peak import PeakCalendar
from evcms_desktop.domain.plans import PlanKind, PlanOutcome
from evcms_desktop.domain.site import Site
from evcms_desktop.domain.tariff import PricingRule, Tariff, availability_cost_multiplier
from evcms_desktop.evaluation.scenario import Scenario, ScenarioRequest
from evcms_desktop.store.bookings import BookingService, busy_intervals
from evcms_desktop.store.database import open_database
from evcms_desktop.store.models import (
    Booking,
    ChargePoint,
    Connector,
    Station,
    database_proxy,
)
from evcms_desktop.store.stations import load_site

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
HOUR = Decimal(3600)


@dataclass(frozen=True)
class StationSetup:
    """What the scratch station is made of: tariff, Peak On calendar and connectors."""

    name: str = "Evaluation"
    tariff: Tariff = field(default_factory=Tariff)
    calendar: PeakCalendar = field(default_factory=PeakCalendar)
    connector_powers_kw: tuple[Decimal, ...] = (Decimal(22),) * 4
    step_minutes: int = 15
    horizon_hours: int = 24

    @classmethod
    def with_connectors(cls, count: int, power_kw: Decimal = Decimal(22)) -> StationSetup:
        return cls(connector_powers_kw=(power_kw,) * count)

    @classmethod
    def from_site(cls, site: Site) -> StationSetup:
        return cls(
            name=site.name,
            tariff=site.tariff,
            calendar=site.calendar,
            connector_powers_kw=tuple(c.max_power_kw for c in site.connectors),
            step_minutes=int(site.step.total_seconds() // 60),
            horizon_hours=int(site.horizon.total_seconds() // 3600),
        )


@dataclass(frozen=True)
class BookedSlot:
    """Where and how a request was booked. power_kw is the rate into the battery."""

    connector_id: int
    connector: str
    connector_max_kw: Decimal
    start: datetime
    end: datetime
    energy_kwh: Decimal
    power_kw: Decimal
    plan: int  # 1..4, or 0 for a booking written as asked over a taken slot
    peak_on: bool
    overlapped: bool
    acm: Decimal
    price: Decimal


@dataclass(frozen=True)
class EvaluationRow:
    """One Table 2 row: the request, its status as asked, and both systems' bookings."""

    request: ScenarioRequest
    peak_on: bool  # PS, Eq. (9): the asked slot touches Peak On
    available: bool  # AS, Eq. (10): some connector was free for the asked slot
    original: BookedSlot
    optimized: BookedSlot | None  # None when no plan could be offered

    @property
    def acm(self) -> Decimal:
        return availability_cost_multiplier(not self.available, self.peak_on)

    @property
    def case(self) -> int:
        """Table 3: 1 Peak On & available, 2 Peak On & not, 3 Peak Off & available, 4 not."""
        return (1 if self.peak_on else 3) + (0 if self.available else 1)

    @property
    def shifted(self) -> bool:
        """SPS, Eq. (11): asked in Peak On, booked by the optimized system wholly in Peak Off."""
        return self.peak_on and self.optimized is not None and not self.optimized.peak_on


@dataclass(frozen=True)
class EvaluationRun:
    scenario: Scenario
    setup: StationSetup
    rows: tuple[EvaluationRow, ...]
    connector_ids: tuple[int, ...]  # of the scratch station, as the rows' slots name them


class _Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _prepare_station(path: Path, setup: StationSetup) -> tuple[peewee.SqliteDatabase, Station]:
    db = open_database(path, station_name=setup.name)
    station = Station.get()
    tariff = setup.tariff
    station.energy_price = tariff.energy_price
    station.max_power_kw = tariff.max_power_kw
    station.efficiency = tariff.efficiency
    station.peak_demand_charge = tariff.peak_demand_charge
    station.service_charge = tariff.service_charge
    station.currency = tariff.currency
    station.timezone = setup.calendar.tz_name
    station.peak_windows = setup.calendar.describe()
    station.step_minutes = setup.step_minutes
    station.horizon_hours = setup.horizon_hours
    station.save()
    for number, power in enumerate(setup.connector_powers_kw, start=1):
        cp = ChargePoint.create(ident=f"EVAL-{number:03d}", station=station)
        Connector.create(charge_point=cp, number=1, max_power_kw=power, status="Available")
    return db, station


def _slot_from_booking(booking: Booking, site: Site) -> BookedSlot:
    connector = site.connector(booking.connector_id)
    assert connector is not None
    return BookedSlot(
        connector_id=booking.connector_id,
        connector=connector.label,
        connector_max_kw=connector.max_power_kw,
        start=booking.start,
        end=booking.end,
        energy_kwh=booking.energy_kwh,
        power_kw=booking.power_kw,
        plan=booking.plan,
        peak_on=booking.peak_on,
        overlapped=booking.overlapped,
        acm=booking.acm,
        price=booking.price_total,
    )


def _unused_code() -> str:
    while True:
        code = new_booking_code()
        if not Booking.select().where(Booking.code == code).exists():
            return code


def _book_as_asked(
    service: BookingService, site: Site, outcome: PlanOutcome, rule: PricingRule
) -> Booking:
    """Write the request on its asked slot, over other bookings if it must (see module doc)."""
    request = outcome.request
    start, end = request.arrival, request.arrival + request.duration
    busy = busy_intervals(service.station, start, end, site.max_session)

    def overlap_seconds(connector_id: int) -> float:
        return sum(
            (min(b, end) - max(a, start)).total_seconds()
            for a, b in busy.get(connector_id, ())
            if overlaps(a, b, start, end)
        )

    connector = min(site.connectors, key=lambda c: overlap_seconds(c.id))
    hours = Decimal(request.duration.total_seconds()) / HOUR
    energy = outcome.baseline.energy_kwh
    power = min(energy / hours, site.rate_kw(connector))
    price = outcome.baseline
    with service.db.atomic():
        return Booking.create(
            code=_unused_code(),
            station=service.station,
            connector=connector.id,
            start=start,
            end=end,
            requested_start=start,
            requested_end=end,
            energy_kwh=energy,
            power_kw=power,
            plan=0,
            peak_on=outcome.requested_peak_on,
            overlapped=outcome.requested_overlapped,
            acm=price.acm,
            rule=rule.value,
            price_energy=price.energy,
            price_time_of_use=price.time_of_use,
            price_service=price.service,
            price_total=price.total,
        )


@dataclass
class _System:
    """One scratch database and the booking service working on it."""

    db: peewee.SqliteDatabase
    service: BookingService
    site: Site
    clock: _Clock


def _open_system(path: Path, setup: StationSetup, now: datetime) -> _System:
    db, station = _prepare_station(path, setup)
    clock = _Clock(now)
    site = load_site(station)
    return _System(
        db=db,
        service=BookingService(db, station, clock=clock),
        site=site,
        clock=clock,
    )


def _run_original(
    requests: Sequence[ScenarioRequest], system: _System, tick: Callable[[], None]
) -> list[tuple[PlanOutcome, BookedSlot]]:
    out: list[tuple[PlanOutcome, BookedSlot]] = []
    rule = PricingRule.ORIGINAL
    for request in requests:
        system.clock.now = request.booked_at
        outcome = system.service.plan(request.plan_request(), rule)
        asked = outcome.plan(PlanKind.DURATION)
        if asked is not None and asked.start == request.arrival and not asked.overlapped:
            booking = system.service.confirm(outcome, asked, rule=rule)
        else:
            booking = _book_as_asked(system.service, system.site, outcome, rule)
        out.append((outcome, _slot_from_booking(booking, system.site)))
        tick()
    return out


def _run_optimized(
    requests: Sequence[ScenarioRequest], system: _System, tick: Callable[[], None]
) -> list[BookedSlot | None]:
    out: list[BookedSlot | None] = []
    for request in requests:
        system.clock.now = request.booked_at
        outcome = system.service.plan(request.plan_request(), PricingRule.OPTIMIZED)
        chosen = outcome.cheapest
        if chosen is None:
            log.info("TID %d: no plan could be offered (%s)", request.tid, outcome.unavailable)
            out.append(None)
        else:
            booking = system.service.confirm(outcome, chosen, rule=PricingRule.OPTIMIZED)
            out.append(_slot_from_booking(booking, system.site))
        tick()
    return out


def run_evaluation(
    scenario: Scenario,
    setup: StationSetup,
    *,
    workdir: Path | None = None,
    progress: Progress | None = None,
) -> EvaluationRun:
    """Book the scenario in the original and the optimized system; one row per request.

    The store's models are bound to each scratch file in turn and re-bound to whatever
    database they were bound to before on return. Binding is process-wide, so do not run
    this in a thread of a process whose other threads use the store (the console runs it
    in a child process).
    """
    requests = scenario.requests
    total = 2 * len(requests)
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    previous = database_proxy.obj
    first = min(r.booked_at for r in requests) - timedelta(minutes=1)
    try:
        with tempfile.TemporaryDirectory(prefix="evcms-eval-", dir=workdir) as tmp:
            original_system = _open_system(Path(tmp) / "original.sqlite3", setup, first)
            try:
                original = _run_original(requests, original_system, tick)
            finally:
                original_system.db.close()
            optimized_system = _open_system(Path(tmp) / "optimized.sqlite3", setup, first)
            connector_ids = tuple(c.id for c in optimized_system.site.connectors)
            try:
                optimized = _run_optimized(requests, optimized_system, tick)
            finally:
                optimized_system.db.close()
    finally:
        database_proxy.initialize(previous)
    rows = tuple(
        EvaluationRow(
            request=request,
            peak_on=outcome.requested_peak_on,
            available=not outcome.requested_overlapped,
            original=slot,
            optimized=opt,
        )
        for request, (outcome, slot), opt in zip(requests, original, optimized, strict=True)
    )
    return EvaluationRun(scenario=scenario, setup=setup, rows=rows, connector_ids=connector_ids)
