"""The site schedule with power per slot: each car's session fitted to the room left.

milp.py chooses among candidate sessions of one steady power each. Under a tight site
limit that is the binding restriction: a car should draw its connector's full power while
the site has room and less while it has not, and a slow steady session holds a connector
that a later car needs. Here a session is an interval of slots on a connector with a power
per slot, changing level at most MAX_POWER_CHANGES times, and the schedule is built and
improved by insertion, each step within the time budget:

1. From a start (the schedule under a looser limit, the least-cost MILP's, or, in a
   live re-plan, the sessions already sent): its sessions met in full and clear of the
   slots where it breaks the limit are kept; the rest, earliest latest-departure first,
   keep theirs if it still fits, or take the cheapest session that leaves them least
   short (a re-plan: least slack first, the soonest ended). A re-plan's sessions already
   sent count KEEP_BONUS cheaper, so every step changes one only for more than that. From
   each start in its window a car draws, slot by slot, what its connector and the site's
   room allow until its energy is in, the profile scaled down to exactly that energy (a
   flat room: one steady power).
2. Each booking in booking order is moved to its cheapest session that is no shorter.
3. Each booking left short is re-planned with every booking whose session meets its
   window: taken out together, put back short one first; kept only if that ranks better
   (penalty-weighted energy short, earlier bookings weighing more, then cost).
4. Each booking still short, first booked first, re-planned by a time-indexed MILP
   (HiGHS, from the sessions they have) with the 5, then 9, then 14 bookings drawing most
   in its window, the rest fixed (_exact): per slot whether each car is on, its power and
   whether it changes, one start, at most MAX_POWER_CHANGES changes; kept only if it
   ranks better. The insertion places one car at a time, so it misses a shortfall that
   only moving several neighbours at once clears. It leaves a tenth of the budget
   (POLISH_SHARE) to the steps after it: the last can clear a small shortfall cheaply.
5. The same as 3 for the bookings paying most above their cheapest session.
6. (The evaluation's schedules, `descend`; half the time left) each booking paying above
   its cheapest session, dearest first, re-planned as in 4 with the 5, then 9, bookings
   drawing most in its window (_exact_dear).
7. (`descend`, the rest of the time) each booking still paying above its cheapest
   session, dearest first, re-planned with every booking whose window lies inside its own
   widened by 2 hours either side: a MILP (HiGHS, from the sessions they have) that
   chooses one candidate session each, met in full, under the limit and the connectors
   (_reoptimise); kept only if it costs less.
8. With the intervals fixed, one LP over every slot's power minimises the penalty for
   energy short, the peak demand charges and a small charge per kW of change; kept if it
   ranks better.

Any session with more changes than the bound draws the highest profile under its own with
that many changes (lower power never breaks a limit). Connectors of one power are
interchangeable, so at most C cars at a time on the C connectors of a booking's power is
one car per connector: optimal.py gives each session its connector by interval colouring.
The bound beside every schedule is optimal.py's relaxation: no schedule, from this model
or any other, is short less or costs less.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import highspy
import numpy as np
from scipy import sparse

from evcms_desktop.schedule.milp import (
    KEEP_BONUS,
    MAX_POWER_CHANGES,
    PEAK_WEIGHT,
    Instance,
    MilpOptions,
    Session,
    _new_highs,
    _run,
)

log = logging.getLogger(__name__)

MIN_KW = 1.0  # a car holding a connector draws at least this (less only for a tiny need)
REOPT_SECONDS = 1.0  # at most, per re-planned group
REACH = 8  # slots either side of a dear booking's window re-planned with it
MIN_EXACT_S = 0.3  # the least time left worth a time-indexed MILP
POLISH_SHARE = 0.1  # of the budget the time-indexed re-plans leave for the last steps
# A short booking's time-indexed re-plans: with this many of its neighbours, for this long
EXACT_GROUPS = ((5, 1.0), (9, 2.0), (14, 3.0))
CHANGE_WEIGHT = 1e-3  # GBP per kW of change in a session's power: steady levels first
_TOL = 1e-6

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ProfilePlan:
    """What the insertion chose; the same fields as milp.MilpPlan (no days here)."""

    sessions: dict[int, Session]
    chunks: int
    optimal_chunks: int
    fallback_chunks: int
    seconds: float


def _min_kw(inst: Instance, i: int) -> float:
    return min(MIN_KW, float(inst.needs[i]) / inst.k, float(inst.caps[i]))


def _changes(powers: np.ndarray) -> int:
    return int((np.abs(np.diff(powers)) > _TOL).sum())


def _kind(inst: Instance, i: int) -> int:
    """Booking i's kind of connector (by power; 0 where every connector is alike)."""
    return int(inst.kinds[i]) if len(inst.kinds) else 0


def _capacity(inst: Instance) -> tuple[int, ...]:
    """The connectors of each kind."""
    return inst.kind_connectors or (inst.connectors,)


def kind_cars(inst: Instance, cars: np.ndarray | None) -> np.ndarray:
    """Cars on connectors per kind and slot, from a count per slot (one kind) or per kind
    and slot, or none at all."""
    if cars is None:
        return np.zeros((len(_capacity(inst)), inst.slots), dtype=int)
    return cars.reshape(1, -1).copy() if cars.ndim == 1 else cars.copy()


