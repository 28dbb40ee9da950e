"""Below the least peak at which every booking can be met, the frontier still offers a few
points: what each lower peak leaves short, beside the relaxation's least shortfall."""

from __future__ import annotations

import types
from dataclasses import replace
from decimal import Decimal

import pytest

from evcms_desktop.schedule import Schedule, ScheduleProblem
from evcms_desktop.schedule.milp import MilpOptions
from evcms_desktop.schedule.optimal import (
    cost_peak_frontier,
    least_peak_bound,
    relaxation_bound,
    short_levels,
    sweep_levels,
)
from tests.schedule.test_milp import booking, check, problem, random_day


def test_below_the_floor_each_point_says_what_it_leaves_short_and_the_least_any_could() -> None:
    # Two cars 00:00-01:00, 17.6 kWh each: only 44 kW meets both, so the least-cost point
    # is also the least peak that meets everyone; before, the frontier was that one point.
    p = problem(booking(1, 0, 1, "17.6"), booking(2, 0, 1, "17.6"))
    points = cost_peak_frontier(p, MilpOptions(time_budget_s=10))
    assert [pt.limit_kw for pt in points] == [None, 40.0, 30.0]
    assert not points[0].short and not points[0].must_be_short
    for point, least in zip(points[1:], (35.2 - 32, 35.2 - 24), strict=True):
        limited = replace(p, site_limit_kw=Decimal(f"{point.limit_kw}"))
        check(limited, point.schedule)
        assert point.must_be_short and point.short
        assert point.least_short_kwh == pytest.approx(least)
        assert point.least_short_kwh == pytest.approx(
            relaxation_bound(limited, point.limit_kw).unmet_kwh
        )
        assert point.unmet_kwh >= point.least_short_kwh - 1e-6
        assert point.extra_cost(points[0]) is None and point.comparable_bound() is None
        assert point.label(points[0]) == (
            f"peak {point.peak_kw:.0f} kW: at least {least:.1f} kWh short,"
            f" this schedule {point.unmet_kwh:.1f} kWh short"
        )


def test_a_point_short_in_the_time_given_is_not_marked_as_forced() -> None:
    # Three cars, two connectors: the relaxation (no connectors) meets all three, so the
    # schedule's shortfall is not one every schedule must have.
    p = problem(booking(1, 17, 18, "17.6"), booking(2, 17, 18, "17.6"), booking(3, 17, 18, "17.6"))
    point = cost_peak_frontier(p, MilpOptions(time_budget_s=5), levels=[])[0]
    assert point.short and not point.must_be_short and point.least_short_kwh == 0
    assert point.label(point) == f"peak 44 kW, extra cost n/a, {point.unmet_kwh:.1f} kWh short"


def test_limits_below_the_floor_take_only_the_places_the_limits_above_it_leave() -> None:
    assert sweep_levels(88, 88, 4) == [80, 70, 60]  # 4 connectors: nothing to trade above
    assert sweep_levels(88, 88, 2) == [80, 60]
    assert sweep_levels(66, 33, 2) == [60, 40]  # every place taken above the floor
    assert sweep_levels(66, 33, 4) == [60, 50, 40, 30]
    assert sweep_levels(176, 132.3, 6) == [170, 160, 150, 140, 120, 80]
    assert sweep_levels(88, 88, 0) == []
    assert short_levels(132.3, 3) == [120, 100, 80]
    assert short_levels(88, 1) == [80]
    assert short_levels(1.2, 3) == []  # no limit of 0 kW


def test_a_site_limit_that_already_leaves_energy_short_gets_the_whole_budget() -> None:
    p = problem(booking(1, 0, 1, "17.6"), booking(2, 0, 1, "17.6"), limit=40)
    points = cost_peak_frontier(p, MilpOptions(time_budget_s=10))
    assert [pt.limit_kw for pt in points] == [40.0]
    assert points[0].must_be_short


def test_the_sweep_keeps_to_its_budget_when_each_point_runs_past_its_share(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each point takes its share and 0.1 s more (its bound and prices, which no budget
    # stops). The later points are given less by what the last one ran over, so the sweep
    # ends at its deadline, not 0.1 s past it (before, 1.108 s for a 1 s budget).
    from evcms_desktop.schedule import optimal

    total, over = 1.0, 0.1
    now = [0.0]
    real = optimal.plan_site

    def timed(p: ScheduleProblem, options: MilpOptions, **kw: object) -> Schedule:
        now[0] += options.time_budget_s + over
        return real(p, options, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(optimal, "time", types.SimpleNamespace(perf_counter=lambda: now[0]))
    monkeypatch.setattr(optimal, "plan_site", timed)
    points = cost_peak_frontier(
        random_day(3), MilpOptions(time_budget_s=total), levels=[60, 50, 40, 30]
    )
    assert len(points) == 5
    assert now[0] <= total + 1e-9


def test_a_point_below_the_floor_is_planned_from_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    # Above the floor each point starts from the looser point's schedule; below it energy
    # must be short, and plan_site's own start (least slack first) leaves less short.
    from evcms_desktop.schedule import optimal

    starts: list[tuple[object, Schedule | None]] = []
    real = optimal.plan_site

    def recorded(p: ScheduleProblem, options: MilpOptions, **kw: object) -> Schedule:
        starts.append((p.site_limit_kw, kw.get("start")))  # type: ignore[arg-type]
        return real(p, options, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(optimal, "plan_site", recorded)
    p = problem(booking(1, 15, 17, "17.6"), booking(2, 15, 17, "17.6"), booking(3, 15, 17, "17.6"))
    points = cost_peak_frontier(p, MilpOptions(time_budget_s=20))
    floor = least_peak_bound(p)
    assert [limit for limit, _ in starts] == [None] + [
        Decimal(f"{pt.limit_kw:.3f}") for pt in points[1:]
    ]
    above = [(n, pt) for n, pt in enumerate(points[1:], start=1) if pt.limit_kw >= floor]
    below = [(n, pt) for n, pt in enumerate(points[1:], start=1) if pt.limit_kw < floor]
    assert above and below
    for n, _ in above:
        assert starts[n][1] is not None  # the looser point's schedule
    for n, point in below:
        assert starts[n][1] is None and point.must_be_short
