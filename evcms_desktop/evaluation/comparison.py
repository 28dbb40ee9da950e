"""The paper's greedy shift against the site schedule, on the same scenario.

Each request becomes a booking of the site schedule with the same energy and availability
status, in order of booking time (first come, first served when the site is short). The
schedule is the better (least energy short, then cheapest, then lowest peak) of two:

- "booked": every car keeps the connector and start the optimized system booked for it
  and may stay plugged in after its slot until its driver's latest departure, unless its
  connector is booked next; the LP decides the power. The
  greedy's own schedule is one of its solutions, so this is never worse than the greedy
  under the same cost model.
- "fit": the MILP (schedule/milp.py) chooses each car's connector and one steady session
  inside a time its driver is known to be there: the stay (arrival to latest departure)
  and the booked slot the driver accepted. When they meet or touch, the car is there
  throughout their hull; when they do not, the car is away between them and its session
  keeps to the booked slot (in the evaluation's scenario the stay is never cheaper, and so
  the greedy's own schedule, and every "booked" window, lie inside the "fit" windows).

    stay       = [arrival, latest departure]
    booked     = [booked start, min(next start on the connector, latest departure)]
                 if the stay meets the booked slot, else the booked slot
    fit        = hull(stay, booked slot) if they meet, else the booked slot
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from math import ceil

import numpy as np

from evcms_desktop.evaluation.demand import (
    Grid,
    HourlyDemand,
    LoadMetrics,
    hourly_demand,
    interval_powers,
    load_metrics,
    place,
)
from evcms_desktop.evaluation.runner import BookedSlot, EvaluationRow, EvaluationRun
from evcms_desktop.evaluation.tables import CASES, mean
from evcms_desktop.schedule import Schedule, ScheduleBooking, ScheduleProblem, solve_schedule
from evcms_desktop.schedule.milp import MilpOptions
from evcms_desktop.schedule.model import (
    BookingPlan,
    Unmet,
    acm_weights,
    horizon,
    slot_grid,
    window_slots,
)
from evcms_desktop.schedule.optimal import (
    FrontierPoint,
    Phase,
    cost_peak_frontier,
    keeps_power_bound,
    monotone,
    plan_site,
)

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
BOOKED_BY = "booked slots"  # what made a "booked" schedule, before how its power was chosen
SCHEDULE_BUDGET_S = 30.0  # wall-clock seconds for the site schedule or the whole frontier


def _booking(
    row: EvaluationRow, slot: BookedSlot, earliest: datetime, latest: datetime
) -> ScheduleBooking:
    return ScheduleBooking(
        id=row.request.tid,
        earliest=earliest,
        latest=latest,
        energy_kwh=slot.energy_kwh,
        max_power_kw=slot.connector_max_kw,
        connector_id=slot.connector_id,
        overlapped=slot.overlapped,
    )


def _meets(row: EvaluationRow, slot: BookedSlot) -> bool:
    """Whether the driver's stay and the booked slot meet or touch: one visit, not two."""
    return slot.start <= row.request.latest_departure and row.request.arrival <= slot.end


def fit_window(row: EvaluationRow, slot: BookedSlot) -> tuple[datetime, datetime]:
    """The "fit" window of a booking: a time its driver is there throughout (see above)."""
    arrival, leave = row.request.arrival, row.request.latest_departure
    if _meets(row, slot):
        return min(arrival, slot.start), max(leave, slot.end)
    return slot.start, slot.end


def schedule_problem(
    run: EvaluationRun, site_limit_kw: Decimal | None, placement: str = "fit"
) -> ScheduleProblem:
    """The scenario as a site-schedule problem, with the windows of `placement` (see above)."""
    booked = [(r, r.optimized) for r in run.rows if r.optimized is not None]
    booked_at = {r.request.tid: (r.request.booked_at, r.request.tid) for r, _ in booked}
    bookings: list[ScheduleBooking] = []
    if placement == "fit":
        for row, slot in booked:
            bookings.append(_booking(row, slot, *fit_window(row, slot)))
    else:
        by_connector: dict[int, list[tuple[EvaluationRow, BookedSlot]]] = defaultdict(list)
        for row, slot in booked:
            by_connector[slot.connector_id].append((row, slot))
        for pairs in by_connector.values():
            pairs.sort(key=lambda pair: pair[1].start)
            for i, (row, slot) in enumerate(pairs):
                latest = slot.end
                if _meets(row, slot):  # the car may stay plugged in until its driver leaves
                    latest = max(latest, row.request.latest_departure)
                if i + 1 < len(pairs):
                    latest = min(latest, pairs[i + 1][1].start)
                bookings.append(_booking(row, slot, slot.start, latest))
    return ScheduleProblem(
        bookings=tuple(sorted(bookings, key=lambda b: booked_at[b.id])),
        connector_ids=run.connector_ids,
        site_limit_kw=site_limit_kw,
        tariff=run.setup.tariff,
        calendar=run.setup.calendar,
    )


