"""The site scheduler: a linear programme over 15-minute slots, solved by HiGHS.

Variables: p[b, t] >= 0, the grid-side kW booking b draws in slot t of its window, at most
its connector's Pmax; u[b] >= 0, the kWh of b left undelivered (so an impossible day still
has a solution, and the bookings that cannot be met are named, not crashed on).

    energy   sum_t p[b, t] * h * Ceff + u[b] = E[b]          for every booking
    site     sum_b p[b, t] <= limit                           for every slot

Lexicographic objective, solved in two passes:
1. minimise  UNMET_PENALTY * sum w[b] u[b]  +  the energy-weighted peak demand charges
   (model.py); the penalty dwarfs any charge, so meeting bookings comes first, and its
   weight w falls from 2 to 1 in the order the bookings are given (first come, first
   served: when the site cannot serve everyone, the shortfall lands on the last ones);
2. keep pass 1's objective within a relative 1e-6 of its optimum and minimise the site
   peak z (sum_b p[b, t] <= z <= limit).

A booking counts as met when it is short by no more than 1e-6 kWh (relative above 1 kWh):
HiGHS keeps equalities to about 1e-7.

Fallback for large days (more than `max_lp_variables` p's, or when HiGHS does not report
an optimum): earliest deadline first, each booking water-filling the cheapest slots of its
window up to a common level (valley filling), within the site limit. It respects every
constraint but is not optimal.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Hashable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

from evcms_desktop.schedule.connectors import assign_connectors
from evcms_desktop.schedule.model import (
    BookingPlan,
    Schedule,
    ScheduleBooking,
    ScheduleProblem,
    Unmet,
    acm_weights,
    horizon,
    slot_grid,
    window_slots,
)
from evcms_desktop.schedule.placement import place_sessions

log = logging.getLogger(__name__)

Placement = Literal["window", "fit"]
UNMET_PENALTY = 1000.0  # GBP per kWh left undelivered
MAX_LP_VARIABLES = 400_000
_TOL = 1e-6


@dataclass
class _Layout:
    """The bookings that got a connector, and where their windows fall on the slot grid."""

    bookings: list[ScheduleBooking]
    firsts: np.ndarray
    lasts: np.ndarray
    caps: np.ndarray  # kW
    needs: np.ndarray  # kWh into the battery
    weights: list[np.ndarray]  # ACM of each slot of each window
    k: float  # kWh into the battery per kW drawn for one slot
    pdc: float  # the peak demand charge, GBP

    @property
    def lengths(self) -> np.ndarray:
        return self.lasts - self.firsts


def _lp(layout: _Layout, limit: float | None, slots: int) -> list[np.ndarray] | None:
    """The two HiGHS passes; None when HiGHS does not report an optimum."""
    b_count = len(layout.bookings)
    lengths = layout.lengths
    n = int(lengths.sum())
    book_of = np.repeat(np.arange(b_count), lengths)
    slot_of = np.concatenate(
        [np.arange(f, last) for f, last in zip(layout.firsts, layout.lasts, strict=True)]
        or [np.zeros(0, dtype=int)]
    ).astype(int)
    weights = np.concatenate(layout.weights or [np.zeros(0)])
    needs = layout.needs
    safe_needs = np.where(needs > 0, needs, 1.0)
    # Earlier bookings weigh up to twice as much: a shortfall goes to the latest ones first
    # rather than being spread thinly over many.
    priority = 2.0 - np.arange(b_count) / max(b_count, 1)
    cost = np.concatenate(
        [layout.pdc * weights * layout.k / safe_needs[book_of], UNMET_PENALTY * priority]
    )
    a_eq = sparse.hstack(
        [
            sparse.csr_array((np.full(n, layout.k), (book_of, np.arange(n))), shape=(b_count, n)),
            sparse.identity(b_count, format="csr"),
        ],
        format="csr",
    )
    used = np.unique(slot_of)
    row_of_slot = np.full(slots, -1)
    row_of_slot[used] = np.arange(len(used))
    site = sparse.csr_array(
        (np.ones(n), (row_of_slot[slot_of], np.arange(n))), shape=(len(used), n)
    )
    p_bounds = np.column_stack([np.zeros(n), np.repeat(layout.caps, lengths)])
    u_bounds = np.column_stack([np.zeros(b_count), needs])
    bounds = np.vstack([p_bounds, u_bounds])
    site_b = sparse.hstack([site, sparse.csr_array((len(used), b_count))], format="csr")
    first = linprog(
        cost,
        A_ub=site_b if limit is not None else None,
        b_ub=np.full(len(used), limit) if limit is not None else None,
        A_eq=a_eq,
        b_eq=needs,
        bounds=bounds,
        method="highs",
    )
    if first.status != 0:
        log.warning("HiGHS pass 1 ended with status %s: %s", first.status, first.message)
        return None
    bound = first.fun + _TOL * max(1.0, abs(first.fun))
    peak_rows = sparse.hstack([site_b, sparse.csr_array(-np.ones((len(used), 1)))], format="csr")
    cost_row = sparse.csr_array(np.append(cost, 0.0).reshape(1, -1))
    second = linprog(
        np.append(np.zeros(n + b_count), 1.0),
        A_ub=sparse.vstack([peak_rows, cost_row], format="csr"),
        b_ub=np.append(np.zeros(len(used)), bound),
        A_eq=sparse.hstack([a_eq, sparse.csr_array((b_count, 1))], format="csr"),
        b_eq=needs,
        bounds=np.vstack([bounds, [[0.0, limit if limit is not None else np.inf]]]),
        method="highs",
    )
    x = second.x if second.status == 0 else first.x
    if second.status != 0:
        log.warning("HiGHS pass 2 ended with status %s; keeping pass 1", second.status)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return [x[offsets[i] : offsets[i + 1]] for i in range(b_count)]


def _fill(load: np.ndarray, slots: np.ndarray, caps: np.ndarray, amount: float) -> np.ndarray:
    """Raise the lowest loads of `slots` to a common level until `amount` kW-slots are added."""
    if caps.sum() <= amount:
        return caps
    low, high = float(load[slots].min()), float((load[slots] + caps).max())
    for _ in range(60):
        level = (low + high) / 2
        if np.clip(level - load[slots], 0, caps).sum() < amount:
            low = level
        else:
            high = level
    return np.clip(high - load[slots], 0, caps)


def _greedy(layout: _Layout, limit: float | None, slots: int) -> list[np.ndarray]:
    """Earliest deadline first, valley filling the cheapest slots of each window."""
    load = np.zeros(slots)
    out: list[np.ndarray] = [np.zeros(int(n)) for n in layout.lengths]
    for i in np.lexsort((layout.firsts, layout.lasts)):
        first, last = int(layout.firsts[i]), int(layout.lasts[i])
        if last <= first or layout.needs[i] <= 0:
            continue
        window = np.arange(first, last)
        remaining = layout.needs[i] / layout.k
        weights = np.round(layout.weights[i], 9)
        for level in np.unique(weights):
            if remaining <= _TOL:
                break
            mask = weights == level
            group = window[mask]
            headroom = np.inf if limit is None else np.maximum(limit - load[group], 0)
            caps = np.minimum(layout.caps[i], headroom)
            added = _fill(load, group, caps, remaining)
            load[group] += added
            out[i][mask] = added
            remaining -= float(added.sum())
    return out


def _layout(
    problem: ScheduleProblem, bookings: list[ScheduleBooking], start: datetime, share: np.ndarray
) -> _Layout:
    windows = [window_slots(b, start, problem.slot) for b in bookings]
    tariff = problem.tariff
    return _Layout(
        bookings=bookings,
        firsts=np.array([w[0] for w in windows], dtype=int),
        lasts=np.array([w[1] for w in windows], dtype=int),
        caps=np.array([float(b.max_power_kw) for b in bookings]),
        needs=np.array([float(b.energy_kwh) for b in bookings]),
        weights=[
            acm_weights(share[f:last], b.overlapped)
            for b, (f, last) in zip(bookings, windows, strict=True)
        ],
        k=problem.slot.total_seconds() / 3600 * float(tariff.efficiency),
        pdc=float(tariff.peak_demand_charge),
    )


def _within_limits(
    layout: _Layout, powers: list[np.ndarray], limit: float | None, slots: int
) -> list[np.ndarray]:
    """Clear the solver's tolerance: no power above its cap, no slot above the site limit."""
    powers = [np.clip(p, 0.0, cap) for p, cap in zip(powers, layout.caps, strict=True)]
    if limit is None:
        return powers
    load = np.zeros(slots)
    for p, first in zip(powers, layout.firsts, strict=True):
        load[first : first + len(p)] += p
    factor = np.where(load > limit, limit / np.maximum(load, limit), 1.0)
    return [p * factor[f : f + len(p)] for p, f in zip(powers, layout.firsts, strict=True)]


