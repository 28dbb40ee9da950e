"""The default scenario (500 bookings, seed 1, 4 connectors) end to end."""

from __future__ import annotations

import csv
import itertools
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from evcms_desktop.evaluation.report import (
    EvaluationReport,
    evaluate,
    write_csvs,
    write_schedule_power,
)
from evcms_desktop.evaluation.runner import StationSetup
from evcms_desktop.evaluation.scenario import ScenarioConfig, generate_scenario
from evcms_desktop.schedule.milp import MilpOptions
from evcms_desktop.schedule.model import ScheduleBooking, ScheduleProblem
from evcms_desktop.schedule.optimal import keeps_power_bound

# The full-quality schedule belongs in the evaluate command and benchmarks/schedule.py;
# these tests check what every schedule must keep, so a short budget will do.
QUICK = MilpOptions(time_budget_s=8)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> EvaluationReport:
    return evaluate(
        generate_scenario(ScenarioConfig()),
        StationSetup(),
        workdir=tmp_path_factory.mktemp("eval"),
        schedule_options=QUICK,
    )


def test_every_case_occurs(report: EvaluationReport) -> None:
    counts = {s.case: s.count for s in report.table3}
    assert sum(counts.values()) == 500
    assert all(n >= 20 for n in counts.values()), counts


def test_case2_falls_by_exactly_the_peak_demand_charge(report: EvaluationReport) -> None:
    """Same energy in both systems, so AC - OC = (1 - optimized ACM) * PDC for every Case 2
    booking; those that took an Eco plan (ACM 0) fall by exactly PDC, and so does their
    average. The others had no Peak Off slot free near their arrival, or Algorithm 1 moved
    Plan 1 into Peak Off (ACM 0.25)."""
    pdc = report.run.setup.tariff.peak_demand_charge
    assert pdc == Decimal("3.00")
    case2 = [r for r in report.run.rows if r.case == 2 and r.optimized is not None]
    eco = [r for r in case2 if r.optimized is not None and r.optimized.plan in (3, 4)]
    assert len(eco) >= 0.8 * len(case2)
    for row in case2:
        assert row.optimized is not None
        assert row.optimized.energy_kwh == row.original.energy_kwh
        assert row.original.price - row.optimized.price == (1 - row.optimized.acm) * pdc
    assert all(r.optimized is not None and r.optimized.acm == 0 for r in eco)
    original = sum(r.original.price for r in eco) / len(eco)
    optimized = sum(r.optimized.price for r in eco if r.optimized) / len(eco)
    assert original - optimized == pdc


def test_case3_keeps_its_cost_unless_its_slot_was_taken_meanwhile(
    report: EvaluationReport,
) -> None:
    kept = [
        r
        for r in report.run.rows
        if r.case == 3 and r.optimized is not None and not r.optimized.overlapped
    ]
    assert len(kept) >= 100  # most of the run's ~180 Case 3 bookings kept their slot
    for row in kept:
        assert row.optimized is not None
        assert row.optimized.price == row.original.price


def test_site_schedule_is_never_worse_than_the_greedy(report: EvaluationReport) -> None:
    # Without a site limit the "booked" placement contains the greedy's own schedule, and
    # the MILP's schedule is taken only when it is better still.
    c = report.comparison
    assert c.placement in ("booked", "fit")
    assert keeps_power_bound(c.schedule), "a schedule the site could not send"
    assert not c.schedule.unmet and c.compared == 500
    assert c.scheduled.total_cost <= c.optimized.total_cost
    assert c.scheduled.metrics.peak_kw <= c.optimized.metrics.peak_kw + 1e-6
    assert c.scheduled.metrics.energy_kwh == pytest.approx(c.optimized.metrics.energy_kwh)
    assert c.optimized.metrics.peak_on_share < c.original.metrics.peak_on_share


def test_site_schedule_keeps_a_site_limit(report: EvaluationReport) -> None:
    from evcms_desktop.evaluation.comparison import compare

    limited = compare(report.run, Decimal(60), options=QUICK)
    assert limited.optimized.metrics.peak_kw > 60  # the greedy knows no site limit
    assert limited.scheduled.metrics.peak_kw <= 60 + 1e-9
    assert keeps_power_bound(limited.schedule)
    assert limited.schedule.unmet  # 4 connectors at 22 kW cannot all run under 60 kW
    assert limited.compared == 500 - len(limited.schedule.unmet)


def test_schedule_bookings_are_in_order_of_booking_time(report: EvaluationReport) -> None:
    """First come, first served follows booking time (TID order), not the TIDs as text."""
    from evcms_desktop.evaluation.comparison import schedule_problem

    booked_at = {r.request.tid: r.request.booked_at for r in report.run.rows}
    for placement in ("fit", "booked"):
        ids = [b.id for b in schedule_problem(report.run, None, placement).bookings]
        times = [booked_at[i] for i in ids]
        assert times == sorted(times)
        assert ids.index(9) < ids.index(10) < ids.index(100)


def test_hourly_series_add_up(report: EvaluationReport) -> None:
    c = report.comparison
    for system in c.systems:
        hourly = system.hourly
        assert hourly.energy_kwh.sum() == pytest.approx(system.metrics.energy_kwh)
        assert hourly.energy_peak_on_kwh.sum() == pytest.approx(
            system.metrics.energy_kwh * system.metrics.peak_on_share
        )
        assert (hourly.sessions_peak_on <= hourly.sessions).all()


