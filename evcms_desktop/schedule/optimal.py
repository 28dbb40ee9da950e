"""The optimal site schedule and the cost–peak frontier, on the MILP of milp.py.

`plan_site` turns the MILP's sessions into a Schedule: connectors by interval colouring,
Eq. (8) prices, the bookings left short and why, and the relaxation's bound. The old
heuristic ("fit" placement and the LP, solver.py) competes with it, and is the fallback
for days HiGHS cannot finish within the time budget.

`cost_peak_frontier` is the ε-constraint sweep: the least-cost schedule first, then the
least cost under a site limit ε for falling ε, each point a real schedule with its bound;
below the least peak at which every booking can be met, a few points of least energy short.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

from evcms_desktop.schedule.milp import (
    MAX_POWER_CHANGES,
    Instance,
    MilpOptions,
    MilpPlan,
    Session,
    plan_sessions,
)
from evcms_desktop.schedule.model import (
    BookingPlan,
    Bound,
    Schedule,
    ScheduleProblem,
    Unmet,
    acm_weights,
    window_slots,
)
from evcms_desktop.schedule.profiles import ProfilePlan, kind_cars, plan_profiles
from evcms_desktop.schedule.solver import solve_schedule

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
# A step starts now: what it is, and the seconds it is given (None: no budget of its own).
Phase = Callable[[str, float | None], None]
FRONTIER_POINTS = 6  # limits below the least-cost peak, at most
SHORT_POINTS = 3  # of them below the least peak that meets every booking, at most
POINT_SECONDS = 5.0  # of the sweep's budget per limit: a shorter budget sweeps fewer
TAIL_SHARE = 0.05  # of the time budget, kept for what follows the solve (connectors, prices)
_TOL = 1e-6
LIMIT_SHORT = "the site limit leaves too little power in its window"  # even were it alone
LIMIT_SHARED = "the site limit leaves too little power for every booking around it"
NOT_IN_TIME = "not scheduled in the time given"
LIMIT_OR_TIME = "short under the site limit in the time given"


def _colour(
    inst: Instance,
    sessions: dict[int, Session],
    connector_ids: Sequence[int],
    busy: Mapping[int, int] | None = None,
) -> dict[int, int]:
    """Connectors for sessions of which at most len(connector_ids) overlap at any slot.

    A booking keeps the connector it booked when that one is free; `busy` gives the slot
    from which each connector held by a fixed session is free. Where connectors differ in
    power, a session takes one of its booking's kind (`Instance.kinds`), of which at most
    as many overlap.
    """
    free_at = dict.fromkeys(connector_ids, -1)  # the slot each connector is free from
    free_at.update({c: last for c, last in (busy or {}).items() if c in free_at})
    out: dict[int, int] = {}
    for i in sorted(sessions, key=lambda i: (sessions[i].first, sessions[i].last)):
        s = sessions[i]
        kind = int(inst.kinds[i]) if len(inst.kinds) else 0
        alike = [c for c in connector_ids if inst.connector_kind.get(c, 0) == kind]
        wanted = inst.bookings[i].connector_id
        if wanted in alike and free_at[wanted] <= s.first:
            chosen = wanted
        else:
            chosen = min((c for c in alike if free_at[c] <= s.first), key=lambda c: -free_at[c])
        out[i] = chosen
        free_at[chosen] = s.last
    return out


def _booking_plan(
    problem: ScheduleProblem, inst: Instance, i: int, session: Session, connector_id: int
) -> BookingPlan:
    booking = inst.bookings[i]
    f = int(inst.firsts[i])
    share = inst.share[session.first : session.last]
    weights = acm_weights(share, booking.overlapped)
    powers = np.asarray(session.profile)
    delivered = float(powers.sum()) * inst.k
    acm = float(powers @ weights / powers.sum()) if powers.sum() > 0 else 0.0
    met = delivered + _TOL * max(1.0, float(booking.energy_kwh)) >= float(booking.energy_kwh)
    billed = booking.energy_kwh if met else Decimal(f"{delivered:.3f}")
    price = problem.tariff.price(billed, Decimal(f"{acm:.4f}"))
    assert f <= session.first
    return BookingPlan(
        booking_id=booking.id,
        connector_id=connector_id,
        first_slot=inst.start + session.first * problem.slot,
        slot=problem.slot,
        powers_kw=session.profile,
        delivered_kwh=delivered,
        peak_on_kwh=float(powers @ share) * inst.k,
        cost=price.total,
    )


def _limit_reason(
    first: datetime, slot: timedelta, cap: float, need: float, room: np.ndarray, bound: Bound
) -> str:
    """Why the site limit leaves a booking short, true of that booking.

    Its window is len(room) slots from `first`; `room` is the limit less the fixed load in
    each, `cap` its power (kW) and `need` its energy in kW-slots. The limit itself when
    even alone, with all that room, it cannot be met; the limit shared when some slot of
    its window is one where the relaxation is short because of the limit (it could be met,
    at another booking's expense); else the relaxation has room to meet it and the
    schedule, in the time it had, did not.
    """
    if float(np.minimum(cap, np.maximum(room, 0.0)).sum()) + _TOL < need:
        return LIMIT_SHORT
    window = {first + n * slot for n in range(len(room))}
    if bound.unmet_kwh > _TOL and not window.isdisjoint(bound.tight_slots):
        return LIMIT_SHARED
    return NOT_IN_TIME


def _why_short(
    inst: Instance,
    i: int,
    cars: np.ndarray,
    limit: float | None,
    bound: Bound | None,
    fixed_load: np.ndarray,
    slot: timedelta,
) -> str:
    f, last = int(inst.firsts[i]), int(inst.lasts[i])
    if last <= f:
        return "its window holds no whole 15-minute slot"
    most = float(inst.caps[i]) * (last - f) * inst.k
    if most + _TOL < inst.needs[i]:
        return f"its window allows at most {most:.1f} kWh at its connector's power"
    if (cars[f:last] >= inst.connectors).all():
        return "every connector is taken throughout its window"
    if limit is not None:
        if bound is None:  # no relaxation asked for (a live re-plan): which of the two is unknown
            return LIMIT_OR_TIME
        need = float(inst.needs[i]) / inst.k
        room = limit - fixed_load[f:last]
        return _limit_reason(inst.start + f * slot, slot, float(inst.caps[i]), need, room, bound)
    return "no connector is free long enough inside its window"


def _limit_reasons(
    problem: ScheduleProblem,
    schedule: Schedule,
    relaxed: Bound | None,
    kept: Mapping[Hashable, BookingPlan],
) -> tuple[Unmet, ...]:
    """The heuristic's unmet bookings, the site limit blamed only as the relaxation shows
    it (_limit_reason); the heuristic blames it for every shortfall it cannot explain."""
    blamed = [u for u in schedule.unmet if u.reason == LIMIT_SHORT]
    if not blamed or problem.site_limit_kw is None:
        return schedule.unmet
    limit = float(problem.site_limit_kw)
    if relaxed is None:
        relaxed = relaxation_bound(problem, limit, kept)
    by_id = {b.id: b for b in problem.bookings}
    per_kw = problem.slot.total_seconds() / 3600 * float(problem.tariff.efficiency)
    start = schedule.start

    def reason(u: Unmet) -> str:
        b = by_id.get(u.booking_id)
        if u.reason != LIMIT_SHORT or b is None:
            return u.reason
        f, last = window_slots(b, start, problem.slot)
        room = np.full(last - f, limit)
        need = float(b.energy_kwh) / per_kw
        return _limit_reason(
            start + f * problem.slot, problem.slot, float(b.max_power_kw), need, room, relaxed
        )

    return tuple(replace(u, reason=reason(u)) for u in schedule.unmet)


def relaxation_bound(
    problem: ScheduleProblem,
    limit: float | None,
    fixed: Mapping[Hashable, BookingPlan] | None = None,
) -> Bound:
    """The LP with neither connectors nor sessions: any power in any slot of the window.

    It relaxes every schedule of the problem, so its least unmet energy bounds theirs and,
    when nothing need be short, its least cost bounds the cost of every schedule that
    meets all bookings. `fixed` (a re-plan's sessions under way) are kept as they are:
    their load takes from the limit and their cost is added.
    """
    fixed = {k: v for k, v in (fixed or {}).items() if k in {b.id for b in problem.bookings}}
    fixed_cost = sum((plan.cost for plan in fixed.values()), Decimal(0))
    problem = replace(problem, bookings=tuple(b for b in problem.bookings if b.id not in fixed))
    if not problem.bookings:
        return Bound(unmet_kwh=0.0, cost=fixed_cost)
    inst = Instance.of(problem)
    room = np.full(inst.slots, np.inf if limit is None else limit)
    for plan in fixed.values():
        first = _slot_of(inst, plan.first_slot, plan.slot)
        for at, kw in enumerate(plan.powers_kw, start=first):
            if 0 <= at < inst.slots:
                room[at] -= kw
    n_b = len(inst.bookings)
    lengths = np.maximum(inst.lasts - inst.firsts, 0)
    n = int(lengths.sum())
    book_of = np.repeat(np.arange(n_b), lengths)
    slot_of = np.concatenate(
        [np.arange(f, last) for f, last in zip(inst.firsts, inst.lasts, strict=True)]
        or [np.zeros(0, dtype=int)]
    ).astype(int)
    unit = np.concatenate([inst.unit_costs(i) for i in range(n_b)] or [np.zeros(0)])
    a_eq = sparse.hstack(
        [
            sparse.csr_array((np.full(n, inst.k), (book_of, np.arange(n))), shape=(n_b, n)),
            sparse.identity(n_b, format="csr"),
        ],
        format="csr",
    )
    used = np.unique(slot_of)
    row = np.full(inst.slots, -1)
    row[used] = np.arange(len(used))
    site = sparse.hstack(
        [
            sparse.csr_array((np.ones(n), (row[slot_of], np.arange(n))), shape=(len(used), n)),
            sparse.csr_array((len(used), n_b)),
        ],
        format="csr",
    )
    bounds = np.vstack(
        [
            np.column_stack([np.zeros(n), np.repeat(inst.caps, lengths)]),
            np.column_stack([np.zeros(n_b), inst.needs]),
        ]
    )
    a_ub = site if limit is not None else None
    b_ub = np.maximum(room[used], 0.0) if limit is not None else None
    met = bounds.copy()
    met[n:, 1] = 0.0  # first with nothing short: when it is feasible, nothing need be
    cheapest = linprog(
        np.concatenate([unit, np.zeros(n_b)]),
        A_ub=a_ub,
        b_ub=b_ub,
        A_eq=a_eq,
        b_eq=inst.needs,
        bounds=met,
        method="highs",
    )
    if cheapest.status != 0:
        shortest = linprog(
            np.concatenate([np.zeros(n), np.ones(n_b)]),
            A_ub=a_ub,
            b_ub=b_ub,
            A_eq=a_eq,
            b_eq=inst.needs,
            bounds=bounds,
            method="highs",
        )
        if shortest.status != 0:
            return Bound(unmet_kwh=0.0, cost=None)
        least = max(0.0, float(shortest.fun))
        duals = shortest.ineqlin.marginals if a_ub is not None else np.zeros(0)
        tight = frozenset(inst.start + int(t) * problem.slot for t in used[np.abs(duals) > _TOL])
        # Who is short, as the schedule's objective chooses: among the least-short
        # schedules, the one that leaves the latest booked short (bookings come in order).
        total = sparse.hstack([sparse.csr_array((1, n)), np.ones((1, n_b))], format="csr")
        fair = linprog(
            np.concatenate([np.zeros(n), np.linspace(1.01, 1.0, n_b)]),
            A_ub=total if a_ub is None else sparse.vstack([a_ub, total], format="csr"),
            b_ub=np.concatenate([[] if b_ub is None else b_ub, [least + 1e-6 * max(1.0, least)]]),
            A_eq=a_eq,
            b_eq=inst.needs,
            bounds=bounds,
            method="highs",
        )
        slack = (fair if fair.status == 0 else shortest).x[n:]
        short_ids = frozenset(
            b.id
            for b, kwh in zip(inst.bookings, slack, strict=True)
            if kwh > _TOL * max(1.0, float(b.energy_kwh))
        )
        return Bound(unmet_kwh=least, cost=None, short_ids=short_ids, tight_slots=tight)
    tariff = problem.tariff
    fixed = sum(
        (tariff.energy_price * b.energy_kwh + tariff.service_charge for b in problem.bookings),
        Decimal(0),
    )
    total = (fixed_cost + fixed + Decimal(f"{cheapest.fun:.6f}")).quantize(
        Decimal("0.01"), rounding=ROUND_FLOOR
    )
    return Bound(unmet_kwh=0.0, cost=total)


def least_peak_bound(problem: ScheduleProblem, cost_cap: Decimal | None = None) -> float:
    """The least site peak at which the relaxation can still meet every booking, kW; with
    `cost_cap`, at a cost of at most that (GBP; inf when no schedule meets them for it)."""
    inst = Instance.of(problem)
    n_b = len(inst.bookings)
    lengths = np.maximum(inst.lasts - inst.firsts, 0)
    n = int(lengths.sum())
    if n == 0:
        return 0.0
    book_of = np.repeat(np.arange(n_b), lengths)
    slot_of = np.concatenate(
        [np.arange(f, last) for f, last in zip(inst.firsts, inst.lasts, strict=True)]
    ).astype(int)
    used = np.unique(slot_of)
    row = np.full(inst.slots, -1)
    row[used] = np.arange(len(used))
    site = sparse.hstack(
        [
            sparse.csr_array((np.ones(n), (row[slot_of], np.arange(n))), shape=(len(used), n)),
            sparse.csr_array(-np.ones((len(used), 1))),
        ],
        format="csr",
    )
    need = np.minimum(inst.needs, inst.caps * lengths * inst.k)
    a_eq = sparse.hstack(
        [
            sparse.csr_array((np.full(n, inst.k), (book_of, np.arange(n))), shape=(n_b, n)),
            sparse.csr_array((n_b, 1)),
        ],
        format="csr",
    )
    bounds = np.vstack(
        [np.column_stack([np.zeros(n), np.repeat(inst.caps, lengths)]), [[0.0, np.inf]]]
    )
    b_ub = np.zeros(len(used))
    if cost_cap is not None:
        unit = np.concatenate([inst.unit_costs(i) for i in range(n_b)])
        tariff = problem.tariff
        fixed = sum(
            (tariff.energy_price * b.energy_kwh + tariff.service_charge for b in problem.bookings),
            Decimal(0),
        )
        site = sparse.vstack([site, sparse.csr_array(np.append(unit, 0.0)[None, :])], format="csr")
        b_ub = np.append(b_ub, float(cost_cap - fixed))
    result = linprog(
        np.append(np.zeros(n), 1.0),
        A_ub=site,
        b_ub=b_ub,
        A_eq=a_eq,
        b_eq=need,
        bounds=bounds,
        method="highs",
    )
    if result.status == 0:
        return float(result.fun)
    return np.inf if cost_cap is not None and result.status == 2 else 0.0


def _slot_of(inst: Instance, moment: datetime, slot: timedelta) -> int:
    return int((moment - inst.start) // slot)


def _trimmed(plan: BookingPlan, inst: Instance) -> BookingPlan | None:
    """The part of a plan from the horizon's start on (None if nothing is left)."""
    skip = max(0, -(-(inst.start - plan.first_slot) // plan.slot))
    powers = plan.powers_kw[skip:]
    if not powers:
        return None
    first = _slot_of(inst, plan.first_slot, plan.slot) + skip
    share = inst.share[first : first + len(powers)]
    return replace(
        plan,
        first_slot=plan.first_slot + skip * plan.slot,
        powers_kw=powers,
        delivered_kwh=sum(powers) * inst.k,
        peak_on_kwh=float(np.dot(powers[: len(share)], share) * inst.k),
    )


def _sent_session(plan: BookingPlan, inst: Instance, *, steady: bool) -> Session | None:
    """A plan sent before as a session of the new grid: if `steady`, only one of a single
    steady power (the MILP's kind), else any profile drawing in every slot."""
    powers = plan.powers_kw
    if not powers or min(powers) <= _TOL:
        return None
    if steady and any(abs(p - powers[0]) > _TOL for p in powers):
        return None
    first = _slot_of(inst, plan.first_slot, plan.slot)
    if first < 0 or first + len(powers) > inst.slots:
        return None
    if steady:
        return Session(first, len(powers), float(powers[0]))
    return Session.of_profile(first, tuple(powers))


def plan_site(
    problem: ScheduleProblem,
    options: MilpOptions | None = None,
    *,
    progress: Progress | None = None,
    with_bound: bool = True,
    compete: bool = True,
    fixed: Mapping[Hashable, BookingPlan] | None = None,
    previous: Mapping[Hashable, BookingPlan] | None = None,
    start: Schedule | None = None,
) -> Schedule:
    """The MILP's schedule of the problem (its site limit kept), or the heuristic's.

    With `options.power_profiles` and a site limit, the sessions are profiles.py's
    (power per slot, a few changes), built from `start` (a schedule of the same bookings
    under a looser limit or none) or, without it, from the least-cost MILP's sessions.

    The old heuristic (solver.py, "fit" placement ahead of the exact LP over power, about
    a second) schedules the problem as well, and when its schedule keeps the bound on
    power changes (keeps_power_bound) the better of the two (least energy short, then
    cheapest) is returned: its `method` says which. A day HiGHS found nothing for in time
    gets greedy steady sessions. `compete=False`: the MILP's schedule only.

    A re-plan passes `fixed`, the plans of sessions under way, kept as they are from the
    horizon's start (their load and connectors are taken), and `previous`, the plans
    already sent: a booking keeps its session unless changing it gains more than
    KEEP_BONUS (with power profiles, they are the start, whatever their profile).

    `options.time_budget_s` is the wall-clock time of the whole call (the bound aside, which
    is computed after it when `with_bound`): the solve gets what is left of it.
    """
    options = options or MilpOptions()
    began = time.perf_counter()
    if not problem.bookings:
        return solve_schedule(problem)
    limit = float(problem.site_limit_kw) if problem.site_limit_kw is not None else None
    inst = Instance.of(problem)
    index = {b.id: i for i, b in enumerate(inst.bookings)}
    kept: dict[Hashable, BookingPlan] = {}
    for booking_id, plan in (fixed or {}).items():
        part = _trimmed(plan, inst) if booking_id in index else None
        if part is not None:
            kept[booking_id] = part
    fixed_load = np.zeros(inst.slots)
    fixed_cars = np.zeros(inst.slots, dtype=int)
    fixed_kinds = kind_cars(inst, None)  # the same cars, per kind of connector
    busy: dict[int, int] = {}
    for booking_id, plan in kept.items():
        inst.needs[index[booking_id]] = 0.0  # nothing left for the model to schedule
        a = _slot_of(inst, plan.first_slot, plan.slot)
        powers = np.asarray(plan.powers_kw)[: max(0, inst.slots - a)]
        fixed_load[a : a + len(powers)] += powers
        fixed_cars[a : a + len(powers)] += 1
        fixed_kinds[inst.connector_kind.get(plan.connector_id, 0), a : a + len(powers)] += 1
        busy[plan.connector_id] = max(busy.get(plan.connector_id, -1), a + len(powers))
    # Connectors of different power: profiles.py's sessions, which keep each kind's count.
    mixed = len(inst.kind_connectors) > 1
    profiled = (options.power_profiles and limit is not None) or mixed
    for booking_id, plan in (previous or {}).items():
        if booking_id in index and booking_id not in kept:
            session = _sent_session(plan, inst, steady=not profiled)
            if session is not None:
                inst.preferred[index[booking_id]] = session
    left = options.time_budget_s * (1 - TAIL_SHARE) - (time.perf_counter() - began)
    result: MilpPlan | ProfilePlan
    if profiled:
        timed = replace(options, time_budget_s=max(0.0, left))
        result = _plan_profiles(problem, inst, limit, timed, fixed_load, fixed_kinds, start)
        if progress is not None:
            progress(1, 1)
    else:
        result = plan_sessions(
            inst,
            limit,
            replace(options, time_budget_s=max(0.0, left)),
            fixed_load=fixed_load,
            fixed_cars=fixed_cars,
            progress=progress,
        )
    bound = relaxation_bound(problem, limit, kept) if with_bound else None
    if result.fallback_chunks and options.time_budget_s > 0:  # zero: the greedy on purpose
        log.warning(
            "HiGHS found no schedule for %d of %d days in time: greedy sessions there",
            result.fallback_chunks,
            result.chunks,
        )
    heuristic = solve_schedule(problem, placement="fit") if compete and not kept else None
    sessions = result.sessions
    connectors = _colour(inst, sessions, problem.connector_ids, busy)
    site_kw = fixed_load.copy()
    cars = fixed_cars.copy()
    plans: dict[Hashable, BookingPlan] = dict(kept)
    for i, s in sessions.items():
        plans[inst.bookings[i].id] = _booking_plan(problem, inst, i, s, connectors[i])
        site_kw[s.first : s.last] += s.profile
        cars[s.first : s.last] += 1
    if limit is not None:
        site_kw = np.minimum(site_kw, limit)  # clears HiGHS' feasibility tolerance
    unmet: list[Unmet] = []
    for i, b in enumerate(inst.bookings):
        if b.id in kept:
            continue  # under way: what it gets is what it was sent
        plan = plans.get(b.id)
        delivered = plan.delivered_kwh if plan else 0.0
        short = float(b.energy_kwh) - delivered
        if short > _TOL * max(1.0, float(b.energy_kwh)):
            reason = _why_short(inst, i, cars, limit, bound, fixed_load, problem.slot)
            unmet.append(Unmet(b.id, reason, short))
    schedule = Schedule(
        start=inst.start,
        slot=problem.slot,
        site_kw=site_kw,
        peak_on=inst.share,
        plans=plans,
        unmet=tuple(unmet),
        method=_made_by(result),
        seconds=0.0,
        bound=bound,
    )
    if (
        heuristic is not None
        and keeps_power_bound(heuristic)
        and _rank(heuristic) < _rank(schedule)
    ):
        schedule = replace(heuristic, unmet=_limit_reasons(problem, heuristic, bound, kept))
    seconds = time.perf_counter() - began
    log.info(
        "Scheduled %d bookings by %s in %.2f s (%d of %d days proved within the gap)",
        len(schedule.plans),
        schedule.method,
        seconds,
        result.optimal_chunks,
        result.chunks,
    )
    return replace(schedule, bound=bound, seconds=seconds)


def _made_by(result: MilpPlan | ProfilePlan) -> str:
    """What made the schedule: its days HiGHS found nothing for in time are greedy's."""
    made = "profiles" if isinstance(result, ProfilePlan) else "milp"
    if result.fallback_chunks:
        return f"{made} ({result.fallback_chunks} of {result.chunks} days greedy)"
    return made


def _sessions_of(inst: Instance, schedule: Schedule) -> dict[int, Session]:
    """A schedule's plans as sessions of the instance's grid (those that lie on it)."""
    index = {b.id: i for i, b in enumerate(inst.bookings)}
    out: dict[int, Session] = {}
    for booking_id, plan in schedule.plans.items():
        if booking_id not in index or not plan.powers_kw:
            continue
        first = _slot_of(inst, plan.first_slot, plan.slot)
        if first >= 0 and first + len(plan.powers_kw) <= inst.slots:
            out[index[booking_id]] = Session.of_profile(first, tuple(plan.powers_kw))
    return out


def _plan_profiles(
    problem: ScheduleProblem,
    inst: Instance,
    limit: float | None,
    options: MilpOptions,
    fixed_load: np.ndarray,
    fixed_cars: np.ndarray,
    start: Schedule | None,
) -> ProfilePlan:
    """profiles.py's sessions, from `start`, else from those already sent (a re-plan's
    `inst.preferred`), else from the least-cost MILP's (half the budget) or nothing.

    A limit below the relaxation's least peak (some energy must be short) starts from
    nothing, least slack first, with the whole budget: the least-cost sessions, placed
    for cost with no thought of the limit, left more short (on the evaluation's 4
    connectors under 60 kW, some 40 kWh more).
    """
    began = time.perf_counter()
    tight = (
        start is None
        and not inst.preferred
        and options.milp_start
        and limit is not None
        and not fixed_load.any()
        and limit < least_peak_bound(problem) - _TOL
    )
    laxity_first = tight or not options.milp_start
    if start is not None:
        sessions = _sessions_of(inst, start)
    elif inst.preferred or laxity_first:
        sessions = dict(inst.preferred)
    else:
        free = Instance.of(replace(problem, site_limit_kw=None))
        free.needs[:] = inst.needs
        first = replace(options, time_budget_s=options.time_budget_s / 2)
        sessions = plan_sessions(
            free, None, first, fixed_load=fixed_load, fixed_cars=fixed_cars.sum(axis=0)
        ).sessions
    left = replace(
        options, time_budget_s=max(0.0, options.time_budget_s - (time.perf_counter() - began))
    )
    return plan_profiles(
        inst,
        limit,
        left,
        fixed_load=fixed_load,
        fixed_cars=fixed_cars,
        start=sessions,
        laxity_first=laxity_first,
        descend=options.descend,
    )


def power_changes(powers: Sequence[float]) -> int:
    """How often a session's power changes level from one slot to the next."""
    return sum(1 for a, b in itertools.pairwise(powers) if abs(a - b) > _TOL)


def keeps_power_bound(schedule: Schedule) -> bool:
    """Every plan one contiguous session whose power changes at most MAX_POWER_CHANGES times.

    The heuristic's LP may switch a charger on and off from slot to slot: such a schedule
    is never sent, however cheap.
    """
    return all(
        all(kw > _TOL for kw in plan.powers_kw)
        and power_changes(plan.powers_kw) <= MAX_POWER_CHANGES
        for plan in schedule.plans.values()
    )


def _rank(schedule: Schedule) -> tuple[float, Decimal]:
    return (round(schedule.short_kwh, 3), schedule.total_cost)


@dataclass(frozen=True)
class FrontierPoint:
    """One schedule of the cost–peak trade-off: the limit it was asked to keep, and its bound."""

    limit_kw: float | None  # None: the least-cost point, no limit
    schedule: Schedule

    @property
    def peak_kw(self) -> float:
        return self.schedule.peak_kw

    @property
    def cost(self) -> Decimal:
        return self.schedule.total_cost

    @property
    def unmet_kwh(self) -> float:
        return self.schedule.short_kwh

    @property
    def short(self) -> bool:
        """Some booking is left short: its cost is of less energy, no saving."""
        return bool(self.schedule.unmet)

    @property
    def least_short_kwh(self) -> float:
        """The bound on energy short: no schedule under this limit leaves less short."""
        bound = self.schedule.bound
        return 0.0 if bound is None else bound.unmet_kwh

    @property
    def must_be_short(self) -> bool:
        """The relaxation proves that no schedule under this limit meets every booking."""
        return self.least_short_kwh > 0.05  # kWh: as frontier.csv and the console show it

    def extra_cost(self, cheapest: FrontierPoint) -> Decimal | None:
        """What it costs above the least-cost point; None when either leaves energy short,
        as a schedule that delivers less is cheaper without saving anything."""
        if self.short or cheapest.short:
            return None
        return self.cost - cheapest.cost

    def comparable_bound(self) -> Decimal | None:
        """The bound's cost, where it compares like with like: a point that meets every
        booking against the least cost of any schedule that meets them all."""
        bound = self.schedule.bound
        return None if self.short or bound is None else bound.cost

    def label(self, cheapest: FrontierPoint) -> str:
        """As the operator reads it: "peak 80 kW for +£2.98"; "peak 80 kW, extra cost n/a,
        236 kWh short" when this schedule is short but need not be; "peak 80 kW: at least
        31.2 kWh short, this schedule 46.6 kWh short" when every schedule must be."""
        if self.must_be_short:
            return (
                f"peak {self.peak_kw:.0f} kW: at least {self.least_short_kwh:.1f} kWh short,"
                f" this schedule {self.unmet_kwh:.1f} kWh short"
            )
        extra = self.extra_cost(cheapest)
        if extra is None:
            return f"peak {self.peak_kw:.0f} kW, extra cost n/a, {self.unmet_kwh:.1f} kWh short"
        sign = "+" if extra >= 0 else "-"
        return f"peak {self.peak_kw:.0f} kW for {sign}£{abs(extra):.2f}"


_ROUND_STEPS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


def frontier_levels(top: float, floor: float, most: int = 8) -> list[float]:
    """Site limits below `top` down to `floor`, falling, on the finest round step that
    gives no more than `most` of them."""
    if top - floor <= 1:
        return []
    for step in _ROUND_STEPS:
        first = math.ceil((floor - _TOL) / step)
        last = math.ceil((top - 0.5) / step) - 1  # strictly below the top, by half a kW
        levels = [float(v * step) for v in range(last, first - 1, -1)]
        if len(levels) <= most:
            return levels
    return []


def short_levels(floor: float, count: int) -> list[float]:
    """Up to `count` round site limits below `floor` (the least peak at which every booking
    can be met), falling: SHORT_POINTS of them on the round step nearest above a tenth of
    the floor (88 kW gives 80, 70, 60), the first and the last when there is room for two,
    the first for one.
    """
    if count <= 0 or floor <= 1:
        return []
    step = next((s for s in _ROUND_STEPS if s >= floor / 10), _ROUND_STEPS[-1])
    first = math.ceil((floor - 0.5) / step) - 1  # strictly below the floor, by half a kW
    ladder = [float(v * step) for v in range(first, max(0, first - SHORT_POINTS), -1)]
    if count >= len(ladder):
        return ladder
    if count == 1:
        return ladder[:1]
    picks = np.linspace(0, len(ladder) - 1, count).round().astype(int)
    return [ladder[i] for i in picks]


def sweep_levels(top: float, floor: float, most: int) -> list[float]:
    """The frontier's limits below the least-cost peak `top`, falling, at most `most`: down
    to `floor` (frontier_levels), then in the places they leave, limits below it
    (short_levels), so a limit below the floor never takes the place of one above it."""
    if most <= 0:
        return []
    levels = frontier_levels(top, floor, most)
    return levels + short_levels(floor, min(SHORT_POINTS, most - len(levels)))


def cost_peak_frontier(
    problem: ScheduleProblem,
    options: MilpOptions | None = None,
    *,
    levels: Sequence[float] | None = None,
    progress: Progress | None = None,
    phase: Phase | None = None,
) -> list[FrontierPoint]:
    """The least-cost schedule, then the least cost under each limit (falling), with bounds.

    Without `levels`, limits go on a round step from just below the least-cost peak down to
    the relaxation's least peak that still meets every booking (no lower point can meet
    them all), at most one per POINT_SECONDS of the budget (FRONTIER_POINTS at most), so
    a short budget gives each point time enough to meet its bookings. The places those
    limits leave go to round limits below that least peak (SHORT_POINTS at most, see
    short_levels): what each lower peak leaves short, beside its bound. The problem's own
    site limit, if any, caps every level. `options.time_budget_s` is the wall-clock budget
    of the whole sweep: each point gets what is left of it, shared among the points still
    to come, less what the last limited point took beyond its share (its bound and prices,
    which no budget stops) for each of them, so the sweep ends near its deadline.
    """
    options = options or MilpOptions()
    deadline = time.perf_counter() + options.time_budget_s
    cap = float(problem.site_limit_kw) if problem.site_limit_kw is not None else None
    over = 0.0  # seconds the last limited point ran past its share

    def share(points_left: int) -> MilpOptions:
        left = max(0.0, deadline - time.perf_counter() - over * points_left)
        return replace(options, time_budget_s=left / max(1, points_left))

    floor = least_peak_bound(problem) if levels is None else 0.0
    most = min(FRONTIER_POINTS, max(2, int(options.time_budget_s // POINT_SECONDS)))
    later = len(levels) if levels is not None else most
    if cap is not None and levels is None and cap <= floor + 1:
        later = 0  # no point below a limit that already leaves energy short: all its time
    first = share(1 + later)
    if phase is not None:
        most_points = f"up to {1 + later}" if later else "1"
        phase(f"frontier point 1 of {most_points}: least cost", first.time_budget_s)
    cheapest = plan_site(problem, first)
    points = [FrontierPoint(cap, cheapest)]
    if levels is None:
        levels = sweep_levels(cheapest.peak_kw, floor, most if later else 0)
    levels = [v for v in levels if cap is None or v < cap]
    total = len(levels) + 1
    if progress is not None:
        progress(1, total)
    for done, level in enumerate(levels, start=2):
        limited = replace(problem, site_limit_kw=Decimal(f"{level:.3f}"))
        timed = replace(share(total - done + 1), power_profiles=True)
        # Below the floor energy must be short: planned from nothing, least slack first
        # (plan_site), which leaves less short than the looser point's sessions do.
        start = points[-1].schedule if level >= floor - _TOL else None
        if phase is not None:
            phase(f"frontier point {done} of {total} at {level:g} kW", timed.time_budget_s)
        began = time.perf_counter()
        schedule = plan_site(limited, timed, start=start, compete=False)
        over = max(0.0, time.perf_counter() - began - timed.time_budget_s)
        points.append(FrontierPoint(level, schedule))
        if progress is not None:
            progress(done, total)
    return monotone(points)


def monotone(points: Sequence[FrontierPoint]) -> list[FrontierPoint]:
    """Each point, or a tighter point's schedule where that one ranks better.

    A schedule that keeps a tighter limit keeps every looser one, so a looser limit is
    never left shorter (or dearer) than a tighter one; the looser point keeps its bound.
    Points run from the loosest (least cost) to the tightest.
    """
    out = list(points)
    for a in range(len(out) - 2, -1, -1):
        tighter = out[a + 1].schedule
        if _rank(tighter) < _rank(out[a].schedule):
            out[a] = FrontierPoint(out[a].limit_kw, replace(tighter, bound=out[a].schedule.bound))
    return out