@dataclass
class _Site:
    """The sessions placed so far, the site's load and the cars on connectors per kind of
    connector (by power) and slot."""

    inst: Instance
    limit: float | None
    load: np.ndarray
    cars: np.ndarray
    sessions: dict[int, Session]

    def add(self, i: int, s: Session) -> None:
        self.sessions[i] = s
        self.load[s.first : s.last] += s.profile
        self.cars[_kind(self.inst, i), s.first : s.last] += 1

    def remove(self, i: int) -> Session | None:
        s = self.sessions.pop(i, None)
        if s is not None:
            self.load[s.first : s.last] -= s.profile
            self.cars[_kind(self.inst, i), s.first : s.last] -= 1
        return s

    def short(self, i: int, s: Session | None = None) -> float:
        s = self.sessions.get(i) if s is None else s
        delivered = 0.0 if s is None else sum(s.profile) * self.inst.k
        return max(0.0, float(self.inst.needs[i]) - delivered)

    def cost(self, i: int, s: Session | None = None) -> float:
        """Its peak demand charges; KEEP_BONUS less for the session a re-plan already sent
        (`inst.preferred`), so a change must gain more than that."""
        s = self.sessions.get(i) if s is None else s
        if s is None:
            return 0.0
        f = int(self.inst.firsts[i])
        charge = float(np.asarray(s.profile) @ self.inst.unit_costs(i)[s.first - f : s.last - f])
        return charge - KEEP_BONUS if s == self.inst.preferred.get(i) else charge


def _profile(power: np.ndarray, need: float, k: float, floor: float) -> np.ndarray | None:
    """`power` (the most each slot allows) scaled down to deliver exactly `need`, or the
    whole of it when it delivers less; None when a slot would fall below `floor`."""
    delivered = float(power.sum()) * k
    if delivered > need:
        power = power * (need / delivered)
    return power if float(power.min()) >= floor - _TOL else None


def _option_table(
    site: _Site, i: int, cap: float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, Callable[[int], Session]] | None:
    """Booking i's sessions from every start it can take now, as arrays (short kWh, last
    slot, cost), and a maker of the session in row r; None if there is none. `cap`: the
    most it may draw, if not its connector's power.

    From a start a car draws what the room allows until its energy is in, scaled down to
    exactly it; a stretch with more changes than the bound draws the highest profile under
    it with that many (`_fewest_changes`). Whole-array arithmetic over the starts: a
    re-plan asks this thousands of times within its budget.
    """
    inst = site.inst
    f, last = int(inst.firsts[i]), int(inst.lasts[i])
    need, k = float(inst.needs[i]), inst.k
    cap = float(inst.caps[i]) if cap is None else cap
    if last <= f or need <= 0:
        return None
    floor = _min_kw(inst, i)
    room = np.full(last - f, cap)
    if site.limit is not None:
        room = np.minimum(room, site.limit - site.load[f:last])
    kind = _kind(inst, i)
    ok = (site.cars[kind, f:last] < _capacity(inst)[kind]) & (room >= floor - _TOL)
    room = np.where(ok, room, 0.0)
    starts = np.flatnonzero(ok)
    if not len(starts):
        return None
    width = last - f
    energy = np.concatenate([[0.0], np.cumsum(room) * k])
    blocked = np.append(np.flatnonzero(~ok), width)
    stops = blocked[np.searchsorted(blocked, starts)]  # the run of free slots from each start
    reach = np.searchsorted(energy, energy[starts] + need - 1e-9)
    ends = np.minimum(np.maximum(reach, starts + 1), stops)
    step = np.concatenate([[0], np.cumsum(np.abs(np.diff(room)) > _TOL)])
    changes = step[ends - 1] - step[starts]
    unit = inst.unit_costs(i)
    priced = np.concatenate([[0.0], np.cumsum(room * unit)])
    drawn = energy[ends] - energy[starts]
    scale = np.where(drawn > need, need / np.maximum(drawn, _TOL), 1.0)
    pairs = np.column_stack([starts, ends]).ravel()
    lowest = np.minimum.reduceat(np.append(room, np.inf), pairs)[::2]  # of each room[a:end]
    short = np.maximum(0.0, need - drawn * scale)
    cost = scale * (priced[ends] - priced[starts])
    valid = lowest * scale >= floor - _TOL
    lengths = ends - starts
    profiles: dict[int, np.ndarray] = {}
    for r in np.flatnonzero(changes > MAX_POWER_CHANGES):
        a = int(starts[r])
        power = _fewest_changes(room[a : int(stops[r])], int(lengths[r]), need, k)
        profile = _profile(power, need, k, floor)
        valid[r] = profile is not None
        if profile is not None:
            profiles[int(r)] = profile
            lengths[r] = len(profile)
            short[r] = max(0.0, need - float(profile.sum()) * k)
            cost[r] = float(profile @ unit[a : a + len(profile)])
    rows = np.flatnonzero(valid)
    if not len(rows):
        return None

    def make(r: int) -> Session:
        row = int(rows[r])
        a = int(starts[row])
        profile = profiles.get(row)
        if profile is None:
            profile = room[a : a + int(lengths[row])] * scale[row]
        return Session.of_profile(f + a, tuple(float(v) for v in profile))

    # Rounded, so that equal sessions tie whatever the sums' rounding: the earliest wins.
    return np.round(short[rows], 6), f + starts[rows] + lengths[rows], np.round(cost[rows], 9), make


