"""The whole evaluation in one call, its CSV files, and the data behind Figures 13 to 16.

Figure 13: total original and optimized cost per case, by local hour of the asked start.
Figure 14: per case and hour, the discount (original minus optimized cost, negative when
the optimized system charges more) and the profit, our reading of the paper's word: the
part of the discount earned by bookings shifted to Peak Off (SPS = 1), so only Cases 1
and 2 can have any.
Figures 15 and 16: the per-hour series of evaluation.demand.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path

from evcms_desktop.evaluation.comparison import SCHEDULE_BUDGET_S, Comparison, compare
from evcms_desktop.evaluation.runner import EvaluationRun, StationSetup, run_evaluation
from evcms_desktop.evaluation.scenario import Scenario
from evcms_desktop.evaluation.tables import (
    CASES,
    PAPER_TABLE3,
    CaseSummary,
    table3,
    write_table2,
    write_table3,
)
from evcms_desktop.schedule.milp import MilpOptions
from evcms_desktop.schedule.model import Schedule
from evcms_desktop.schedule.optimal import Phase

EVALUATION_BUDGET_S = 40.0  # wall clock for booking the requests and the site schedule
MIN_SCHEDULE_S = 15.0  # the site schedule's least budget, however long booking took

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class CaseHours:
    """Per case, 24 local hours of a money series."""

    values: dict[int, tuple[Decimal, ...]]


@dataclass(frozen=True)
class EvaluationReport:
    run: EvaluationRun
    table3: list[CaseSummary]
    comparison: Comparison

    def cost_by_hour(self) -> tuple[CaseHours, CaseHours]:
        """Figure 13: (original, optimized) total cost per case and hour of the asked start."""
        original = {c: [Decimal(0)] * 24 for c in CASES}
        optimized = {c: [Decimal(0)] * 24 for c in CASES}
        calendar = self.run.setup.calendar
        for row in self.run.rows:
            if row.optimized is None:
                continue
            hour = calendar.to_local(row.request.arrival).hour
            original[row.case][hour] += row.original.price
            optimized[row.case][hour] += row.optimized.price
        return (
            CaseHours({c: tuple(v) for c, v in original.items()}),
            CaseHours({c: tuple(v) for c, v in optimized.items()}),
        )

    def discount_and_profit(self) -> tuple[CaseHours, CaseHours]:
        """Figure 14: (discount, profit) per case and hour of the asked start."""
        discount = {c: [Decimal(0)] * 24 for c in CASES}
        profit = {c: [Decimal(0)] * 24 for c in CASES}
        calendar = self.run.setup.calendar
        for row in self.run.rows:
            if row.optimized is None:
                continue
            hour = calendar.to_local(row.request.arrival).hour
            saved = row.original.price - row.optimized.price
            discount[row.case][hour] += saved
            if row.shifted:
                profit[row.case][hour] += saved
        return (
            CaseHours({c: tuple(v) for c, v in discount.items()}),
            CaseHours({c: tuple(v) for c, v in profit.items()}),
        )


def evaluate(
    scenario: Scenario,
    setup: StationSetup,
    *,
    site_limit_kw: Decimal | None = None,
    progress: Progress | None = None,
    workdir: Path | None = None,
    frontier: bool = False,
    schedule_options: MilpOptions | None = None,
    schedule_progress: Progress | None = None,
    phase: Phase | None = None,
) -> EvaluationReport:
    """The evaluation; with `frontier`, the site schedule's cost–peak frontier as well.

    Without `schedule_options`, the site schedule gets what is left of EVALUATION_BUDGET_S
    once the requests are booked (at least MIN_SCHEDULE_S), so the whole run keeps to it
    however loaded the machine is; the bounds and figures come after. `phase` is told of
    each step of the site schedule as it starts, with its budget.
    """
    began = time.perf_counter()
    run = run_evaluation(scenario, setup, progress=progress, workdir=workdir)
    if schedule_options is None:
        left = EVALUATION_BUDGET_S - (time.perf_counter() - began)
        schedule_options = MilpOptions(
            time_budget_s=min(SCHEDULE_BUDGET_S, max(MIN_SCHEDULE_S, left)), power_profiles=True
        )
    comparison = compare(
        run,
        site_limit_kw,
        frontier=frontier,
        options=schedule_options,
        progress=schedule_progress,
        phase=phase,
    )
    return EvaluationReport(run=run, table3=table3(run.rows), comparison=comparison)


def _money(value: Decimal | None) -> str:
    return "" if value is None else f"{value:.2f}"


def write_comparison(report: EvaluationReport, path: Path) -> None:
    comparison = report.comparison
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            (
                "system",
                "total_cost",
                *(f"case{c}_average_cost" for c in CASES),
                "site_peak_kw",
                "average_kw",
                "peak_to_average",
                "peak_on_energy_share",
                "energy_kwh",
                "bookings_not_met",
                "bookings_compared",
            )
        )
        writer.writerow(
            (
                "Paper",
                "",
                *(_money(PAPER_TABLE3[c][1]) for c in CASES),
                "",
                "",
                "",
                "",
                "",
                "",
                "",
            )
        )
        for system in comparison.systems:
            m = system.metrics
            writer.writerow(
                (
                    system.name,
                    _money(system.total_cost),
                    *(_money(system.case_costs[c]) for c in CASES),
                    f"{m.peak_kw:.1f}",
                    f"{m.average_kw:.2f}",
                    f"{m.peak_to_average:.2f}",
                    f"{m.peak_on_share:.3f}",
                    f"{m.energy_kwh:.1f}",
                    system.unmet,
                    comparison.compared,
                )
            )


def write_hourly(report: EvaluationReport, path: Path) -> None:
    c = report.comparison
    series = {
        "original": c.original.hourly,
        "optimized": c.optimized.hourly,
        "schedule": c.scheduled.hourly,
    }
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        header = ["hour"]
        for name in series:
            header += [
                f"{name}_sessions",
                f"{name}_sessions_peak_on",
                f"{name}_energy_kwh",
                f"{name}_energy_peak_on_kwh",
            ]
        writer.writerow(header)
        for hour in range(24):
            line: list[object] = [hour]
            for demand in series.values():
                line += [
                    int(demand.sessions[hour]),
                    int(demand.sessions_peak_on[hour]),
                    f"{demand.energy_kwh[hour]:.2f}",
                    f"{demand.energy_peak_on_kwh[hour]:.2f}",
                ]
            writer.writerow(line)


def _booking_order(report: EvaluationReport) -> dict[Hashable, int]:
    """Each TID's place in booking order (Table 2's), not the TIDs as text."""
    return {r.request.tid: i for i, r in enumerate(report.run.rows)}


KW_PLACES = Decimal("0.0001")  # the power CSVs' precision, kW


def kw_text(kw: float) -> str:
    """A slot's kW as the power CSVs write it: rounded down to KW_PLACES (a value within
    HiGHS' 1e-9 of the next step up is taken as that step), so the values of one slot,
    summed as written, never come to more than a site limit the schedule keeps."""
    return str(Decimal(repr(float(kw) + 1e-9)).quantize(KW_PLACES, rounding=ROUND_FLOOR))


def _power_rows(
    schedule: Schedule, order: dict[Hashable, int]
) -> Iterator[tuple[Hashable, int, str, str]]:
    """tid, connector, slot start, kW: every slot of every session, in booking order."""
    for tid, plan in sorted(schedule.plans.items(), key=lambda kv: order.get(kv[0], 0)):
        for i, kw in enumerate(plan.powers_kw):
            start = plan.first_slot + i * plan.slot
            yield tid, plan.connector_id, start.isoformat(), kw_text(kw)


def write_schedule_power(report: EvaluationReport, path: Path) -> None:
    """The site schedule's power, slot by slot: what each connector would be sent."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(("TID", "connector_id", "slot_start", "kw"))
        writer.writerows(_power_rows(report.comparison.schedule, _booking_order(report)))


