"""The site schedule as a mixed-integer programme on HiGHS (`scipy.optimize.milp`).

Each booking gets at most one session: a start, a number of slots n and one steady power,
all inside its window (the time its driver accepted). A session that delivers the whole
energy E draws P = E / (k n) for its n slots, so its profile never changes level; n runs
from the fewest slots the connector's power allows up to `stretch` times that (a longer
session at a lower power is how the peak comes down). When the window cannot hold the
whole energy, or the site limit will not allow it, a session may end at the window's end
delivering less, at full power or at 3/4, 1/2 or 1/4 of it. Choosing among candidate
sessions keeps the model tight:

    x[j] binary     candidate session j is the one its booking gets;  sum_j x[j] <= 1
    site            sum_j P[j] x[j] [j covers t] + fixed load[t] <= z <= limit
    connectors      sum_j x[j] [j covers t] + fixed cars[t] <= connectors

The connectors are interchangeable, so "at most C cars at a time" is exactly "one car per
connector": sessions get their connectors afterwards by interval colouring.

Objective: UNMET_PENALTY per kWh short, times 1 + FAIRNESS for the first booking given
down to 1 for the last (the caller gives them in booking order, so a shortfall lands on
the latest bookings), plus the energy-weighted peak demand charges (model.py), plus a tiny
weight on the peak z (among equal costs, the lower peak).

Decomposition (rolling horizon): bookings go to the day their window opens in, days cut at
the time of day the fewest windows span. Days are solved in order, each with the next
`lookahead` of bookings as a preview (solved, not kept); what earlier days decided is fixed
load and fixed cars. The bound is the LP of the whole horizon with neither connectors nor
sessions (any power in any slot of the window): it bounds every schedule, decomposed or not.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import highspy
import numpy as np
from scipy import sparse
from scipy.optimize import LinearConstraint

from evcms_desktop.schedule.model import (
    ScheduleBooking,
    ScheduleProblem,
    acm_weights,
    horizon,
    slot_grid,
    window_slots,
)

log = logging.getLogger(__name__)

UNMET_PENALTY = 1000.0  # GBP per kWh left undelivered
FAIRNESS = 0.01  # the first booking weighs 1 % more than the last
PEAK_WEIGHT = 1e-4  # GBP per kW of peak: among equal costs, the lower peak
MAX_POWER_CHANGES = 2  # a session's power may change level this often (this model: never)
PARTIAL_LEVELS = (1.0, 0.75, 0.5, 0.25)  # of the connector's power, for a partial session
KEEP_BONUS = 0.05  # GBP: what keeping a session already sent is worth
DIVE_SHARE = 0.99  # a rounding round fixes every candidate at least this much chosen
FORWARD_SHARE = 0.6  # of the time budget for the rolling horizon; the rest for repairs
REPAIR_REACH = 8  # slots either side of a short booking's window re-planned with it
REPAIR_SECONDS = 3.0  # at most, per repair
DIVE_SECONDS = 2.0  # a day's rounding may take this long, within the day's share
MIN_SOLVE_S = 0.02  # the shortest time limit HiGHS is given
_TOL = 1e-6

Progress = Callable[[int, int], None]
_banner_lock = threading.Lock()
_banner_logged = threading.Event()  # set once the first HiGHS instance is made


@dataclass(frozen=True)
class MilpOptions:
    """How the MILP is decomposed and how long it may take."""

    time_budget_s: float = 45.0
    stretch: float = 2.0
    chunk: timedelta = timedelta(days=1)
    lookahead: timedelta = timedelta(hours=6)
    mip_rel_gap: float = 1e-4
    mip_abs_gap: float = 0.05  # GBP per day: five pence
    # A coarser set of candidate sessions solves faster (the live re-plan's budget).
    start_step: int = 1
    lengths: int = 0
    partial_levels: tuple[float, ...] = PARTIAL_LEVELS  # of the connector's power
    # Under a site limit, profiles.py's sessions: power per slot, a few changes each.
    power_profiles: bool = False
    # With no start given, they begin from the least-cost MILP's sessions (half the
    # budget); False (a re-plan): from those already sent or from nothing, the bookings
    # without one placed least slack first, the whole budget for that and the repairs.
    milp_start: bool = True
    # Then the dear bookings re-planned with their neighbours by a small MILP each
    # (profiles._descend_milp); a re-plan's budget leaves no time for it.
    descend: bool = True


# A re-plan of a day: under a limit, profiles.py's sessions from those already sent (or from
# nothing), the whole budget theirs; without one, the MILP with fewer candidates (partial
# sessions at full and half power only), so the day's relaxation solves in time.
LIVE_OPTIONS = MilpOptions(
    time_budget_s=1.5,
    start_step=2,
    lengths=4,
    partial_levels=(1.0, 0.5),
    power_profiles=True,
    milp_start=False,
    descend=False,
)


@dataclass(frozen=True)
class Session:
    """One booking's session: `power` kW in every slot of [first, first + slots), or, when
    `powers` is given (profiles.py's), those kW slot by slot."""

    first: int
    slots: int
    power: float
    powers: tuple[float, ...] = ()

    @property
    def last(self) -> int:
        return self.first + self.slots

    @property
    def profile(self) -> tuple[float, ...]:
        """kW in each slot of the session."""
        return self.powers or (self.power,) * self.slots

    @classmethod
    def of_profile(cls, first: int, powers: tuple[float, ...]) -> Session:
        steady = all(abs(p - powers[0]) <= 1e-9 for p in powers)
        mean = sum(powers) / len(powers)
        return cls(first, len(powers), mean, () if steady else powers)


@dataclass
class Instance:
    """The bookings on the slot grid, with what the cost and the limits need."""

    bookings: list[ScheduleBooking]
    start: datetime
    slots: int
    share: np.ndarray  # of each slot in Peak On
    firsts: np.ndarray
    lasts: np.ndarray
    caps: np.ndarray  # kW
    needs: np.ndarray  # kWh into the battery
    k: float  # kWh into the battery per kW drawn for one slot
    pdc: float
    connectors: int
    # Sessions a re-plan would rather keep (those already sent), by booking index: each is
    # a candidate, KEEP_BONUS cheaper, so a change is made only where it gains more.
    preferred: dict[int, Session] = field(default_factory=dict)
    start_step: int = 1  # slots between the starts of a booking's candidate sessions
    lengths: int = 0  # most session lengths per booking, spread evenly; 0: every length
    partial_levels: tuple[float, ...] = PARTIAL_LEVELS  # powers of a session left short
    limit: float | None = None  # the site limit: every booking gets a session within it
    # Connectors of different power (ScheduleProblem.connector_power_kw): each booking's
    # kind (its connector's power, ascending index), how many connectors each kind has, and
    # each connector's kind. One kind: every connector alike, as the MILP assumes.
    kinds: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    kind_connectors: tuple[int, ...] = ()
    connector_kind: dict[int, int] = field(default_factory=dict)

    @classmethod
    def of(cls, problem: ScheduleProblem) -> Instance:
        bookings = list(problem.bookings)
        start, slots = horizon(bookings, problem.slot)
        windows = [window_slots(b, start, problem.slot) for b in bookings]
        kinds, kind_connectors, connector_kind, kind_kw = _connector_kinds(problem)
        caps = [float(b.max_power_kw) for b in bookings]
        if len(kind_kw) > 1:
            caps = [min(cap, kind_kw[kind]) for cap, kind in zip(caps, kinds, strict=True)]
        return cls(
            bookings=bookings,
            start=start,
            slots=slots,
            share=slot_grid(problem.calendar, start, slots, problem.slot),
            firsts=np.array([w[0] for w in windows], dtype=int),
            lasts=np.array([min(w[1], slots) for w in windows], dtype=int),
            caps=np.array(caps),
            needs=np.array([float(b.energy_kwh) for b in bookings]),
            k=problem.slot.total_seconds() / 3600 * float(problem.tariff.efficiency),
            pdc=float(problem.tariff.peak_demand_charge),
            connectors=len(problem.connector_ids),
            kinds=np.array(kinds, dtype=int),
            kind_connectors=kind_connectors,
            connector_kind=connector_kind,
        )

    def unit_costs(self, i: int) -> np.ndarray:
        """GBP per kW drawn in each slot of booking i's window (its peak demand charge)."""
        f, last = int(self.firsts[i]), int(self.lasts[i])
        need = self.needs[i] if self.needs[i] > 0 else 1.0
        weights = acm_weights(self.share[f:last], self.bookings[i].overlapped)
        return self.pdc * weights * self.k / need

    def fewest_slots(self, i: int) -> int:
        """Slots a session needs at the connector's full power."""
        if self.needs[i] <= 0:
            return 0
        return max(1, math.ceil(self.needs[i] / (self.caps[i] * self.k) - 1e-9))

    def penalty(self, i: int) -> float:
        """GBP per kWh booking i is left short: earlier bookings weigh more."""
        n = len(self.bookings)
        return UNMET_PENALTY * (1.0 + FAIRNESS * (1.0 - i / max(n, 1)))


def _connector_kinds(
    problem: ScheduleProblem,
) -> tuple[list[int], tuple[int, ...], dict[int, int], list[float]]:
    """Each booking's kind, the connectors of each kind, each connector's kind and each
    kind's kW. A booking's kind is its connector's; without one (or one not on the site),
    the least powerful kind that gives its own power, else the most powerful."""
    ids = problem.connector_ids
    powers = [float(p) for p in problem.connector_power_kw]
    if len(powers) != len(ids) or len(set(powers)) <= 1:
        return [0] * len(problem.bookings), (len(ids),), dict.fromkeys(ids, 0), []
    kind_kw = sorted(set(powers))
    connector_kind = {c: kind_kw.index(p) for c, p in zip(ids, powers, strict=True)}
    kinds = []
    for b in problem.bookings:
        kind = connector_kind.get(b.connector_id) if b.connector_id is not None else None
        if kind is None:
            able = [k for k, kw in enumerate(kind_kw) if kw >= float(b.max_power_kw) - _TOL]
            kind = able[0] if able else len(kind_kw) - 1
        kinds.append(kind)
    counts = tuple(sum(1 for k in connector_kind.values() if k == j) for j in range(len(kind_kw)))
    return kinds, counts, connector_kind, kind_kw


@dataclass(frozen=True)
class _Candidates:
    owner: np.ndarray  # booking index of each candidate
    first: np.ndarray
    slots: np.ndarray
    power: np.ndarray
    cost: np.ndarray  # GBP: peak demand charge plus the penalty for any shortfall


def candidates(inst: Instance, items: Sequence[int], stretch: float) -> _Candidates:
    """Every session the model may choose for the given bookings."""
    owner: list[int] = []
    first: list[int] = []
    slots: list[int] = []
    power: list[float] = []
    cost: list[float] = []
    for i in items:
        f, last = int(inst.firsts[i]), int(inst.lasts[i])
        width = last - f
        need, cap = float(inst.needs[i]), float(inst.caps[i])
        if width <= 0 or need <= 0:
            continue
        unit = inst.unit_costs(i)
        running = np.concatenate([[0.0], np.cumsum(unit)])
        fewest = inst.fewest_slots(i)
        most = min(width, max(fewest, math.floor(fewest * stretch)))
        lengths: Sequence[int] = range(fewest, most + 1)
        if inst.lengths and len(lengths) > inst.lengths:
            spread = np.linspace(fewest, most, inst.lengths)
            lengths = sorted({round(n) for n in spread})
        lengths = sorted({*lengths, *_reaching_lengths(inst, i, width, fewest)})
        for n in lengths:
            p = need / (inst.k * n)
            starts = np.arange(0, width - n + 1, inst.start_step)
            if starts[-1] != width - n:
                starts = np.append(starts, width - n)  # the latest start, always
            owner += [i] * len(starts)
            first += list(f + starts)
            slots += [n] * len(starts)
            power += [p] * len(starts)
            cost += list(p * (running[starts + n] - running[starts]))
        levels = {cap * level for level in inst.partial_levels}
        if inst.limit is not None and 0 < inst.limit < cap:
            levels.add(inst.limit)  # the most a session can draw under the limit
        for s in range(max(0, width - fewest + 1), width):
            n = width - s
            for p in sorted(levels, reverse=True):
                short = need - p * n * inst.k
                if short <= _TOL:
                    continue
                owner.append(i)
                first.append(f + s)
                slots.append(n)
                power.append(p)
                cost.append(p * float(running[s + n] - running[s]) + inst.penalty(i) * short)
        kept = inst.preferred.get(i)
        if kept is not None and f <= kept.first and kept.last <= last and kept.slots > 0:
            delivered = kept.power * kept.slots * inst.k
            if 0 < kept.power <= cap + _TOL and delivered <= need + _TOL:
                owner.append(i)
                first.append(kept.first)
                slots.append(kept.slots)
                power.append(kept.power)
                a, b = kept.first - f, kept.last - f
                short = max(0.0, need - delivered)
                charge = kept.power * float(running[b] - running[a])
                cost.append(charge + inst.penalty(i) * short - KEEP_BONUS)
    return _Candidates(
        owner=np.array(owner, dtype=int),
        first=np.array(first, dtype=int),
        slots=np.array(slots, dtype=int),
        power=np.array(power),
        cost=np.array(cost),
    )


def _reaching_lengths(inst: Instance, i: int, width: int, fewest: int) -> set[int]:
    """Session lengths that meet booking i whatever `stretch` says, where its window allows.

    The whole window (the lowest steady power that meets it) and, under a site limit below
    the connector's power, the fewest slots at the limit: without them a limit the window
    could keep would leave the booking short.
    """
    out = {width} if width >= fewest else set()
    if inst.limit is not None and 0 < inst.limit < float(inst.caps[i]):
        n = max(1, math.ceil(float(inst.needs[i]) / (inst.limit * inst.k) - 1e-9))
        if n <= width:
            out.add(n)
    return out


@dataclass(frozen=True)
class ChunkResult:
    sessions: dict[int, Session]  # by booking index; absent: nothing delivered
    objective: float
    dual_bound: float
    optimal: bool


@dataclass
class _Model:
    """One chunk's MILP in SciPy's form, and where each candidate's slots are."""

    cands: _Candidates
    items: list[int]
    cost: np.ndarray
    constraint: LinearConstraint
    upper: np.ndarray
    integrality: np.ndarray
    lo_t: int
    room_cars: np.ndarray  # connectors free per slot of [lo_t, ...)
    room_kw: np.ndarray  # kW left under the limit per slot (inf without one)
    base_kw: np.ndarray  # the fixed load per slot

    @property
    def columns(self) -> int:
        return len(self.cands.owner)


def _build(
    inst: Instance,
    items: list[int],
    fixed_load: np.ndarray,
    fixed_cars: np.ndarray,
    limit: float | None,
    stretch: float,
) -> _Model:
    """The chunk's MILP, its slots in difference form.

    A session is an interval of slots, and intervals summed slot by slot give a dense
    matrix (a session of n slots, 2n entries). Instead L[t] and C[t], the kW and the cars
    of the chunk's sessions in slot t, are columns, and row t says L[t] - L[t-1] is what
    starts at t less what ends there: each candidate has four entries whatever its length,
    and the relaxation solves in about half the time.
    """
    cands = candidates(inst, items, stretch)
    row_of_item = {i: r for r, i in enumerate(items)}
    m = len(items)
    lo_t = int(cands.first.min())
    hi_t = int((cands.first + cands.slots).max())
    span = hi_t - lo_t
    nc = len(cands.owner)
    # Columns: the candidates, one "not served" share per item, the peak z, then L and C.
    z, load_col, cars_col = nc + m, nc + m + 1, nc + m + 1 + span
    # Rows: one per item, then the L rows, the C rows and the peak rows, span each.
    load_row, cars_row, peak_row = m, m + span, m + 2 * span
    slots = np.arange(span)
    starts = cands.first - lo_t
    ends = starts + cands.slots
    inside = np.flatnonzero(ends < span)  # a session ending at the chunk's end ends nothing
    ones = np.ones(nc)
    entries = [
        (np.array([row_of_item[int(o)] for o in cands.owner]), np.arange(nc), ones),
        (np.arange(m), nc + np.arange(m), np.ones(m)),
        (load_row + slots, load_col + slots, np.ones(span)),
        (load_row + slots[1:], load_col + slots[:-1], -np.ones(span - 1)),
        (load_row + starts, np.arange(nc), -cands.power),
        (load_row + ends[inside], inside, cands.power[inside]),
        (cars_row + slots, cars_col + slots, np.ones(span)),
        (cars_row + slots[1:], cars_col + slots[:-1], -np.ones(span - 1)),
        (cars_row + starts, np.arange(nc), -ones),
        (cars_row + ends[inside], inside, np.ones(len(inside))),
        (peak_row + slots, load_col + slots, np.ones(span)),
        (peak_row + slots, np.full(span, z), -np.ones(span)),
    ]
    rows, cols, vals = (np.concatenate(part) for part in zip(*entries, strict=True))
    matrix = sparse.csr_array((vals, (rows, cols)), shape=(m + 3 * span, nc + m + 1 + 2 * span))
    window = slice(lo_t, hi_t)
    room_cars = inst.connectors - fixed_cars[window].astype(float)
    upper_rows = np.concatenate([np.ones(m), np.zeros(2 * span), -fixed_load[window]])
    lower_rows = np.concatenate([np.ones(m), np.zeros(2 * span), np.full(span, -np.inf)])
    cost = np.concatenate(
        [
            cands.cost,
            [inst.penalty(i) * inst.needs[i] for i in items],
            [PEAK_WEIGHT],
            np.zeros(2 * span),
        ]
    )
    z_top = np.inf
    if limit is not None:
        z_top = max(limit, float(fixed_load[window].max(initial=0.0)))
    return _Model(
        cands=cands,
        items=items,
        cost=cost,
        constraint=LinearConstraint(matrix, lower_rows, upper_rows),
        upper=np.concatenate([np.ones(nc + m), [z_top], np.full(span, np.inf), room_cars]),
        integrality=np.concatenate([np.ones(nc), np.zeros(m + 1 + 2 * span)]),
        lo_t=lo_t,
        room_cars=room_cars,
        room_kw=z_top - fixed_load[window],
        base_kw=fixed_load[window].astype(float),
    )


@dataclass(frozen=True)
class _Solved:
    x: np.ndarray | None
    value: float
    dual_bound: float
    optimal: bool


def _highs(
    model: _Model,
    lower: np.ndarray,
    upper: np.ndarray,
    *,
    integer: bool,
    start: np.ndarray | None = None,
    time_limit_s: float | None = None,
    gaps: tuple[float, float] = (1e-4, 0.0),
) -> _Solved:
    """Solve the model (or its LP relaxation) with HiGHS, from `start` when given."""
    h = _load(model, lower, upper, integer=integer)
    if time_limit_s is not None:
        h.setOptionValue("time_limit", max(float(time_limit_s), MIN_SOLVE_S))
    h.setOptionValue("mip_rel_gap", gaps[0])
    h.setOptionValue("mip_abs_gap", gaps[1])
    if integer and start is not None:
        solution = highspy.HighsSolution()
        solution.col_value = start
        solution.value_valid = True
        h.setSolution(solution)
    return _run(h, integer=integer)


def _run(h: highspy.Highs, *, integer: bool, deadline: float | None = None) -> _Solved:
    """Run HiGHS; with a deadline (time.perf_counter()), for no longer than what is left."""
    if deadline is not None:
        h.setOptionValue("time_limit", max(deadline - time.perf_counter(), MIN_SOLVE_S))
    h.run()
    status = h.getModelStatus()
    info = h.getInfo()
    if info.primal_solution_status != 2:  # kSolutionStatusFeasible
        return _Solved(None, np.inf, -np.inf, False)
    x = np.array(h.getSolution().col_value)
    value = float(info.objective_function_value)
    optimal = status == highspy.HighsModelStatus.kOptimal
    dual = float(info.mip_dual_bound) if integer else value
    return _Solved(x, value, dual if np.isfinite(dual) else -np.inf, optimal)


def _new_highs() -> highspy.Highs:
    """A HiGHS instance. The first one of a process writes HiGHS' banner to the standard
    output before any option can silence it: that banner goes to the log instead."""
    with _banner_lock:
        if _banner_logged.is_set():
            return highspy.Highs()
        if sys.stdout is not None:
            sys.stdout.flush()  # what Python wrote before stays on the standard output
        try:
            saved = os.dup(1)
        except OSError:  # no standard output at all (a windowed app): nothing to silence
            _banner_logged.set()
            return highspy.Highs()
        with tempfile.TemporaryFile() as caught:
            os.dup2(caught.fileno(), 1)
            try:
                h = highspy.Highs()
            finally:
                os.dup2(saved, 1)
                os.close(saved)
            caught.seek(0)
            banner = caught.read().decode(errors="replace")
        _banner_logged.set()
    for line in banner.splitlines():
        log.debug("HiGHS: %s", line)
    return h


def _load(model: _Model, lower: np.ndarray, upper: np.ndarray, *, integer: bool) -> highspy.Highs:
    """A HiGHS instance holding the model (integer or its LP relaxation), quiet, one thread."""
    h = _new_highs()
    h.silent()
    h.setOptionValue("threads", 1)
    matrix = model.constraint.A.tocsc()
    lp = highspy.HighsLp()
    lp.num_col_ = matrix.shape[1]
    lp.num_row_ = matrix.shape[0]
    lp.col_cost_ = model.cost
    lp.col_lower_ = lower
    lp.col_upper_ = np.where(np.isfinite(upper), upper, highspy.kHighsInf)
    lp.row_lower_ = np.where(
        np.isfinite(model.constraint.lb), model.constraint.lb, -highspy.kHighsInf
    )
    lp.row_upper_ = np.where(
        np.isfinite(model.constraint.ub), model.constraint.ub, highspy.kHighsInf
    )
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = matrix.indptr
    lp.a_matrix_.index_ = matrix.indices
    lp.a_matrix_.value_ = matrix.data
    if integer:
        integer_kind = highspy.HighsVarType.kInteger
        continuous = highspy.HighsVarType.kContinuous
        lp.integrality_ = [integer_kind if v else continuous for v in model.integrality]
    h.passModel(lp)
    return h


def _dive(
    model: _Model, h: highspy.Highs, first: np.ndarray, deadline: float
) -> tuple[np.ndarray, float]:
    """Round the LP: fix the largest shares to 1 where they still fit, re-solve, repeat.

    `h` holds the solved relaxation; each re-solve starts from the last basis. Every round
    fixes or bans at least one candidate, so this ends; at the deadline it stops early.
    """
    nc = model.columns
    cands = model.cands
    lower = np.zeros(len(model.cost))
    upper = model.upper.copy()
    cars = np.zeros(len(model.room_cars))
    kw = np.zeros(len(model.room_kw))
    served: set[int] = set()
    x = first
    while time.perf_counter() < deadline:
        shares = x[:nc]
        open_ = (lower[:nc] < 0.5) & (upper[:nc] > 0.5) & (shares > 1e-6)
        if not (open_ & (shares < 1 - 1e-6)).any():
            break
        order = np.flatnonzero(open_)
        order = order[np.argsort(-shares[order], kind="stable")]
        changed: list[int] = []
        for j in order:
            owner = int(cands.owner[j])
            if owner in served:
                continue
            if changed and shares[j] < DIVE_SHARE:
                break
            a = int(cands.first[j]) - model.lo_t
            b = a + int(cands.slots[j])
            fits = (cars[a:b] + 1 <= model.room_cars[a:b] + 1e-9).all() and (
                kw[a:b] + cands.power[j] <= model.room_kw[a:b] + 1e-6
            ).all()
            changed.append(int(j))
            if not fits:
                upper[j] = 0.0
                continue
            lower[j] = 1.0
            served.add(owner)
            siblings = np.flatnonzero((cands.owner == owner) & (np.arange(nc) != j))
            upper[siblings] = 0.0
            changed += siblings.tolist()
            cars[a:b] += 1
            kw[a:b] += cands.power[j]
        index = np.array(sorted(set(changed)), dtype=np.int32)
        h.changeColsBounds(len(index), index, lower[index], upper[index])
        result = _run(h, integer=False, deadline=deadline)
        if result.x is None:
            break
        x = result.x
    return _assemble(model, x[:nc], lower[:nc] > 0.5)


def _assemble(model: _Model, shares: np.ndarray, fixed: np.ndarray) -> tuple[np.ndarray, float]:
    """A choice that fits: the fixed candidates, then by LP share, then the cheapest that fit.

    The last step makes a schedule of whatever the rounding reached when its time ran out.
    """
    cands = model.cands
    nc = model.columns
    chosen = np.zeros(nc)
    used_cars = np.zeros(len(model.room_cars))
    used_kw = np.zeros(len(model.room_kw))
    served: set[int] = set()
    by_share = np.lexsort((cands.cost, -np.where(fixed, 2.0, shares)))
    by_cost = np.argsort(cands.cost, kind="stable")
    for j in [*by_share[shares[by_share] > 1e-6], *by_cost]:
        owner = int(cands.owner[j])
        if owner in served:
            continue
        a = int(cands.first[j]) - model.lo_t
        b = a + int(cands.slots[j])
        if (used_cars[a:b] + 1 <= model.room_cars[a:b] + 1e-9).all() and (
            used_kw[a:b] + cands.power[j] <= model.room_kw[a:b] + 1e-6
        ).all():
            chosen[j] = 1.0
            served.add(owner)
            used_cars[a:b] += 1
            used_kw[a:b] += cands.power[j]
    return chosen, _objective(model, chosen, used_kw)


def _objective(model: _Model, chosen: np.ndarray, used_kw: np.ndarray) -> float:
    nc = model.columns
    served = set(model.cands.owner[chosen > 0.5].tolist())
    not_served = np.array([0.0 if i in served else 1.0 for i in model.items])
    peak = float((model.base_kw + used_kw).max(initial=0.0))
    served_cost = model.cost[nc : nc + len(model.items)] @ not_served
    return float(model.cost[:nc] @ chosen + served_cost) + PEAK_WEIGHT * peak


def solve_chunk(
    inst: Instance,
    items: Sequence[int],
    fixed_load: np.ndarray,
    fixed_cars: np.ndarray,
    limit: float | None,
    *,
    stretch: float,
    time_limit_s: float | None,
    mip_rel_gap: float,
    mip_abs_gap: float,
    deadline: float | None = None,
) -> ChunkResult | None:
    """One chunk: the LP's bound, a rounding of it, then branch and bound from that rounding.

    `deadline` (time.perf_counter()) caps every solve, whatever the chunk's own limit says.
    """
    began = time.perf_counter()
    items = list(items)
    if not len(candidates(inst, items, stretch).owner):
        return ChunkResult({}, sum(inst.penalty(i) * inst.needs[i] for i in items), 0.0, True)
    model = _build(inst, items, fixed_load, fixed_cars, limit, stretch)
    nc = model.columns
    lower = np.zeros(len(model.cost))
    budget = np.inf if time_limit_s is None else time_limit_s
    if deadline is not None:
        budget = min(budget, deadline - began)
    relaxation = _load(model, lower, model.upper, integer=False)
    root_until = None
    if np.isfinite(budget):
        root_until = began + max(budget * 0.8, 1.0)
        root_until = root_until if deadline is None else min(root_until, deadline)
    root = _run(relaxation, integer=False, deadline=root_until)
    if root.x is None:
        log.warning("HiGHS did not solve the relaxation of %d bookings in time", len(items))
        return None
    relaxation.setOptionValue("time_limit", highspy.kHighsInf)
    bound = root.value
    dive_until = began + min(budget, max(budget / 2, DIVE_SECONDS))  # never past the budget
    chosen, value = _dive(model, relaxation, root.x, dive_until)
    if value - bound > max(mip_abs_gap, mip_rel_gap * abs(value)):
        remaining = budget - (time.perf_counter() - began)
        if remaining > 0.1:
            start = _full_start(model, chosen)
            exact = _highs(
                model,
                lower,
                model.upper,
                integer=True,
                start=start,
                time_limit_s=None if not np.isfinite(remaining) else remaining,
                gaps=(mip_rel_gap, mip_abs_gap),
            )
            if exact.x is not None and exact.value < value:
                chosen, value = np.round(exact.x[:nc]), exact.value
            bound = max(bound, exact.dual_bound)
    cands = model.cands
    sessions = {
        int(cands.owner[j]): Session(
            int(cands.first[j]), int(cands.slots[j]), float(cands.power[j])
        )
        for j in np.flatnonzero(chosen > 0.5)
    }
    return ChunkResult(
        sessions=sessions,
        objective=value,
        dual_bound=bound,
        optimal=value - bound <= max(mip_abs_gap, mip_rel_gap * abs(value)) + 1e-9,
    )


def _full_start(model: _Model, chosen: np.ndarray) -> np.ndarray:
    """Every column's value for a choice of candidates: the "not served" shares and the peak."""
    cands = model.cands
    served = set(cands.owner[chosen > 0.5].tolist())
    not_served = np.array([0.0 if i in served else 1.0 for i in model.items])
    used = np.zeros(len(model.room_kw))
    cars = np.zeros(len(model.room_kw))
    for j in np.flatnonzero(chosen > 0.5):
        a = int(cands.first[j]) - model.lo_t
        used[a : a + int(cands.slots[j])] += cands.power[j]
        cars[a : a + int(cands.slots[j])] += 1
    peak = float((model.base_kw + used).max(initial=0.0))
    return np.concatenate([chosen, not_served, [peak], used, cars])


@dataclass(frozen=True)
class MilpPlan:
    """The sessions the rolling horizon chose, and how close to optimal each day got."""

    sessions: dict[int, Session]
    chunks: int
    optimal_chunks: int
    fallback_chunks: int  # days HiGHS found nothing in time for: the heuristic's sessions
    seconds: float


def _cut_offset(inst: Instance, chunk: int) -> int:
    """The slot of the day (0..chunk-1) that the fewest windows span, on average."""
    cover = np.zeros(inst.slots + chunk)
    for f, last in zip(inst.firsts, inst.lasts, strict=True):
        cover[f:last] += 1
    by_phase = [cover[phase::chunk].mean() for phase in range(chunk)]
    return int(np.argmin(by_phase))


def _heuristic_sessions(
    inst: Instance, items: Sequence[int], load: np.ndarray, cars: np.ndarray, limit: float | None
) -> dict[int, Session]:
    """Earliest window first, the cheapest then least loaded full-power session that fits."""
    out: dict[int, Session] = {}
    for i in sorted(items, key=lambda i: (int(inst.firsts[i]), int(inst.lasts[i]))):
        cands = candidates(inst, [i], 1.0)
        best: tuple[float, float, int] | None = None
        for j in range(len(cands.owner)):
            a, b = int(cands.first[j]), int(cands.first[j] + cands.slots[j])
            if (cars[a:b] >= inst.connectors).any():
                continue
            if limit is not None and (load[a:b] + cands.power[j] > limit + _TOL).any():
                continue
            option = (float(cands.cost[j]), float(load[a:b].max()), j)
            if best is None or option < best:
                best = option
        if best is not None:
            j = best[2]
            s = Session(int(cands.first[j]), int(cands.slots[j]), float(cands.power[j]))
            out[i] = s
            load[s.first : s.last] += s.power
            cars[s.first : s.last] += 1
    return out


def plan_sessions(
    inst: Instance,
    limit: float | None,
    options: MilpOptions,
    *,
    fixed_load: np.ndarray | None = None,
    fixed_cars: np.ndarray | None = None,
    progress: Progress | None = None,
) -> MilpPlan:
    """The rolling horizon: day by day, earlier days fixed, within the time budget.

    A re-plan (sessions already sent, `inst.preferred`) starts from those sessions instead,
    the bookings without one added greedily, and repairs that (see `_improve`): what it
    changes stays near what needs it, and no time goes on re-solving the whole day.
    """
    began = time.perf_counter()
    inst.start_step, inst.lengths = max(1, options.start_step), max(0, options.lengths)
    inst.partial_levels = options.partial_levels
    inst.limit = limit
    if inst.preferred and options.time_budget_s > 0:
        return _replan_from_sent(inst, limit, options, fixed_load, fixed_cars, began)
    per_slot = (inst.start + timedelta(minutes=15)) - inst.start
    chunk = max(1, int(options.chunk / per_slot))
    ahead = int(options.lookahead / per_slot)
    offset = _cut_offset(inst, chunk)
    index = (inst.firsts - offset + chunk) // chunk
    days = sorted(set(index.tolist()))
    load = np.zeros(inst.slots) if fixed_load is None else fixed_load.astype(float).copy()
    cars = np.zeros(inst.slots, dtype=int) if fixed_cars is None else fixed_cars.copy()
    sessions: dict[int, Session] = {}
    optimal = fallback = 0
    for done, day in enumerate(days):
        items = [int(i) for i in np.flatnonzero(index == day)]
        end = (day * chunk) + offset
        preview = [int(i) for i in np.flatnonzero((index == day + 1) & (inst.firsts < end + ahead))]
        remaining = FORWARD_SHARE * options.time_budget_s - (time.perf_counter() - began)
        share = remaining / (len(days) - done)
        result = None  # no time at all: the heuristic's sessions
        if options.time_budget_s > 0 and share > 0:
            result = solve_chunk(
                inst,
                items + preview,
                load,
                cars,
                limit,
                stretch=options.stretch,
                time_limit_s=share,
                mip_rel_gap=options.mip_rel_gap,
                mip_abs_gap=options.mip_abs_gap,
                deadline=began + options.time_budget_s,
            )
        if result is not None:
            log.debug(
                "Day %d: %d bookings (+%d preview), %.4f against a bound of %.4f, served %d",
                day,
                len(items),
                len(preview),
                result.objective,
                result.dual_bound,
                len(result.sessions),
            )
        if result is None:
            fallback += 1
            chosen = _heuristic_sessions(inst, items, load, cars, limit)
        else:
            optimal += result.optimal
            chosen = {i: s for i, s in result.sessions.items() if i in set(items)}
            for s in chosen.values():
                load[s.first : s.last] += s.power
                cars[s.first : s.last] += 1
        sessions.update(chosen)
        if progress is not None:
            progress(done + 1, len(days))
    base_load = np.zeros(inst.slots) if fixed_load is None else fixed_load.astype(float)
    base_cars = np.zeros(inst.slots, dtype=int) if fixed_cars is None else fixed_cars
    sessions = _improve(
        inst, sessions, base_load, base_cars, limit, options, began + options.time_budget_s
    )
    return MilpPlan(sessions, len(days), optimal, fallback, time.perf_counter() - began)


def _replan_from_sent(
    inst: Instance,
    limit: float | None,
    options: MilpOptions,
    fixed_load: np.ndarray | None,
    fixed_cars: np.ndarray | None,
    began: float,
) -> MilpPlan:
    """The sessions already sent where they still fit, the other bookings greedily, repaired."""
    base_load = np.zeros(inst.slots) if fixed_load is None else fixed_load.astype(float)
    base_cars = np.zeros(inst.slots, dtype=int) if fixed_cars is None else fixed_cars.copy()
    load, cars = base_load.copy(), base_cars.copy()
    sessions: dict[int, Session] = {}
    for i, s in sorted(inst.preferred.items()):
        f, last = int(inst.firsts[i]), int(inst.lasts[i])
        fits = (
            inst.needs[i] > 0
            and f <= s.first
            and s.last <= last
            and (cars[s.first : s.last] < inst.connectors).all()
            and (limit is None or (load[s.first : s.last] + s.power <= limit + _TOL).all())
        )
        if fits:
            sessions[i] = s
            load[s.first : s.last] += s.power
            cars[s.first : s.last] += 1
    others = [i for i in range(len(inst.bookings)) if i not in sessions and inst.needs[i] > 0]
    sessions.update(_heuristic_sessions(inst, others, load, cars, limit))
    sessions = _improve(
        inst, sessions, base_load, base_cars, limit, options, began + options.time_budget_s
    )
    return MilpPlan(sessions, 1, 0, 0, time.perf_counter() - began)


def _session_cost(inst: Instance, i: int, session: Session | None) -> float:
    """The objective's share of booking i: its peak demand charge, and the penalty if short."""
    if session is None:
        return inst.penalty(i) * float(inst.needs[i])
    f = int(inst.firsts[i])
    unit = inst.unit_costs(i)[session.first - f : session.last - f]
    short = max(0.0, float(inst.needs[i]) - session.power * session.slots * inst.k)
    return session.power * float(unit.sum()) + inst.penalty(i) * short


def _short_kwh(inst: Instance, i: int, session: Session | None) -> float:
    delivered = 0.0 if session is None else session.power * session.slots * inst.k
    return max(0.0, float(inst.needs[i]) - delivered)


def _improve(
    inst: Instance,
    sessions: dict[int, Session],
    base_load: np.ndarray,
    base_cars: np.ndarray,
    limit: float | None,
    options: MilpOptions,
    deadline: float,
) -> dict[int, Session]:
    """Large-neighbourhood search on what the rolling horizon left short or dear.

    First each booking short (first booked first), then the ones paying most above their
    cheapest session: every booking whose window meets its own, widened by REPAIR_REACH
    slots, is re-planned together (the LP rounded, then branch and bound from the better
    of that and the current sessions), the rest fixed; a re-plan is kept only if better.
    While time is left, what is still short is tried again with twice and four times the
    reach.
    """
    sessions = dict(sessions)
    every = range(len(inst.bookings))
    every_candidate = candidates(inst, every, options.stretch)
    least = np.full(len(inst.bookings), np.inf)
    np.minimum.at(least, every_candidate.owner, every_candidate.cost)
    cheapest = {
        i: float(least[i]) if np.isfinite(least[i]) else _session_cost(inst, i, None) for i in every
    }

    def excess(i: int) -> float:
        return _session_cost(inst, i, sessions.get(i)) - cheapest[i]

    for reach in (REPAIR_REACH, 2 * REPAIR_REACH, 4 * REPAIR_REACH):
        short = [i for i in every if _short_kwh(inst, i, sessions.get(i)) > _TOL]
        dear = [i for i in every if i not in set(short) and excess(i) > 0.01]
        if reach > REPAIR_REACH:
            dear = []  # wider neighbourhoods only for what is still short
        done: set[int] = set()
        for i in [*short, *sorted(dear, key=excess, reverse=True)]:
            if deadline - time.perf_counter() < 0.2:
                return sessions
            if i in done or excess(i) <= 0.01:
                continue  # an earlier re-plan took care of it
            a, b = int(inst.firsts[i]) - reach, int(inst.lasts[i]) + reach
            group = [j for j in every if int(inst.firsts[j]) < b and int(inst.lasts[j]) > a]
            sessions = _replan(
                inst, sessions, group, base_load, base_cars, limit, options, deadline
            )
            done.add(i)
        if not short:
            break
    return sessions


def _replan(
    inst: Instance,
    sessions: dict[int, Session],
    group: list[int],
    base_load: np.ndarray,
    base_cars: np.ndarray,
    limit: float | None,
    options: MilpOptions,
    deadline: float,
) -> dict[int, Session]:
    """The group re-planned with every other session fixed, if that is better."""
    members = set(group)
    others = {j: s for j, s in sessions.items() if j not in members}
    load, cars = base_load.copy(), base_cars.copy()
    for s in others.values():
        load[s.first : s.last] += s.power
        cars[s.first : s.last] += 1
    if not len(candidates(inst, group, options.stretch).owner):
        return sessions
    model = _build(inst, group, load, cars, limit, options.stretch)
    cands = model.cands
    chosen = np.zeros(model.columns)
    for j in group:
        s = sessions.get(j)
        if s is None:
            continue
        match = np.flatnonzero(
            (cands.owner == j)
            & (cands.first == s.first)
            & (cands.slots == s.slots)
            & np.isclose(cands.power, s.power)
        )
        if len(match):
            chosen[match[0]] = 1.0
    start = _full_start(model, chosen)
    before = float(model.cost @ start)
    best, value = chosen, before
    relaxation = _load(model, np.zeros(len(model.cost)), model.upper, integer=False)
    root = _run(relaxation, integer=False, deadline=deadline)
    if root.x is None:
        return sessions
    rounded, rounded_value = _dive(
        model, relaxation, root.x, min(deadline, time.perf_counter() + REPAIR_SECONDS)
    )
    if rounded_value < value:
        best, value = rounded, rounded_value
    remaining = deadline - time.perf_counter()
    if value - root.value > options.mip_abs_gap and remaining > 0.2:
        exact = _highs(
            model,
            np.zeros(len(model.cost)),
            model.upper,
            integer=True,
            start=_full_start(model, best),
            time_limit_s=min(remaining, REPAIR_SECONDS),
            gaps=(options.mip_rel_gap, options.mip_abs_gap),
        )
        if exact.x is not None and exact.value < value:
            best, value = np.round(exact.x[: model.columns]), exact.value
    if value >= before - _TOL:
        return sessions
    out = dict(others)
    for j in np.flatnonzero(best > 0.5):
        out[int(cands.owner[j])] = Session(
            int(cands.first[j]), int(cands.slots[j]), float(cands.power[j])
        )
    log.debug("Re-planned %d bookings: %.4f -> %.4f", len(group), before, value)
    return out