def _why_unmet(layout: _Layout, i: int) -> str:
    length = int(layout.lengths[i])
    if length == 0:
        return "its window holds no whole 15-minute slot"
    most = layout.caps[i] * length * layout.k
    if most + _TOL < layout.needs[i]:
        return f"its window allows at most {most:.1f} kWh at its connector's power"
    return "the site limit leaves too little power in its window"


def _plan(
    problem: ScheduleProblem,
    layout: _Layout,
    i: int,
    powers: np.ndarray,
    share: np.ndarray,
    start: datetime,
    connector_id: int,
) -> BookingPlan:
    booking = layout.bookings[i]
    powers = np.where(powers > _TOL, powers, 0.0)
    first = int(layout.firsts[i])
    energy = powers * layout.k
    delivered = float(energy.sum())
    acm = float((energy * layout.weights[i]).sum() / delivered) if delivered > 0 else 0.0
    met = delivered + _TOL * max(1.0, float(booking.energy_kwh)) >= float(booking.energy_kwh)
    billed = booking.energy_kwh if met else Decimal(f"{delivered:.3f}")
    price = problem.tariff.price(billed, Decimal(f"{acm:.4f}"))
    return BookingPlan(
        booking_id=booking.id,
        connector_id=connector_id,
        first_slot=start + first * problem.slot,
        slot=problem.slot,
        powers_kw=tuple(float(p) for p in powers),
        delivered_kwh=delivered,
        peak_on_kwh=float((energy * share[first : int(layout.lasts[i])]).sum()),
        cost=price.total,
    )


