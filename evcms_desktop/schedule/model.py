"""Inputs and outputs of the site scheduler, and the cost model it minimises.

Power is what the charger draws from the site (kW, grid side), capped by the connector's
Pmax; the battery receives power * Ceff, so a booking's energy (kWh into the battery, as
in Table 2's Pow) needs energy / Ceff from the grid.

Cost model (Eq. 8 spread over 15-minute slots): a booking pays Ec * E + SC as always, and
its peak demand charge is energy-weighted: PDC times the average, over its energy, of the
ACM of the slot each kWh was delivered in, ACM = Table 1 with the booking's availability
status (overlapped or not, as the booking service decided) and the slot's peak status.
A session wholly in Peak On or wholly in Peak Off pays exactly what Eq. (8) charges it.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np

from evcms_desktop.domain.peak import PeakCalendar
from evcms_desktop.domain.tariff import Tariff

SLOT = timedelta(minutes=15)


@dataclass(frozen=True)
class ScheduleBooking:
    """A booking to schedule: its energy inside [earliest, latest) at no more than max_power."""

    id: Hashable
    earliest: datetime
    latest: datetime
    energy_kwh: Decimal
    max_power_kw: Decimal = Decimal(22)
    connector_id: int | None = None
    overlapped: bool = False


@dataclass(frozen=True)
class ScheduleProblem:
    bookings: tuple[ScheduleBooking, ...]
    connector_ids: tuple[int, ...]
    site_limit_kw: Decimal | None = None
    tariff: Tariff = field(default_factory=Tariff)
    calendar: PeakCalendar = field(default_factory=PeakCalendar)
    slot: timedelta = SLOT
    # Each connector's power, in the order of connector_ids; empty: every connector is
    # alike. With powers that differ, a booking keeps to connectors of its own one's power.
    connector_power_kw: tuple[Decimal, ...] = ()


@dataclass(frozen=True)
class Unmet:
    """A booking the schedule cannot serve in full, and why."""

    booking_id: Hashable
    reason: str
    shortfall_kwh: float


@dataclass(frozen=True)
class BookingPlan:
    """The schedule of one booking: grid-side kW per slot from `first_slot` on."""

    booking_id: Hashable
    connector_id: int
    first_slot: datetime
    slot: timedelta
    powers_kw: tuple[float, ...]
    delivered_kwh: float
    peak_on_kwh: float
    cost: Decimal

    @property
    def start(self) -> datetime | None:
        """The first slot with power: when the car starts drawing."""
        active = [i for i, p in enumerate(self.powers_kw) if p > 0]
        return self.first_slot + active[0] * self.slot if active else None

    @property
    def end(self) -> datetime | None:
        active = [i for i, p in enumerate(self.powers_kw) if p > 0]
        return self.first_slot + (active[-1] + 1) * self.slot if active else None


@dataclass(frozen=True)
class Bound:
    """What no schedule under the same site limit can beat: the relaxation's optimum.

    unmet_kwh is the least energy any schedule leaves short; cost, when nothing need be
    short, the least any schedule that meets every booking can cost (GBP, rounded down).
    short_ids: the bookings the relaxation's own least-short schedule leaves short.
    tight_slots: the starts of the slots where the site limit is what leaves energy short
    (more power there would leave less short: the least-short LP's dual is not zero).
    """

    unmet_kwh: float
    cost: Decimal | None
    short_ids: frozenset[Hashable] = frozenset()
    tight_slots: frozenset[datetime] = frozenset()


@dataclass(frozen=True)
class Schedule:
    """The site's schedule: per-booking plans, the site's load per slot and what is unmet."""

    start: datetime
    slot: timedelta
    site_kw: np.ndarray
    peak_on: np.ndarray  # share of each slot in Peak On, 0..1
    plans: dict[Hashable, BookingPlan]
    unmet: tuple[Unmet, ...]
    # "milp", "profiles" (power per slot), "lp" (HiGHS) or "greedy" (the fallback); "milp" and
    # "profiles" say "(k of n days greedy)" when HiGHS found nothing in time for k days
    method: str
    seconds: float
    bound: Bound | None = None

    @property
    def gap(self) -> Decimal | None:
        """How far the cost may be above the optimum, as a share of the bound."""
        if self.bound is None or self.bound.cost is None or self.unmet or self.bound.cost <= 0:
            return None
        return (self.total_cost - self.bound.cost) / self.bound.cost

    @property
    def feasible(self) -> bool:
        return not self.unmet

    @property
    def short_kwh(self) -> float:
        """The energy the schedule leaves short, over every unmet booking."""
        return sum(u.shortfall_kwh for u in self.unmet)

    @property
    def total_cost(self) -> Decimal:
        return sum((p.cost for p in self.plans.values()), Decimal(0))

    @property
    def peak_kw(self) -> float:
        return float(self.site_kw.max(initial=0.0))


def slot_grid(calendar: PeakCalendar, start: datetime, slots: int, slot: timedelta) -> np.ndarray:
    """Share of each slot [start + i*slot, ...) that lies in Peak On."""
    end = start + slots * slot
    shares = np.zeros(slots)
    seconds = slot.total_seconds()
    for a, b in calendar.windows_utc(start, end):
        first = max(0, int((a - start) // slot))
        last = min(slots, -(-(b - start) // slot))
        for i in range(first, last):
            s = start + i * slot
            covered = (min(b, s + slot) - max(a, s)).total_seconds()
            if covered > 0:
                shares[i] += covered / seconds
    return np.minimum(shares, 1.0)


def acm_weights(peak_share: np.ndarray, overlapped: bool) -> np.ndarray:
    """Table 1 per slot: the ACM of a kWh delivered in each slot, for this availability."""
    on, off = (1.0, 0.25) if overlapped else (0.5, 0.0)
    return peak_share * on + (1.0 - peak_share) * off


def floor_to_slot(moment: datetime, slot: timedelta) -> datetime:
    epoch = datetime(2000, 1, 1, tzinfo=moment.tzinfo)
    return epoch + ((moment - epoch) // slot) * slot


def window_slots(booking: ScheduleBooking, start: datetime, slot: timedelta) -> tuple[int, int]:
    """Slots wholly inside the booking's window, as [first, last) indexes from `start`."""
    first = -(-(booking.earliest - start) // slot)
    last = (booking.latest - start) // slot
    return first, max(first, last)


def horizon(bookings: Sequence[ScheduleBooking], slot: timedelta) -> tuple[datetime, int]:
    start = floor_to_slot(min(b.earliest for b in bookings), slot)
    end = max(b.latest for b in bookings)
    return start, max(1, -(-(end - start) // slot))
