"""The schedule with power per slot (profiles.py): every invariant, on small instances."""

from __future__ import annotations

import itertools
import random
import time
from dataclasses import replace
from decimal import Decimal

import numpy as np
import pytest

from evcms_desktop.schedule import ScheduleProblem
from evcms_desktop.schedule.milp import LIVE_OPTIONS, Instance, MilpOptions, Session
from evcms_desktop.schedule.optimal import cost_peak_frontier, plan_site
from evcms_desktop.schedule.profiles import _exact_dear, _Site, few_changes, kind_cars
from tests.schedule.test_milp import booking, changes, check, problem, random_day

PROFILES = MilpOptions(time_budget_s=20, power_profiles=True)


@pytest.mark.parametrize("seed", range(12))
def test_random_days_under_a_limit_keep_every_invariant(seed: int) -> None:
    p = random_day(seed)
    if p.site_limit_kw is None:
        p = problem(*p.bookings, connectors=len(p.connector_ids), limit=26.0)
    schedule = plan_site(p, PROFILES, compete=False)
    assert schedule.method == "profiles"
    check(p, schedule)


def test_a_car_draws_what_the_site_leaves_it_then_its_full_power() -> None:
    # B needs 22 kW for the whole of its hour; under 30 kW, A can draw 8 kW beside it and
    # 22 kW after it: 4 slots at 8 kW and 4 at 22 kW are exactly A's 24 kWh. One steady
    # power per session leaves A short (6.4 kWh at best: 22 kW after B).
    p = problem(booking(1, 0, 2, "24"), booking(2, 0, 1, "17.6"), connectors=2, limit=30)
    points = cost_peak_frontier(p, PROFILES, levels=[30.0])
    point = points[-1]
    assert point.limit_kw == 30.0
    assert not point.schedule.unmet
    check(p, point.schedule)
    a = point.schedule.plans[1]
    assert a.powers_kw == pytest.approx((8.0,) * 4 + (22.0,) * 4)
    assert changes(a.powers_kw) == 1


def test_the_least_cost_schedule_under_a_limit_is_built_without_a_start() -> None:
    p = problem(booking(1, 0, 2, "24"), booking(2, 0, 1, "17.6"), connectors=2, limit=30)
    schedule = plan_site(p, PROFILES, compete=False)
    assert not schedule.unmet
    check(p, schedule)


def test_a_shortfall_under_the_limit_is_reported_with_its_reason_and_bound() -> None:
    # Three cars, each needing its connector's full power for its whole hour, under 44 kW:
    # 4.4 kWh x 4 slots cannot be delivered to one of them, whatever the schedule.
    p = problem(
        booking(1, 0, 1, "17.6"),
        booking(2, 0, 1, "17.6"),
        booking(3, 0, 1, "17.6"),
        connectors=3,
        limit=44,
    )
    schedule = plan_site(p, PROFILES, compete=False)
    check(p, schedule)
    short = sum(u.shortfall_kwh for u in schedule.unmet)
    assert short == pytest.approx(17.6, abs=1e-6)
    assert schedule.bound is not None and schedule.bound.unmet_kwh == pytest.approx(17.6)
    assert all("site limit" in u.reason for u in schedule.unmet)
    assert schedule.unmet[-1].booking_id == 3  # the last booked is the one short


def _best_by_brute_force(powers: np.ndarray, most: int) -> float:
    n = len(powers)
    best = 0.0
    for cuts in range(most + 1):
        for inner in itertools.combinations(range(1, n), cuts):
            bounds = [0, *inner, n]
            energy = sum(float(powers[a:b].min()) * (b - a) for a, b in itertools.pairwise(bounds))
            best = max(best, energy)
    return best


@pytest.mark.parametrize("seed", range(20))
def test_few_changes_is_the_highest_profile_under_the_room(seed: int) -> None:
    rng = random.Random(seed)
    room = np.array([rng.choice([3.0, 8.0, 14.0, 22.0]) for _ in range(rng.randint(1, 9))])
    for most in range(3):
        profile = few_changes(room, most)
        assert (profile <= room + 1e-12).all()
        assert changes(tuple(profile)) <= most
        assert profile.sum() == pytest.approx(_best_by_brute_force(room, most))