def _fewest_changes(room: np.ndarray, shortest: int, need: float, k: float) -> np.ndarray:
    """The best profile within the change bound over the shortest start of `room` (at
    least `shortest` slots) that delivers `need`, or over all of it when none does: one
    dynamic programme gives the best of every start."""
    best, cut, lowest = _levels(room, MAX_POWER_CHANGES)
    most = best[1:].max(axis=0) * k  # kWh of the best profile over each start of room
    enough = np.flatnonzero(most[shortest:] >= need - 1e-9)
    n = shortest + int(enough[0]) if len(enough) else len(room)
    return _traced(best, cut, lowest, n)


def _insert(site: _Site, i: int, *, cheapest: bool) -> None:
    """Booking i takes its least short session, then the soonest ended (or the cheapest)."""
    options = _option_table(site, i)
    if options is None:
        return
    short, last, cost, make = options
    keys = (last, cost, short) if cheapest else (cost, last, short)  # lexsort: last key first
    site.add(i, make(int(np.lexsort(keys)[0])))


def _fits(site: _Site, i: int, s: Session) -> bool:
    """Whether session s of booking i fits what is placed: its window, a connector and
    the site's room in every slot, and the bound on changes."""
    inst = site.inst
    if s.first < int(inst.firsts[i]) or s.last > int(inst.lasts[i]):
        return False
    if _changes(np.asarray(s.profile)) > MAX_POWER_CHANGES:
        return False
    kind = _kind(inst, i)
    if (site.cars[kind, s.first : s.last] >= _capacity(inst)[kind]).any():
        return False
    if site.limit is None:
        return True
    return bool((site.load[s.first : s.last] + s.profile <= site.limit + _TOL).all())


def _rank(site: _Site, items: Sequence[int]) -> tuple[float, float]:
    short = sum(site.short(i) * site.inst.penalty(i) for i in items)
    return (round(short, 6), sum(site.cost(i) for i in items))


def _load_lp(
    cost: np.ndarray,
    upper: np.ndarray,
    matrix: sparse.csc_array,
    row_lower: np.ndarray,
    row_upper: np.ndarray,
    lower: np.ndarray | None = None,
) -> highspy.Highs:
    h = _new_highs()
    h.silent()
    h.setOptionValue("threads", 1)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = matrix.shape[1], matrix.shape[0]
    lp.col_cost_ = cost
    lp.col_lower_ = np.zeros(matrix.shape[1]) if lower is None else lower
    lp.col_upper_ = np.where(np.isfinite(upper), upper, highspy.kHighsInf)
    lp.row_lower_ = np.where(np.isfinite(row_lower), row_lower, -highspy.kHighsInf)
    lp.row_upper_ = np.where(np.isfinite(row_upper), row_upper, highspy.kHighsInf)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = matrix.indptr
    lp.a_matrix_.index_ = matrix.indices
    lp.a_matrix_.value_ = matrix.data
    h.passModel(lp)
    return h


def _power_lp(
    inst: Instance,
    sessions: dict[int, tuple[int, int]],
    fixed_load: np.ndarray,
    limit: float | None,
    deadline: float | None = None,
) -> dict[int, np.ndarray]:
    """Each session's power per slot for fixed intervals, few changes preferred (nothing
    if HiGHS has not solved it by `deadline`)."""
    order = sorted(sessions)
    if not order:
        return {}
    lens = np.array([sessions[i][1] for i in order], dtype=int)
    firsts = np.array([sessions[i][0] for i in order], dtype=int)
    m, n_p = len(order), int(lens.sum())
    lo, hi = int(firsts.min()), int((firsts + lens).max())
    span = hi - lo
    base = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(int)
    p_item = np.repeat(np.arange(m), lens)
    p_slot = np.concatenate([np.arange(f, f + n) for f, n in zip(firsts, lens, strict=True)])
    inner = np.flatnonzero(np.arange(n_p) != base[p_item])  # p columns with a predecessor
    n_v = len(inner)
    short0, v0, z = n_p, n_p + m, n_p + m + n_v
    columns = z + 1
    # rows: m energy; span site; 2 n_v change rows (v >= +-(p[t] - p[t-1]))
    rows = [
        p_item,
        np.arange(m),
        m + p_slot - lo,
        m + np.arange(span),
        m + span + np.arange(n_v),
        m + span + np.arange(n_v),
        m + span + np.arange(n_v),
        m + span + n_v + np.arange(n_v),
        m + span + n_v + np.arange(n_v),
        m + span + n_v + np.arange(n_v),
    ]
    cols = [
        np.arange(n_p),
        short0 + np.arange(m),
        np.arange(n_p),
        np.full(span, z),
        inner,
        inner - 1,
        v0 + np.arange(n_v),
        inner - 1,
        inner,
        v0 + np.arange(n_v),
    ]
    vals = [
        np.full(n_p, inst.k),
        np.ones(m),
        np.ones(n_p),
        -np.ones(span),
        np.ones(n_v),
        -np.ones(n_v),
        -np.ones(n_v),
        np.ones(n_v),
        -np.ones(n_v),
        -np.ones(n_v),
    ]
    matrix = sparse.csc_array(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(m + span + 2 * n_v, columns),
    )
    needs = np.array([float(inst.needs[i]) for i in order])
    base_load = fixed_load[lo:hi].astype(float)
    row_lower = np.concatenate([needs, np.full(span + 2 * n_v, -np.inf)])
    row_upper = np.concatenate([needs, -base_load, np.zeros(2 * n_v)])
    cost = np.zeros(columns)
    for r, i in enumerate(order):
        f = int(inst.firsts[i])
        a = firsts[r] - f
        cost[base[r] : base[r] + lens[r]] = inst.unit_costs(i)[a : a + lens[r]]
        cost[short0 + r] = inst.penalty(i)
    cost[v0:z] = CHANGE_WEIGHT
    cost[z] = PEAK_WEIGHT
    caps = np.array([float(inst.caps[i]) for i in order])
    upper = np.concatenate([caps[p_item], needs, np.full(n_v, np.inf), [np.inf]])
    if limit is not None:
        upper[z] = max(limit, float(base_load.max(initial=0.0)))
    floors = np.minimum([_min_kw(inst, i) for i in order], needs / (inst.k * lens))
    lower = np.concatenate([floors[p_item], np.zeros(m + n_v + 1)])
    h = _load_lp(cost, upper, matrix, row_lower, row_upper, lower)
    solved = _run(h, integer=False, deadline=deadline)
    if solved.x is None:
        return {}
    x = solved.x
    return {i: x[base[r] : base[r] + lens[r]].copy() for r, i in enumerate(order)}