def _rank(schedule: Schedule) -> tuple[float, Decimal, float]:
    return (round(schedule.short_kwh, 3), schedule.total_cost, round(schedule.peak_kw, 3))


def site_schedule(
    run: EvaluationRun,
    site_limit_kw: Decimal | None,
    *,
    frontier: bool = False,
    options: MilpOptions | None = None,
    progress: Progress | None = None,
    phase: Phase | None = None,
) -> tuple[Schedule, str, tuple[FrontierPoint, ...]]:
    """The better of the "booked" and the "fit" schedules, which one, and the frontier.

    With `frontier`, the "fit" schedule is the frontier's least-cost point and the other
    points follow it; without, the frontier is empty. `options.time_budget_s` is the wall
    clock of the whole: what the "booked" schedule takes is not left for the "fit" one.
    """
    options = options or MilpOptions(time_budget_s=SCHEDULE_BUDGET_S, power_profiles=True)
    began = time.perf_counter()
    fit = schedule_problem(run, site_limit_kw, "fit")
    if phase is not None:
        phase("scheduling the booked slots", None)
    booked = _booked_schedule(run, site_limit_kw)
    left = options.time_budget_s - (time.perf_counter() - began)
    options = replace(options, time_budget_s=max(0.0, left))
    points: tuple[FrontierPoint, ...] = ()
    if frontier:
        swept = cost_peak_frontier(fit, options, progress=progress, phase=phase)
        first = swept[0]
        if _rank(booked) < _rank(first.schedule):  # its windows lie inside the fit ones
            swept[0] = FrontierPoint(first.limit_kw, replace(booked, bound=first.schedule.bound))
        points = tuple(monotone(swept))
        best_fit = first.schedule
    else:
        if phase is not None:
            phase("scheduling the drivers' windows", options.time_budget_s)
        best_fit = plan_site(fit, options, progress=progress)
    if _rank(booked) < _rank(best_fit):  # the fit bound holds: its windows lie inside
        log.info(
            "The site schedule is the booked slots' (%s): it ranks above the one over the"
            " drivers' windows (%s)",
            booked.method,
            best_fit.method,
        )
        return replace(booked, bound=best_fit.bound), "booked", points
    return best_fit, "fit", points


def _booked_schedule(run: EvaluationRun, site_limit_kw: Decimal | None) -> Schedule:
    """The LP over the "booked" windows, if its sessions keep the bound on power changes.

    The LP may switch a charger's power from slot to slot, which no site would send; then
    the better of the heuristic's steady sessions over the same windows (each booking the
    cheapest full-power session that fits) and the greedy's own sessions, when they keep
    the site limit: never worse than the greedy, however little time the solver had.
    """
    problem = schedule_problem(run, site_limit_kw, "booked")
    booked = solve_schedule(problem, placement="window")
    if keeps_power_bound(booked):
        return replace(booked, method=f"{BOOKED_BY}, {booked.method} power")
    steady = plan_site(problem, MilpOptions(time_budget_s=0), compete=False, with_bound=False)
    steady = replace(steady, method=f"{BOOKED_BY}, cheapest steady sessions")
    own = greedy_schedule(problem)
    keeps_limit = site_limit_kw is None or own.peak_kw <= float(site_limit_kw) + 1e-6
    if keeps_limit and _rank(own) < _rank(steady):
        return replace(own, method=f"{BOOKED_BY}, the greedy's sessions")
    return steady


def greedy_schedule(problem: ScheduleProblem) -> Schedule:
    """The greedy's own sessions over "booked" windows, priced by the schedule's cost model.

    Each booking starts at its booked start on its booked connector and draws one steady
    power over the fewest slots its connector's power allows (so inside its booked slot).
    """
    tariff, slot = problem.tariff, problem.slot
    start, slots = horizon(problem.bookings, slot)
    share = slot_grid(problem.calendar, start, slots, slot)
    per_kw = slot.total_seconds() / 3600 * float(tariff.efficiency)  # kWh a slot per kW
    site_kw = np.zeros(slots)
    plans: dict[Hashable, BookingPlan] = {}
    unmet: list[Unmet] = []
    for b in problem.bookings:
        first, last = window_slots(b, start, slot)
        energy, cap = float(b.energy_kwh), float(b.max_power_kw)
        n = min(last - first, ceil(energy / (cap * per_kw) - 1e-9)) if cap > 0 else 0
        power = min(cap, energy / (per_kw * n)) if n > 0 else 0.0
        delivered = power * per_kw * n
        met = delivered >= energy - 1e-6 * max(1.0, energy)
        if not met:
            short = energy - delivered
            unmet.append(Unmet(b.id, "its booked slot is too short for its energy", short))
        if n == 0:
            continue
        weights = acm_weights(share[first : first + n], b.overlapped)
        billed = b.energy_kwh if met else Decimal(f"{delivered:.3f}")
        price = tariff.price(billed, Decimal(f"{float(weights.mean()):.4f}"))
        plans[b.id] = BookingPlan(
            booking_id=b.id,
            connector_id=b.connector_id if b.connector_id is not None else problem.connector_ids[0],
            first_slot=start + first * slot,
            slot=slot,
            powers_kw=(power,) * n,
            delivered_kwh=delivered,
            peak_on_kwh=float(share[first : first + n].sum()) * power * per_kw,
            cost=price.total,
        )
        site_kw[first : first + n] += power
    return Schedule(
        start=start,
        slot=slot,
        site_kw=site_kw,
        peak_on=share,
        plans=plans,
        unmet=tuple(unmet),
        method="greedy",
        seconds=0.0,
    )