def test_dear_bookings_are_re_planned_with_their_neighbours_down_to_the_bound() -> None:
    # Ten cars on 2 connectors under 22 kW: inserting them one at a time leaves some
    # charging in Peak On (0.58 GBP above the bound, before the group MILP); re-planned
    # together with the bookings around them, the schedule costs what the relaxation allows.
    rows = [
        (0, 17.5, 23.5, "13.8", False),
        (1, 9.5, 18.5, "15.3", False),
        (2, 5.25, 8.5, "34.4", False),
        (3, 3.25, 12.0, "26.6", True),
        (4, 16.25, 26.0, "31.5", True),
        (5, 6.75, 8.0, "7.7", True),
        (6, 15.75, 19.25, "34.0", True),
        (7, 17.5, 23.0, "33.6", False),
        (8, 3.0, 7.75, "17.3", False),
        (9, 18.25, 23.75, "26.1", False),
    ]
    p = problem(*(booking(b, s, e, kwh, overlapped=o) for b, s, e, kwh, o in rows), limit=22)
    schedule = plan_site(p, PROFILES, compete=False)
    check(p, schedule)
    assert not schedule.unmet
    assert schedule.bound is not None and schedule.bound.cost is not None
    assert schedule.total_cost <= schedule.bound.cost + Decimal("0.01")


def _mixed_site(limit: float | None) -> ScheduleProblem:
    """Connectors 1-2 at 7 kW and 3-4 at 22 kW. Three cars booked on the 22 kW ones all want
    the same hour at 22 kW (17.6 kWh each) and a fourth, on a 7 kW one, its whole two
    hours at 7 kW: four cars at once fit the site's count of connectors, but only two of
    the 22 kW cars fit its 22 kW connectors."""
    fast = [replace(booking(i, 0, 1, "17.6"), connector_id=3 + i % 2) for i in (1, 2, 3)]
    slow = replace(booking(4, 0, 2, "11.2"), max_power_kw=Decimal(7), connector_id=1)
    return ScheduleProblem(
        bookings=(*fast, slow),
        connector_ids=(1, 2, 3, 4),
        site_limit_kw=None if limit is None else Decimal(str(limit)),
        connector_power_kw=(Decimal(7), Decimal(7), Decimal(22), Decimal(22)),
    )


@pytest.mark.parametrize("limit", [None, 80.0])
def test_each_session_keeps_within_its_connectors_power_on_a_mixed_site(
    limit: float | None,
) -> None:
    p = _mixed_site(limit)
    power = dict(zip(p.connector_ids, p.connector_power_kw, strict=True))
    schedule = plan_site(p, replace(LIVE_OPTIONS, time_budget_s=2), compete=False)
    check(p, schedule)
    for plan in schedule.plans.values():
        assert max(plan.powers_kw) <= float(power[plan.connector_id]) + 1e-9, plan
    assert {plan.connector_id for plan in schedule.plans.values() if plan.booking_id != 4} <= {
        3,
        4,
    }
    assert schedule.plans[4].connector_id in (1, 2)
    assert not any(u.booking_id == 4 for u in schedule.unmet)
    [short] = schedule.unmet  # the last booked of the fast three: no third 22 kW connector
    assert short.booking_id == 3
    assert short.shortfall_kwh == pytest.approx(17.6)


def test_a_booking_the_insertion_leaves_short_is_met_by_replanning_its_neighbours() -> None:
    # Ten bookings on 3 connectors under 44 kW: the relaxation meets every one. Insertion
    # and its repairs left 4.8 kWh short; the time-indexed MILP over the short booking and
    # the bookings drawing most in its window (profiles._exact) meets them all.
    p = problem(
        booking(0, 2.75, 4.0, "21.6"),
        booking(1, 3.75, 6.5, "20.6"),
        booking(2, 5.5, 7.0, "18.6"),
        booking(3, 2.5, 3.5, "17.2"),
        booking(4, 2.5, 3.75, "9.2"),
        booking(5, 7.5, 10.5, "14.5"),
        booking(6, 5.25, 8.5, "27.7"),
        booking(7, 3.25, 7.0, "15.7"),
        booking(8, 8.5, 11.25, "26.0"),
        booking(9, 9.75, 12.25, "33.8"),
        connectors=3,
        limit=44,
    )
    schedule = plan_site(p, PROFILES, compete=False)
    assert schedule.bound is not None and schedule.bound.unmet_kwh == pytest.approx(0.0)
    assert not schedule.unmet
    check(p, schedule)