def few_changes(powers: np.ndarray, changes: int) -> np.ndarray:
    """The profile under `powers` (never above it in any slot) with at most `changes`
    changes of level that delivers the most energy: each level is the least power of its
    stretch, stretches chosen by dynamic programming."""
    if len(powers) == 0:
        return powers
    return _traced(*_levels(powers, changes), len(powers))


def _levels(powers: np.ndarray, changes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The dynamic programme of `few_changes` over every start powers[:b]: best[j, b] is
    the most energy (kW slots) of j levels over it, cut[j, b] where its last level begins,
    lowest[a, b] the least of powers[a:b]."""
    n = len(powers)
    levels = min(changes + 1, n)
    after = np.arange(n)[None, :] >= np.arange(n)[:, None]  # [a, t]: t >= a
    lowest = np.full((n, n + 1), np.inf)
    lowest[:, 1:] = np.minimum.accumulate(np.where(after, powers[None, :], np.inf), axis=1)
    best = np.full((levels + 1, n + 1), -np.inf)
    cut = np.zeros((levels + 1, n + 1), dtype=int)
    best[0, 0] = 0.0
    width = np.arange(n + 1)[None, :] - np.arange(n)[:, None]  # [a, b]: b - a
    area = np.where(width > 0, np.where(width > 0, lowest, 0.0) * width, -np.inf)
    for j in range(1, levels + 1):
        gains = best[j - 1, :n, None] + area
        cut[j] = np.argmax(gains, axis=0)
        best[j] = gains[cut[j], np.arange(n + 1)]
    best[1:, 0] = -np.inf
    return best, cut, lowest


def _traced(best: np.ndarray, cut: np.ndarray, lowest: np.ndarray, n: int) -> np.ndarray:
    """The profile of the best levels over powers[:n], traced back through `cut`."""
    j = int(np.argmax(best[1:, n])) + 1
    out = np.empty(n)
    b = n
    while b > 0:
        a = cut[j, b]
        out[a:b] = lowest[a, b]
        b, j = a, j - 1
    return out


def _steady(powers: np.ndarray) -> np.ndarray:
    """The profile with every level exactly flat (the LP's values differ by rounding)."""
    out = powers.copy()
    a = 0
    for b in range(1, len(powers) + 1):
        if b == len(powers) or abs(powers[b] - powers[b - 1]) > 1e-5:
            out[a:b] = powers[a:b].mean()
            a = b
    return out


def _polish(site: _Site, deadline: float | None = None) -> None:
    """The power LP over the intervals placed; its profiles kept if they rank better."""
    inst = site.inst
    items = list(site.sessions)
    before = _rank(site, range(len(inst.bookings)))
    intervals = {i: (s.first, s.slots) for i, s in site.sessions.items()}
    base = site.load.copy()
    for s in site.sessions.values():
        base[s.first : s.last] -= s.profile
    profiles = _power_lp(inst, intervals, base, site.limit, deadline)
    if not profiles:
        return
    old = dict(site.sessions)
    for i in items:
        site.remove(i)
    for i, powers in profiles.items():
        steady = _steady(np.clip(powers, _min_kw(inst, i), float(inst.caps[i])))
        if _changes(steady) > MAX_POWER_CHANGES:
            steady = _steady(few_changes(steady, MAX_POWER_CHANGES))
        delivered = float(steady.sum()) * inst.k
        if delivered > float(inst.needs[i]):
            steady *= float(inst.needs[i]) / delivered
        site.add(i, Session.of_profile(intervals[i][0], tuple(float(v) for v in steady)))
    if site.limit is not None and float(site.load.max(initial=0.0)) > site.limit + _TOL:
        better = False
    else:
        better = _rank(site, range(len(inst.bookings))) < before
    if not better:
        for i in items:
            site.remove(i)
        for i, s in old.items():
            site.add(i, s)


def _repair(site: _Site, i: int, *, cheapest: bool, first_cheapest: bool = False) -> None:
    """Booking i, short, re-planned with every booking whose session meets its window."""
    inst = site.inst
    f, last = int(inst.firsts[i]), int(inst.lasts[i])
    group = [j for j, s in site.sessions.items() if s.first < last and s.last > f and j != i]
    members = [i, *group]
    before = _rank(site, members)
    old = {j: site.sessions[j] for j in members if j in site.sessions}
    for j in members:
        site.remove(j)
    _insert(site, i, cheapest=first_cheapest)
    for j in sorted(group, key=lambda j: (int(inst.lasts[j]), int(inst.firsts[j]))):
        _insert(site, j, cheapest=cheapest)
    if _rank(site, members) < before:
        return
    for j in members:
        site.remove(j)
    for j, s in old.items():
        site.add(j, s)


def _place_start(site: _Site, start: dict[int, Session], *, laxity_first: bool = False) -> None:
    """The starting sessions that fit, then the rest at their cheapest, least short session.

    A starting session met in full and clear of every slot where the start breaks the limit
    is placed first; the others follow, earliest latest-departure first, each keeping its
    starting session if that still fits and meets it. With `laxity_first` the bookings
    left without one come last, least slack first (latest departure less the slots the
    connector's power needs), each at its least short, soonest ended session: on a day
    of back-to-back bookings under a binding limit that leaves far less short.
    """
    inst = site.inst
    used = site.load.copy()
    for s in start.values():
        used[s.first : s.last] += s.profile
    over = used > (np.inf if site.limit is None else site.limit + _TOL)
    by_end = sorted(
        range(len(inst.bookings)), key=lambda i: (int(inst.lasts[i]), int(inst.firsts[i]))
    )
    rest = []
    for i in by_end:
        s = start.get(i)
        if s is not None and not over[s.first : s.last].any() and _keeps(site, i, s):
            site.add(i, s)
        else:
            rest.append(i)
    unplaced = []
    for i in rest:
        s = start.get(i)
        if s is not None and _keeps(site, i, s):
            site.add(i, s)
        elif laxity_first:
            unplaced.append(i)
        else:
            _insert(site, i, cheapest=True)
    for i in sorted(unplaced, key=lambda i: (int(inst.lasts[i]) - inst.fewest_slots(i), i)):
        _insert(site, i, cheapest=False)


def _keeps(site: _Site, i: int, s: Session) -> bool:
    return site.short(i, s) <= _TOL and _fits(site, i, s)


def _cheaper_one_by_one(site: _Site, deadline: float) -> None:
    """Each booking, in booking order, moved to its cheapest session that is no shorter."""
    for i in range(len(site.inst.bookings)):
        if time.perf_counter() > deadline:
            return
        old = site.remove(i)
        _insert(site, i, cheapest=True)
        now = site.sessions.get(i)
        if old is not None and (
            now is None
            or (site.short(i, now), site.cost(i, now)) > (site.short(i, old), site.cost(i, old))
        ):
            site.remove(i)
            site.add(i, old)


def _repair_short(site: _Site, deadline: float) -> None:
    """Each booking left short re-planned with its neighbours, first in booking order."""
    every = range(len(site.inst.bookings))
    for cheapest in (True, False, True, False):  # the group at its cheapest, then soonest
        for i in [i for i in every if site.short(i) > _TOL]:
            if time.perf_counter() > deadline:
                return
            if site.short(i) > _TOL:
                _repair(site, i, cheapest=cheapest)


def _repair_dear(
    site: _Site, base_load: np.ndarray, base_cars: np.ndarray, deadline: float
) -> None:
    """The bookings paying most above their cheapest session (alone on the site) re-planned
    with their neighbours, dearest first, each kept only if it ranks better."""
    inst = site.inst
    every = range(len(inst.bookings))
    alone = {}
    for i in every:
        empty = _Site(inst, site.limit, base_load.copy(), base_cars.copy(), {})
        options = _option_table(empty, i)
        alone[i] = 0.0 if options is None else float(options[2].min())
    for _ in range(2):
        for i in sorted(every, key=lambda i: alone[i] - site.cost(i)):
            if time.perf_counter() > deadline or site.cost(i) - alone[i] < 0.01:
                break
            _repair(site, i, cheapest=True, first_cheapest=True)


def _caps(site: _Site, i: int) -> list[float]:
    """The powers a re-planned session may draw at most: its connector's, 3/4 and 1/2 of
    it, and the site limit's share per connector (every connector busy at once)."""
    cap = float(site.inst.caps[i])
    levels = [cap, 0.75 * cap, 0.5 * cap]
    if site.limit is not None and site.limit / site.inst.connectors < cap:
        levels.append(site.limit / site.inst.connectors)
    return levels


def _reoptimise(site: _Site, items: Sequence[int], deadline: float) -> bool:
    """The bookings `items`, every one met in full now, re-planned together by a MILP
    (HiGHS) over candidate sessions, the others fixed: for each, a session from every
    start at its connector's power, 3/4 and 1/2 of it, drawing what the fixed load leaves,
    and its own session (the start HiGHS is given). Kept only if it costs less."""
    inst = site.inst
    items = [i for i in items if i in site.sessions]
    if len(items) < 2 or any(site.short(i) > _TOL for i in items):
        return False
    old = {i: site.sessions[i] for i in items}
    before = sum(site.cost(i) for i in items)
    for i in items:
        site.remove(i)
    owner: list[int] = []
    sessions: list[Session] = []
    costs: list[float] = []
    start: list[float] = []
    for r, i in enumerate(items):
        owner.append(r)
        sessions.append(old[i])
        costs.append(site.cost(i, old[i]))
        start.append(1.0)
        for cap in _caps(site, i):
            options = _option_table(site, i, cap)
            if options is None:
                continue
            short, _, cost, make = options
            for n in np.flatnonzero(short <= _TOL):
                owner.append(r)
                sessions.append(make(int(n)))
                costs.append(float(cost[n]))
                start.append(0.0)
    lo = min(s.first for s in sessions)
    hi = max(s.last for s in sessions)
    span = hi - lo
    rows, cols, vals = [], [], []
    for c, s in enumerate(sessions):
        slots = np.arange(s.first, s.last) - lo
        kind = _kind(inst, items[owner[c]])  # its cars count against its kind's connectors
        rows += [np.full(1, owner[c]), len(items) + slots, len(items) + (1 + kind) * span + slots]
        cols += [np.full(1 + 2 * s.slots, c)]
        vals += [np.ones(1), np.asarray(s.profile), np.ones(s.slots)]
    matrix = sparse.csc_array(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(len(items) + (1 + len(_capacity(inst))) * span, len(sessions)),
    )
    room = np.full(span, np.inf) if site.limit is None else site.limit - site.load[lo:hi]
    cars = np.asarray(_capacity(inst))[:, None] - site.cars[:, lo:hi]
    row_lower = np.concatenate([np.ones(len(items)), np.full((1 + len(cars)) * span, -np.inf)])
    row_upper = np.concatenate([np.ones(len(items)), room + _TOL, cars.ravel()])
    h = _load_lp(np.array(costs), np.ones(len(sessions)), matrix, row_lower, row_upper)
    h.changeColsIntegrality(
        len(sessions),
        np.arange(len(sessions), dtype=np.int32),
        np.full(len(sessions), highspy.HighsVarType.kInteger),
    )
    h.setOptionValue("mip_rel_gap", 1e-6)
    solution = highspy.HighsSolution()
    solution.col_value = start
    solution.value_valid = True
    h.setSolution(solution)
    solved = _run(h, integer=True, deadline=min(deadline, time.perf_counter() + REOPT_SECONDS))
    if solved.x is not None and solved.value < before - 1e-4:
        for c in np.flatnonzero(solved.x > 0.5):
            site.add(items[owner[c]], sessions[c])
        return True
    for i, s in old.items():
        site.add(i, s)
    return False


def _alone_costs(site: _Site, base_load: np.ndarray, base_cars: np.ndarray) -> dict[int, float]:
    """Each booking's cost in its cheapest session, as if it were alone on the site."""
    empty = _Site(site.inst, site.limit, base_load.copy(), base_cars.copy(), {})
    alone = {}
    for i in range(len(site.inst.bookings)):
        options = _option_table(empty, i)
        alone[i] = 0.0 if options is None else float(options[2].min())
    return alone


def _descend_milp(
    site: _Site, base_load: np.ndarray, base_cars: np.ndarray, deadline: float
) -> None:
    """Each booking paying above its cheapest session (alone on the site), dearest first,
    re-planned by _reoptimise with every booking whose window lies within its own widened
    by REACH slots either side."""
    inst = site.inst
    alone = _alone_costs(site, base_load, base_cars)
    done: set[int] = set()
    while time.perf_counter() < deadline:
        dear = [i for i in site.sessions if i not in done and site.cost(i) - alone[i] >= 0.01]
        if not dear:
            return
        i = max(dear, key=lambda i: site.cost(i) - alone[i])
        done.add(i)
        lo, hi = int(inst.firsts[i]) - REACH, int(inst.lasts[i]) + REACH
        group = [j for j in site.sessions if inst.firsts[j] >= lo and inst.lasts[j] <= hi]
        _reoptimise(site, group, deadline)


def plan_profiles(
    inst: Instance,
    limit: float | None,
    options: MilpOptions,
    *,
    fixed_load: np.ndarray | None = None,
    fixed_cars: np.ndarray | None = None,
    progress: Progress | None = None,
    start: dict[int, Session] | None = None,
    laxity_first: bool = False,
    descend: bool = False,
) -> ProfilePlan:
    """The sessions, from `start` (sessions under a looser limit, or those a re-plan sent)
    or from nothing, in time; `laxity_first`: see `_place_start`; `descend`: steps 6 and 7."""
    began = time.perf_counter()
    deadline = began + options.time_budget_s
    base_load = np.zeros(inst.slots) if fixed_load is None else fixed_load.astype(float)
    base_cars = kind_cars(inst, fixed_cars)
    site = _Site(inst, limit, base_load.copy(), base_cars.copy(), {})
    steps = (
        lambda: _place_start(site, dict(start or {}), laxity_first=laxity_first),
        lambda: _cheaper_one_by_one(site, deadline),
        lambda: _repair_short(site, deadline),
        lambda: _exact_short(site, deadline - POLISH_SHARE * options.time_budget_s),
        lambda: _repair_dear(site, base_load, base_cars, deadline),
        lambda: _exact_dear(site, base_load, base_cars, _halfway(deadline)) if descend else None,
        lambda: _descend_milp(site, base_load, base_cars, deadline) if descend else None,
        lambda: _polish(site, deadline) if time.perf_counter() < deadline else None,
    )
    for done, step in enumerate(steps, start=1):
        step()
        log.debug(
            "Step %d at %.2f s: (short, cost) %s",
            done,
            time.perf_counter() - began,
            _rank(site, range(len(inst.bookings))),
        )
        if progress is not None:
            progress(done, len(steps))
    return ProfilePlan(site.sessions, 1, 0, 0, time.perf_counter() - began)


def _exact(site: _Site, items: Sequence[int], deadline: float) -> bool:
    """The bookings `items` re-planned together by a time-indexed MILP (HiGHS, from the
    sessions they have), every other session fixed; kept only if it ranks better.

    Per booking and slot of its window: x (on a connector), s (starts), p (kW, at least
    MIN_KW while on, at most its connector's power) and w (its power changes from the slot
    before). One start, x on from it without a gap, the w at most MAX_POWER_CHANGES; per
    slot the cars of each kind under its connectors and the kW under the site's room.
    Objective as _rank: the penalty per kWh short, then the peak demand charges (and a
    tenth of a penny per change).
    """
    inst = site.inst
    items = [i for i in items if int(inst.lasts[i]) > int(inst.firsts[i]) and inst.needs[i] > 0]
    if not items or time.perf_counter() > deadline - MIN_EXACT_S:
        return False
    before = _rank(site, items)
    old = {i: site.sessions[i] for i in items if i in site.sessions}
    for i in items:
        site.remove(i)
    firsts = np.array([int(inst.firsts[i]) for i in items])
    lens = np.array([int(inst.lasts[i]) for i in items]) - firsts
    m, n = len(items), int(lens.sum())
    base = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(int)
    item = np.repeat(np.arange(m), lens)
    slot = np.concatenate([np.arange(f, f + k) for f, k in zip(firsts, lens, strict=True)])
    inner = np.flatnonzero(np.arange(n) != base[item])  # cells with a slot before them
    nv = len(inner)
    x0, s0, p0, short0, w0 = 0, n, 2 * n, 3 * n, 3 * n + m
    columns = w0 + nv
    caps = inst.caps[items].astype(float)
    floors = np.array([_min_kw(inst, i) for i in items])
    lo = int(slot.min())
    span = int(slot.max()) + 1 - lo
    kinds = np.array([_kind(inst, i) for i in items])
    n_kinds = len(_capacity(inst))
    cells, ones = np.arange(n), np.ones(n)
    r_energy, r_start = 0, m
    r_up, r_down, r_gap = 2 * m, 2 * m + n, 2 * m + 2 * n
    r_rise, r_fall, r_changes = 2 * m + 3 * n, 2 * m + 3 * n + nv, 2 * m + 3 * n + 2 * nv
    r_cars = r_changes + m
    r_kw = r_cars + n_kinds * span
    rows = r_kw + (span if site.limit is not None else 0)
    cap_of, prev = caps[item[inner]], inner - 1
    parts = [
        (r_energy + item, p0 + cells, np.full(n, inst.k)),
        (r_energy + np.arange(m), short0 + np.arange(m), np.ones(m)),
        (r_start + item, s0 + cells, ones),
        (r_up + cells, p0 + cells, ones),  # p - cap x <= 0
        (r_up + cells, x0 + cells, -caps[item]),
        (r_down + cells, p0 + cells, ones),  # p - floor x >= 0
        (r_down + cells, x0 + cells, -floors[item]),
        (r_gap + cells, x0 + cells, ones),  # x[t] - x[t-1] - s[t] <= 0
        (r_gap + cells, s0 + cells, -ones),
        (r_gap + inner, x0 + prev, -np.ones(nv)),
        # p[t] - p[t-1] - cap w + cap x[t-1] <= cap, and the fall the same way
        (r_rise + np.arange(nv), p0 + inner, np.ones(nv)),
        (r_rise + np.arange(nv), p0 + prev, -np.ones(nv)),
        (r_rise + np.arange(nv), w0 + np.arange(nv), -cap_of),
        (r_rise + np.arange(nv), x0 + prev, cap_of),
        (r_fall + np.arange(nv), p0 + prev, np.ones(nv)),
        (r_fall + np.arange(nv), p0 + inner, -np.ones(nv)),
        (r_fall + np.arange(nv), w0 + np.arange(nv), -cap_of),
        (r_fall + np.arange(nv), x0 + inner, cap_of),
        (r_changes + item[inner], w0 + np.arange(nv), np.ones(nv)),
        (r_cars + kinds[item] * span + slot - lo, x0 + cells, ones),
    ]
    if site.limit is not None:
        parts.append((r_kw + slot - lo, p0 + cells, ones))
    r, c, v = (np.concatenate(part) for part in zip(*parts, strict=True))
    matrix = sparse.csc_array((v, (r, c)), shape=(rows, columns))
    needs = inst.needs[items].astype(float)
    free = np.asarray(_capacity(inst))[:, None] - site.cars[:, lo : lo + span]
    row_lower = np.full(rows, -np.inf)
    row_upper = np.zeros(rows)
    row_lower[r_energy : r_energy + m] = needs
    row_upper[r_energy : r_energy + m] = needs
    row_upper[r_start : r_start + m] = 1.0
    row_lower[r_down : r_down + n] = 0.0
    row_upper[r_down : r_down + n] = np.inf
    row_upper[r_rise : r_rise + 2 * nv] = np.tile(cap_of, 2)
    row_upper[r_changes : r_changes + m] = MAX_POWER_CHANGES
    row_upper[r_cars : r_cars + n_kinds * span] = np.maximum(free, 0).ravel()
    if site.limit is not None:
        row_upper[r_kw:] = np.maximum(site.limit - site.load[lo : lo + span], 0.0)
    cost = np.zeros(columns)
    cost[p0:short0] = np.concatenate([inst.unit_costs(i) for i in items])
    cost[short0:w0] = [inst.penalty(i) for i in items]
    cost[w0:] = CHANGE_WEIGHT
    upper = np.concatenate([np.ones(2 * n), caps[item], needs, np.ones(nv)])
    h = _load_lp(cost, upper, matrix, row_lower, row_upper)
    integer = np.concatenate([np.arange(2 * n), w0 + np.arange(nv)]).astype(np.int32)
    h.changeColsIntegrality(
        len(integer), integer, np.full(len(integer), highspy.HighsVarType.kInteger)
    )
    start = np.zeros(columns)
    start[short0:w0] = needs
    for r_, i in enumerate(items):
        s = old.get(i)
        if s is None:
            continue
        a = base[r_] + s.first - firsts[r_]
        profile = np.asarray(s.profile)
        start[x0 + a : x0 + a + s.slots] = 1.0
        start[s0 + a] = 1.0
        start[p0 + a : p0 + a + s.slots] = profile
        start[short0 + r_] = site.short(i, s)
    steps = np.abs(np.diff(start[p0:short0])) > _TOL
    start[w0:] = (steps[prev] & (start[x0 + prev] > 0.5) & (start[x0 + inner] > 0.5)).astype(float)
    solution = highspy.HighsSolution()
    solution.col_value = start
    solution.value_valid = True
    h.setSolution(solution)
    h.setOptionValue("mip_rel_gap", 1e-6)
    solved = _run(h, integer=True, deadline=deadline)
    if solved.x is not None:
        x = solved.x
        for r_, i in enumerate(items):
            on = np.flatnonzero(x[x0 + base[r_] : x0 + base[r_] + lens[r_]] > 0.5)
            if not len(on):
                continue
            powers = x[p0 + base[r_] + on[0] : p0 + base[r_] + on[-1] + 1]
            powers = _steady(np.clip(powers, floors[r_], caps[r_]))
            if _changes(powers) > MAX_POWER_CHANGES:
                powers = _steady(few_changes(powers, MAX_POWER_CHANGES))
            delivered = float(powers.sum()) * inst.k
            if delivered > needs[r_]:
                powers = powers * (needs[r_] / delivered)
            session = Session.of_profile(firsts[r_] + int(on[0]), tuple(float(p) for p in powers))
            if _fits(site, i, session):
                site.add(i, session)
        if _rank(site, items) < before:
            return True
        for i in items:
            site.remove(i)
    for i, s in old.items():
        site.add(i, s)
    return False


def _neighbours(site: _Site, i: int, most: int) -> list[int]:
    """Booking i and the `most` bookings drawing the most energy inside its window (those
    whose room it needs), then those short whose windows meet it."""
    inst = site.inst
    f, last = int(inst.firsts[i]), int(inst.lasts[i])
    drawn: dict[int, float] = {}
    for j, s in site.sessions.items():
        a, b = max(f, s.first), min(last, s.last)
        if j != i and a < b and _kind(inst, j) == _kind(inst, i):
            drawn[j] = float(sum(s.profile[a - s.first : b - s.first]))
    short = [
        j
        for j in np.flatnonzero((inst.firsts < last) & (inst.lasts > f)).tolist()
        if j != i and j not in drawn and site.short(j) > _TOL
    ]
    near = sorted(drawn, key=lambda j: -drawn[j]) + short
    return sorted({i, *near[:most]})


def _exact_short(site: _Site, deadline: float) -> None:
    """Each booking short, first booked first, re-planned by `_exact` with the bookings
    drawing most in its window: each of EXACT_GROUPS in turn for every booking still
    short, then again while a round leaves less short (a re-plan may pass a shortfall on
    to a neighbour)."""
    inst = site.inst
    every = range(len(inst.bookings))
    before = _rank(site, every)
    while True:
        for most, seconds in EXACT_GROUPS:
            for i in [i for i in every if site.short(i) > _TOL]:
                if time.perf_counter() > deadline - MIN_EXACT_S:
                    return
                if site.short(i) > _TOL:
                    group = _neighbours(site, i, most)
                    _exact(site, group, min(deadline, time.perf_counter() + seconds))
        now = _rank(site, every)
        if now[0] >= before[0] or now[0] <= 0:
            return
        before = now


def _halfway(deadline: float) -> float:
    """Half of the time left until `deadline`."""
    now = time.perf_counter()
    return now + max(0.0, deadline - now) / 2


def _exact_dear(site: _Site, base_load: np.ndarray, base_cars: np.ndarray, deadline: float) -> None:
    """Each booking paying above its cheapest session (alone on the site), dearest first,
    re-planned by `_exact` with the bookings drawing most in its window: the first two of
    EXACT_GROUPS in turn."""
    alone = _alone_costs(site, base_load, base_cars)
    for most, seconds in EXACT_GROUPS[:2]:
        dear = sorted(site.sessions, key=lambda i: alone[i] - site.cost(i))
        for i in dear:
            if time.perf_counter() > deadline - MIN_EXACT_S or site.cost(i) - alone[i] < 0.01:
                break
            _exact(site, _neighbours(site, i, most), min(deadline, time.perf_counter() + seconds))