def solve_schedule(
    problem: ScheduleProblem,
    *,
    placement: Placement = "window",
    max_lp_variables: int = MAX_LP_VARIABLES,
) -> Schedule:
    """Schedule every booking it can; the ones it cannot meet in full are in `unmet`.

    placement "window": a car holds its connector for its whole window (bookings already
    placed by the booking service); "fit": the schedule also chooses each car's session
    inside its window (placement.py), then the LP decides the power.
    """
    began = time.perf_counter()
    slot = problem.slot
    if not problem.bookings:
        empty = np.zeros(0)
        return Schedule(datetime(1970, 1, 1, tzinfo=UTC), slot, empty, empty, {}, (), "lp", 0.0)
    unmet: list[Unmet] = []
    if placement == "fit":
        sessions, unmet = place_sessions(problem)
        problem = replace(problem, bookings=tuple(sessions))
        if not problem.bookings:
            empty = np.zeros(0)
            seconds = time.perf_counter() - began
            return Schedule(
                datetime(1970, 1, 1, tzinfo=UTC),
                slot,
                empty,
                empty,
                {},
                tuple(unmet),
                "lp",
                seconds,
            )
    assigned, not_assigned = assign_connectors(problem.bookings, problem.connector_ids)
    unmet += not_assigned
    start, slots = horizon(problem.bookings, slot)
    share = slot_grid(problem.calendar, start, slots, slot)
    active = [b for b in problem.bookings if b.id in assigned]
    layout = _layout(problem, active, start, share)
    limit = float(problem.site_limit_kw) if problem.site_limit_kw is not None else None
    powers: list[np.ndarray] | None = None
    method = "greedy"
    if int(layout.lengths.sum()) <= max_lp_variables:
        powers = _lp(layout, limit, slots)
        method = "lp" if powers is not None else "greedy"
    if powers is None:
        powers = _greedy(layout, limit, slots)
    powers = _within_limits(layout, powers, limit, slots)
    plans: dict[Hashable, BookingPlan] = {}
    site_kw = np.zeros(slots)
    for i, booking in enumerate(active):
        plan = _plan(problem, layout, i, powers[i], share, start, assigned[booking.id])
        plans[booking.id] = plan
        first = int(layout.firsts[i])
        site_kw[first : first + len(plan.powers_kw)] += plan.powers_kw
        shortfall = float(booking.energy_kwh) - plan.delivered_kwh
        if shortfall > _TOL * max(1.0, float(booking.energy_kwh)):
            unmet.append(Unmet(booking.id, _why_unmet(layout, i), shortfall))
    seconds = time.perf_counter() - began
    log.info("Scheduled %d bookings by %s in %.3f s", len(active), method, seconds)
    return Schedule(
        start=start,
        slot=slot,
        site_kw=site_kw,
        peak_on=share,
        plans=plans,
        unmet=tuple(unmet),
        method=method,
        seconds=seconds,
    )