def write_frontier_power(report: EvaluationReport, path: Path) -> None:
    """Every frontier point's schedule, slot by slot, each row with its point (0: least cost)."""
    order = _booking_order(report)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(("point", "limit_kw", "TID", "connector_id", "slot_start", "kw"))
        for n, point in enumerate(report.comparison.frontier):
            limit = "" if point.limit_kw is None else f"{point.limit_kw:.1f}"
            for row in _power_rows(point.schedule, order):
                writer.writerow((n, limit, *row))


def write_schedule(report: EvaluationReport, path: Path) -> None:
    schedule = report.comparison.schedule
    unmet = {u.booking_id: u for u in schedule.unmet}
    order = _booking_order(report)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            (
                "TID",
                "connector_id",
                "start",
                "end",
                "delivered_kwh",
                "peak_on_kwh",
                "cost",
                "max_kw",
                "not_met",
            )
        )
        for tid, plan in sorted(schedule.plans.items(), key=lambda kv: order.get(kv[0], 0)):
            start, end = plan.start, plan.end
            writer.writerow(
                (
                    tid,
                    plan.connector_id,
                    start.isoformat() if start else "",
                    end.isoformat() if end else "",
                    f"{plan.delivered_kwh:.3f}",
                    f"{plan.peak_on_kwh:.3f}",
                    _money(plan.cost),
                    f"{max(plan.powers_kw, default=0.0):.2f}",
                    unmet[tid].reason if tid in unmet else "",
                )
            )
        for u in sorted(schedule.unmet, key=lambda u: order.get(u.booking_id, 0)):
            if u.booking_id not in schedule.plans:
                writer.writerow((u.booking_id, "", "", "", "0", "0", "", "", u.reason))