def test_a_limit_below_the_least_peak_starts_from_nothing_not_the_least_cost_sessions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Under a limit that must leave energy short the least-cost MILP's sessions are no
    # start (placed for cost, with no thought of the limit): the whole budget goes to
    # placing the bookings least slack first. Under a limit every booking can keep, they are.
    import evcms_desktop.schedule.optimal as optimal

    calls: list[float | None] = []
    real = optimal.plan_sessions

    def recorded(inst, limit, options, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(limit)
        return real(inst, limit, options, **kwargs)

    monkeypatch.setattr(optimal, "plan_sessions", recorded)
    three = (booking(1, 0, 1, "17.6"), booking(2, 0, 1, "17.6"), booking(3, 0, 1, "17.6"))
    tight = problem(*three, connectors=3, limit=44)
    schedule = plan_site(tight, PROFILES, compete=False)
    check(tight, schedule)
    assert sum(u.shortfall_kwh for u in schedule.unmet) == pytest.approx(17.6, abs=1e-6)
    assert calls == []
    loose = problem(*three, connectors=3, limit=66)
    check(loose, plan_site(loose, PROFILES, compete=False))
    assert calls == [None]


def test_a_dear_session_is_moved_by_the_time_indexed_replan_where_it_fits_for_less() -> None:
    # A (17.6 kWh, 07:00-09:00) sits in Peak On from 08:00 though 07:00-08:00 is Peak Off
    # and has room beside B (11 kW) under 33 kW: the re-plan moves it there, every
    # invariant kept, and costs A what it would cost alone on the site.
    p = problem(booking(1, 7, 9, "17.6"), booking(2, 7, 8, "8.8"), connectors=2, limit=33)
    inst = Instance.of(p)
    inst.limit = 33.0
    site = _Site(inst, 33.0, np.zeros(inst.slots), kind_cars(inst, None), {})
    site.add(0, Session(4, 4, 22.0))  # 08:00-09:00, Peak On
    site.add(1, Session(0, 4, 11.0))
    alone = _Site(inst, 33.0, np.zeros(inst.slots), kind_cars(inst, None), {})
    alone.add(0, Session(0, 4, 22.0))
    before = site.cost(0)
    _exact_dear(site, np.zeros(inst.slots), kind_cars(inst, None), time.perf_counter() + 20)
    assert site.cost(0) < before
    assert site.cost(0) == pytest.approx(alone.cost(0))
    assert site.short(0) == site.short(1) == 0.0
    assert float(site.load.max()) <= 33.0 + 1e-6
    assert (site.cars <= 2).all()


def test_the_time_indexed_replans_leave_the_last_steps_their_share_of_the_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # On a fake clock, a time-indexed re-plan that runs until the deadline it is given:
    # the power LP over the intervals (the last step, which can clear a small shortfall
    # cheaply) still runs, inside the budget.
    import types

    from evcms_desktop.schedule import profiles

    now = [0.0]
    monkeypatch.setattr(profiles, "time", types.SimpleNamespace(perf_counter=lambda: now[0]))

    def until_the_deadline(site: object, items: object, deadline: float) -> bool:
        now[0] = max(now[0], deadline)
        return False

    polished: list[float] = []
    real_polish = profiles._polish

    def recorded(site: profiles._Site, deadline: float | None = None) -> None:
        polished.append(now[0])
        real_polish(site, None)

    monkeypatch.setattr(profiles, "_exact", until_the_deadline)
    monkeypatch.setattr(profiles, "_polish", recorded)
    three = (booking(1, 0, 1, "17.6"), booking(2, 0, 1, "17.6"), booking(3, 0, 1, "17.6"))
    inst = Instance.of(problem(*three, connectors=3, limit=44))
    budget = replace(PROFILES, time_budget_s=5.0)
    plan = profiles.plan_profiles(inst, 44.0, budget, laxity_first=True)
    assert len(polished) == 1 and polished[0] < 5.0
    assert sum(sum(s.profile) for s in plan.sessions.values()) * inst.k == pytest.approx(35.2)