def test_csvs_are_written(report: EvaluationReport, tmp_path: Path) -> None:
    written = write_csvs(report, tmp_path)
    names = sorted(p.name for p in written)
    assert names == [
        "comparison.csv",
        "hourly_demand.csv",
        "schedule.csv",
        "schedule_power.csv",
        "table2.csv",
        "table3.csv",
    ]
    assert len((tmp_path / "table2.csv").read_text().splitlines()) == 501
    assert len((tmp_path / "hourly_demand.csv").read_text().splitlines()) == 25
    # Both in booking order (TID order), the power slot by slot adding up to what each got.
    with (tmp_path / "schedule.csv").open() as fh:
        tids = [int(r["TID"]) for r in csv.DictReader(fh)]
    assert tids == sorted(tids) and len(tids) == 500
    with (tmp_path / "schedule_power.csv").open() as fh:
        power = list(csv.DictReader(fh))
    assert [int(r["TID"]) for r in power] == sorted(int(r["TID"]) for r in power)
    efficiency = float(report.run.setup.tariff.efficiency)
    delivered: dict[int, float] = {}
    for r in power:
        delivered[int(r["TID"])] = (
            delivered.get(int(r["TID"]), 0.0) + float(r["kw"]) * efficiency / 4
        )
    for tid, plan in report.comparison.schedule.plans.items():
        assert delivered[tid] == pytest.approx(plan.delivered_kwh, abs=1e-3)


def test_schedule_windows_hold_the_asked_and_the_greedy_slots(report: EvaluationReport) -> None:
    from evcms_desktop.evaluation.comparison import schedule_problem

    problem: ScheduleProblem = schedule_problem(report.run, None, "fit")
    rows = {r.request.tid: r for r in report.run.rows}
    assert len(problem.bookings) == 500
    assert problem.connector_ids == report.run.connector_ids
    for b in problem.bookings:
        row = rows[b.id]
        assert row.optimized is not None
        # Where the driver is, and nothing more: the booked slot, joined with the stay
        # (arrival to latest departure) only when the two meet.
        stay, slot = (row.request.arrival, row.request.latest_departure), row.optimized
        if slot.start <= stay[1] and stay[0] <= slot.end:
            assert (b.earliest, b.latest) == (min(stay[0], slot.start), max(stay[1], slot.end))
        else:
            assert (b.earliest, b.latest) == (slot.start, slot.end)
        assert b.energy_kwh == row.request.energy_kwh
    booked = {b.id: b for b in schedule_problem(report.run, None, "booked").bookings}
    for b in problem.bookings:
        assert b.earliest <= booked[b.id].earliest and booked[b.id].latest <= b.latest
    by_connector: dict[int | None, list[ScheduleBooking]] = {}
    for b in booked.values():
        by_connector.setdefault(b.connector_id, []).append(b)
    for group in by_connector.values():
        group.sort(key=lambda b: b.earliest)
        assert all(a.latest <= c.earliest for a, c in itertools.pairwise(group))
    fit = {b.id: b for b in problem.bookings}
    windows = booked if report.comparison.placement == "booked" else fit
    for plan in report.comparison.schedule.plans.values():
        window = windows[plan.booking_id]
        assert plan.first_slot >= window.earliest
        assert plan.first_slot + len(plan.powers_kw) * plan.slot <= window.latest


@pytest.mark.parametrize("budget", [0.0, 0.01])
def test_site_schedule_without_time_is_never_worse_than_the_greedy(
    report: EvaluationReport, budget: float
) -> None:
    from evcms_desktop.evaluation.comparison import greedy_schedule, schedule_problem, site_schedule

    greedy = greedy_schedule(schedule_problem(report.run, None, "booked"))
    assert not greedy.unmet and keeps_power_bound(greedy)
    assert greedy.total_cost == report.comparison.optimized.total_cost  # the same sessions
    assert greedy.peak_kw <= report.comparison.optimized.metrics.peak_kw + 1e-6
    options = MilpOptions(time_budget_s=budget, power_profiles=True)
    schedule, placement, _ = site_schedule(report.run, None, options=options)
    assert not schedule.unmet and keeps_power_bound(schedule)
    # What made it, as the operator reads it: a "booked" schedule is never called greedy days.
    assert schedule.method.startswith("booked slots, ") == (placement == "booked")
    assert placement == "fit" or "days greedy" not in schedule.method, schedule.method
    assert schedule.total_cost <= greedy.total_cost
    assert schedule.peak_kw <= greedy.peak_kw + 1e-6


def test_power_csv_keeps_a_site_limit_when_summed_as_written(
    report: EvaluationReport, tmp_path: Path
) -> None:
    # Three cars in one slot at a 60 kW limit: rounded to the nearest 0.0001 kW they
    # would read 10.0001 + 10.0001 + 39.9999 = 60.0001 kW.
    schedule = report.comparison.schedule
    tids = list(schedule.plans)[:3]
    powers = (10.00006, 10.00006, 39.99988)
    plans = {
        tid: replace(schedule.plans[tid], first_slot=schedule.start, powers_kw=(kw, 22.0))
        for tid, kw in zip(tids, powers, strict=True)
    }
    crafted = replace(schedule, plans=plans)
    write_schedule_power(
        replace(report, comparison=replace(report.comparison, schedule=crafted)),
        tmp_path / "power.csv",
    )
    with (tmp_path / "power.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    by_slot: dict[str, float] = {}
    for r in rows:
        by_slot[r["slot_start"]] = by_slot.get(r["slot_start"], 0.0) + float(r["kw"])
    first = schedule.start.isoformat()
    assert sum(powers) <= 60.0 and by_slot[first] <= 60.0
    assert by_slot[first] == pytest.approx(60.0, abs=1e-3)
    assert {r["kw"] for r in rows if r["slot_start"] != first} == {"22.0000"}
