"""Figures the Today tab and the Demand tab show, computed from the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from evcms_desktop.domain.peak import PeakCalendar
from evcms_desktop.store.bookings import bookings_between
from evcms_desktop.store.models import (
    Booking,
    BookingState,
    ChargePoint,
    ChargePointState,
    Station,
    TransactionState,
)
from evcms_desktop.store.sessions import session_energy, sessions_between
from evcms_desktop.store.stations import local_day_bounds, station_calendar


@dataclass(frozen=True)
class TodayCounters:
    vehicles_charged: int
    charging_now: int
    energy_kwh: Decimal
    revenue: Decimal
    average_session: timedelta | None
    average_soc: float | None
    soc_by_connector: dict[str, float] = field(default_factory=dict)
    chargers_online: int = 0
    chargers_total: int = 0


def today_counters(station: Station, now: datetime) -> TodayCounters:
    today = now.astimezone(station_calendar(station).tz).date()
    start, end = local_day_bounds(station, today, today)
    sessions = sessions_between(station, start, end)
    finished = [
        t
        for t in sessions
        if t.state == TransactionState.FINISHED.value and t.stopped_at and t.stopped_at >= start
    ]
    running = [t for t in sessions if t.state == TransactionState.ACTIVE.value]
    energy = sum((session_energy(t) or Decimal(0) for t in finished + running), Decimal(0))
    revenue = sum((t.price_total or Decimal(0) for t in finished), Decimal(0))
    durations = [t.stopped_at - t.started_at for t in finished]
    socs = {
        f"{t.charge_point.ident} #{t.connector_number}": t.last_soc
        for t in running
        if t.last_soc is not None
    }
    approved = ChargePoint.select().where(
        (ChargePoint.station == station) & (ChargePoint.state == ChargePointState.APPROVED.value)
    )
    return TodayCounters(
        vehicles_charged=len(finished),
        charging_now=len(running),
        energy_kwh=energy,
        revenue=revenue,
        average_session=sum(durations, timedelta(0)) / len(durations) if durations else None,
        average_soc=sum(socs.values()) / len(socs) if socs else None,
        soc_by_connector=dict(sorted(socs.items())),
        chargers_online=approved.where(ChargePoint.connected == True).count(),  # noqa: E712
        chargers_total=approved.count(),
    )


@dataclass(frozen=True)
class HourlyDemand:
    """Per local hour of one day: sessions starting and kWh delivered, as asked and as booked."""

    day: date
    peak_on: list[bool]
    sessions_asked: list[int]
    sessions_optimized: list[int]
    energy_asked: list[float]
    energy_optimized: list[float]

    @property
    def hours(self) -> int:
        return len(self.peak_on)

    def peak_on_share(self, energy: list[float]) -> float | None:
        total = sum(energy)
        if not total:
            return None
        return sum(e for e, on in zip(energy, self.peak_on, strict=True) if on) / total


def _hour_starts(calendar: PeakCalendar, day: date) -> list[datetime]:
    """UTC starts of the day's local hours, then the next midnight (23 or 25 on clock changes)."""
    start = datetime.combine(day, time(0), calendar.tz).timestamp()
    end = datetime.combine(day + timedelta(days=1), time(0), calendar.tz).timestamp()
    hours = round((end - start) / 3600)
    return [datetime.fromtimestamp(start + 3600 * h, UTC) for h in range(hours + 1)]


def _spread(
    energy: list[float], bounds: list[datetime], start: datetime, end: datetime, kwh: float
) -> None:
    span = (end - start).total_seconds()
    if span <= 0:
        return
    for h in range(len(bounds) - 1):
        overlap = (min(end, bounds[h + 1]) - max(start, bounds[h])).total_seconds()
        if overlap > 0:
            energy[h] += kwh * overlap / span


def hourly_demand(station: Station, day: date) -> HourlyDemand:
    """The paper's Figures 15 and 16 for one day of bookings (cancelled ones left out)."""
    calendar = station_calendar(station)
    bounds = _hour_starts(calendar, day)
    hours = len(bounds) - 1
    start, end = local_day_bounds(station, day, day)
    bookings: list[Booking] = [
        b
        for b in bookings_between(station, start - timedelta(days=1), end + timedelta(days=1))
        if b.state != BookingState.CANCELLED.value
    ]
    demand = HourlyDemand(
        day=day,
        peak_on=[calendar.is_peak_on(bounds[h], bounds[h + 1]) for h in range(hours)],
        sessions_asked=[0] * hours,
        sessions_optimized=[0] * hours,
        energy_asked=[0.0] * hours,
        energy_optimized=[0.0] * hours,
    )
    for b in bookings:
        kwh = float(b.energy_kwh)
        for begin, finish, counts, energy in (
            (b.requested_start, b.requested_end, demand.sessions_asked, demand.energy_asked),
            (b.start, b.end, demand.sessions_optimized, demand.energy_optimized),
        ):
            for h in range(hours):
                if bounds[h] <= begin < bounds[h + 1]:
                    counts[h] += 1
            _spread(energy, bounds, begin, finish, kwh)
    return demand


def upcoming_bookings(station: Station, now: datetime, limit: int = 10) -> list[Booking]:
    """Bookings still to start or running, soonest first."""
    blocking = [
        s.value for s in (BookingState.CONFIRMED, BookingState.CHECKED_IN, BookingState.CHARGING)
    ]
    return list(
        Booking.select()
        .where((Booking.station == station) & (Booking.end > now) & (Booking.state.in_(blocking)))
        .order_by(Booking.start)
        .limit(limit)
    )
