"""Site load on a 15-minute grid, its metrics, and the per-hour series of Figures 15 and 16.

A booked session draws power_kw / Ceff from the grid (the connector's Pmax at full rate)
over its slot. Every system is put on one common grid, so averages and peak-to-average
ratios compare like with like.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from evcms_desktop.domain.peak import PeakCalendar
from evcms_desktop.schedule.model import SLOT, floor_to_slot, slot_grid


@dataclass(frozen=True)
class Grid:
    start: datetime
    slots: int
    calendar: PeakCalendar
    slot: timedelta = SLOT

    @property
    def slot_hours(self) -> float:
        return self.slot.total_seconds() / 3600

    def peak_share(self) -> np.ndarray:
        return slot_grid(self.calendar, self.start, self.slots, self.slot)

    def local_hours(self) -> np.ndarray:
        return np.array(
            [self.calendar.to_local(self.start + i * self.slot).hour for i in range(self.slots)]
        )

    def local_days(self) -> np.ndarray:
        return np.array(
            [
                self.calendar.to_local(self.start + i * self.slot).date().toordinal()
                for i in range(self.slots)
            ]
        )

    @classmethod
    def covering(
        cls, intervals: Sequence[tuple[datetime, datetime]], calendar: PeakCalendar
    ) -> Grid:
        start = floor_to_slot(min(a for a, _ in intervals), SLOT)
        end = max(b for _, b in intervals)
        return cls(start=start, slots=max(1, -(-(end - start) // SLOT)), calendar=calendar)


def interval_powers(grid: Grid, start: datetime, end: datetime, kw: float) -> np.ndarray:
    """kW per slot of the grid for a constant draw over [start, end) (partial slots averaged)."""
    out = np.zeros(grid.slots)
    first = max(0, (start - grid.start) // grid.slot)
    last = min(grid.slots, -(-(end - grid.start) // grid.slot))
    seconds = grid.slot.total_seconds()
    for i in range(first, last):
        s = grid.start + i * grid.slot
        covered = (min(end, s + grid.slot) - max(start, s)).total_seconds()
        out[i] = kw * covered / seconds
    return out


def place(grid: Grid, first_slot: datetime, powers_kw: Sequence[float]) -> np.ndarray:
    """A per-slot profile starting at `first_slot` (on the grid's slot boundaries), on the grid."""
    out = np.zeros(grid.slots)
    offset = (first_slot - grid.start) // grid.slot
    for j, p in enumerate(powers_kw):
        if 0 <= offset + j < grid.slots:
            out[offset + j] = p
    return out


@dataclass(frozen=True)
class LoadMetrics:
    peak_kw: float
    average_kw: float
    energy_kwh: float  # drawn from the grid
    peak_on_share: float  # of that energy, the share drawn in Peak On

    @property
    def peak_to_average(self) -> float:
        return self.peak_kw / self.average_kw if self.average_kw > 0 else 0.0


def load_metrics(grid: Grid, sessions: np.ndarray) -> LoadMetrics:
    """Metrics of the site load; `sessions` is (sessions x slots) kW."""
    site = sessions.sum(axis=0) if sessions.size else np.zeros(grid.slots)
    energy = float(site.sum() * grid.slot_hours)
    on = float((site * grid.peak_share()).sum() * grid.slot_hours)
    return LoadMetrics(
        peak_kw=float(site.max(initial=0.0)),
        average_kw=energy / (grid.slots * grid.slot_hours),
        energy_kwh=energy,
        peak_on_share=on / energy if energy > 0 else 0.0,
    )


@dataclass(frozen=True)
class HourlyDemand:
    """Per local hour of day, summed over the days: sessions charging and energy drawn.

    A session counts once in each (day, hour) it draws power in; that hour counts as
    Peak On when any of its charging slots does.
    """

    sessions: np.ndarray
    sessions_peak_on: np.ndarray
    energy_kwh: np.ndarray
    energy_peak_on_kwh: np.ndarray

    @property
    def sessions_peak_off(self) -> np.ndarray:
        return self.sessions - self.sessions_peak_on

    @property
    def energy_peak_off_kwh(self) -> np.ndarray:
        return self.energy_kwh - self.energy_peak_on_kwh


def hourly_demand(grid: Grid, sessions: np.ndarray) -> HourlyDemand:
    hours = grid.local_hours()
    days = grid.local_days()
    share = grid.peak_share()
    energy = np.zeros(24)
    energy_on = np.zeros(24)
    count = np.zeros(24)
    count_on = np.zeros(24)
    if sessions.size:
        per_slot = sessions.sum(axis=0) * grid.slot_hours
        np.add.at(energy, hours, per_slot)
        np.add.at(energy_on, hours, per_slot * share)
        key = (days - days.min()) * 24 + hours
        active = sessions > 1e-9
        for row in active:
            slots = np.flatnonzero(row)
            if not len(slots):
                continue
            keys = np.unique(key[slots])
            np.add.at(count, keys % 24, 1)
            on = np.array([share[slots[key[slots] == k]].max() > 0 for k in keys])
            np.add.at(count_on, keys[on] % 24, 1)
    return HourlyDemand(
        sessions=count,
        sessions_peak_on=count_on,
        energy_kwh=energy,
        energy_peak_on_kwh=energy_on,
    )