def write_frontier(report: EvaluationReport, path: Path) -> None:
    """The cost–peak frontier: one row per schedule, least cost first, each with its bound.

    A point that leaves energy short has no extra cost, bound cost or gap (empty): its cost
    is of less energy and the bound's of all of it.
    """
    points = report.comparison.frontier
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            (
                "limit_kw",
                "peak_kw",
                "cost",
                "extra_cost",
                "unmet_kwh",
                "bookings_not_met",
                "bound_cost",
                "bound_unmet_kwh",
                "gap",
                "method",
                "seconds",
                "label",
            )
        )
        for point in points:
            bound = point.schedule.bound
            gap = None if point.short else point.schedule.gap
            extra = point.extra_cost(points[0])
            bound_cost = point.comparable_bound()
            writer.writerow(
                (
                    "" if point.limit_kw is None else f"{point.limit_kw:.1f}",
                    f"{point.peak_kw:.2f}",
                    _money(point.cost),
                    "" if extra is None else _money(extra),
                    f"{point.unmet_kwh:.1f}",
                    len(point.schedule.unmet),
                    "" if bound_cost is None else _money(bound_cost),
                    f"{bound.unmet_kwh:.1f}" if bound else "",
                    "" if gap is None else f"{gap:.5f}",
                    point.schedule.method,
                    f"{point.schedule.seconds:.1f}",
                    point.label(points[0]),
                )
            )


def write_csvs(report: EvaluationReport, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "table2.csv": lambda p: write_table2(report.run.rows, p),
        "table3.csv": lambda p: write_table3(report.table3, p),
        "comparison.csv": lambda p: write_comparison(report, p),
        "hourly_demand.csv": lambda p: write_hourly(report, p),
        "schedule.csv": lambda p: write_schedule(report, p),
        "schedule_power.csv": lambda p: write_schedule_power(report, p),
    }
    if report.comparison.frontier:
        paths["frontier.csv"] = lambda p: write_frontier(report, p)
        paths["frontier_power.csv"] = lambda p: write_frontier_power(report, p)
    written = []
    for name, write in paths.items():
        path = out / name
        write(path)
        written.append(path)
    return written