@dataclass(frozen=True)
class SystemSummary:
    """One column of the comparison: cost and how the system loads the site."""

    name: str
    total_cost: Decimal
    case_costs: dict[int, Decimal | None]
    metrics: LoadMetrics
    hourly: HourlyDemand
    unmet: int = 0


@dataclass(frozen=True)
class Comparison:
    grid: Grid
    original: SystemSummary
    optimized: SystemSummary
    scheduled: SystemSummary
    schedule: Schedule
    site_limit_kw: Decimal | None
    compared: int  # bookings every system met in full: the costs are over these
    placement: str  # of the site schedule: "booked" or "fit"
    frontier: tuple[FrontierPoint, ...] = ()  # the cost–peak trade-off, least cost first

    @property
    def systems(self) -> tuple[SystemSummary, SystemSummary, SystemSummary]:
        return (self.original, self.optimized, self.scheduled)


def _booked_sessions(grid: Grid, slots: Sequence[BookedSlot], efficiency: Decimal) -> np.ndarray:
    """A booked session draws its plan's power from its start until its energy is in."""
    eff = float(efficiency)
    rows = []
    for s in slots:
        hours = float(s.energy_kwh / s.power_kw) if s.power_kw > 0 else 0.0
        end = min(s.end, s.start + timedelta(hours=hours))
        rows.append(interval_powers(grid, s.start, end, float(s.power_kw) / eff))
    return np.array(rows).reshape(len(slots), grid.slots)


def _summary(
    name: str,
    grid: Grid,
    sessions: np.ndarray,
    costs: dict[int, Decimal],
    compared: Sequence[EvaluationRow],
    unmet: int = 0,
) -> SystemSummary:
    """Costs over the `compared` rows (the ones every system met), load over all sessions."""
    return SystemSummary(
        name=name,
        total_cost=sum((costs[r.request.tid] for r in compared), Decimal(0)),
        case_costs={
            case: mean([costs[r.request.tid] for r in compared if r.case == case]) for case in CASES
        },
        metrics=load_metrics(grid, sessions),
        hourly=hourly_demand(grid, sessions),
        unmet=unmet,
    )


def compare(
    run: EvaluationRun,
    site_limit_kw: Decimal | None = None,
    *,
    frontier: bool = False,
    options: MilpOptions | None = None,
    progress: Progress | None = None,
    phase: Phase | None = None,
) -> Comparison:
    """Original, greedy (optimized) and site schedule, over the requests the greedy booked.

    Costs are compared over the bookings every system met in full (the schedule may leave
    some short); load metrics count every session each system delivers.
    """
    rows = [r for r in run.rows if r.optimized is not None]
    optimized = [r.optimized for r in rows if r.optimized is not None]
    schedule, placement, points = site_schedule(
        run, site_limit_kw, frontier=frontier, options=options, progress=progress, phase=phase
    )
    short = {u.booking_id for u in schedule.unmet}
    compared = [r for r in rows if r.request.tid not in short]
    intervals = [(r.original.start, r.original.end) for r in rows]
    intervals += [(s.start, s.end) for s in optimized]
    intervals += [(schedule.start, schedule.start + len(schedule.site_kw) * schedule.slot)]
    grid = Grid.covering(intervals, run.setup.calendar)
    efficiency = run.setup.tariff.efficiency
    plans = [schedule.plans.get(r.request.tid) for r in rows]
    scheduled = np.array(
        [place(grid, p.first_slot, p.powers_kw) if p else np.zeros(grid.slots) for p in plans]
    ).reshape(len(rows), grid.slots)
    return Comparison(
        grid=grid,
        original=_summary(
            "Original",
            grid,
            _booked_sessions(grid, [r.original for r in rows], efficiency),
            {r.request.tid: r.original.price for r in rows},
            compared,
        ),
        optimized=_summary(
            "Optimized (greedy)",
            grid,
            _booked_sessions(grid, optimized, efficiency),
            {r.request.tid: s.price for r, s in zip(rows, optimized, strict=True)},
            compared,
        ),
        scheduled=_summary(
            "Site schedule",
            grid,
            scheduled,
            {r.request.tid: p.cost for r, p in zip(rows, plans, strict=True) if p},
            compared,
            unmet=len(schedule.unmet),
        ),
        schedule=schedule,
        site_limit_kw=site_limit_kw,
        compared=len(compared),
        placement=placement,
        frontier=points,
    )
