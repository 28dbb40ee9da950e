"""Time and gap of the site schedule: the MILP (schedule/milp.py) against its bound.

1. The live re-plan's size: one day of 100 bookings on 20 connectors (cars back to back on
   each connector, each asking for 30 to 90 % of what its connector could deliver in its
   window, windows widened by up to 2 hours either side, the site limit 60 % of the
   connectors' total, so it binds), planned as replan_day does (power profiles under the
   limit): cold, then at 10:00 with one booking added, counting the profiles that re-plan
   sends. Target: under 2 s.
2. The evaluation's size: the seed-1 scenario (500 bookings over 14 days, 4 connectors),
   booked through the real booking service, then scheduled as the evaluation does
   (comparison.site_schedule: the better of the MILP's schedule over the windows where
   the drivers are, under a limit schedule/profiles.py's sessions, and the schedule over
   the booked windows, which is never worse than the greedy's), with a progress bar,
   beside the greedy's own sessions. Target: under 60 s.

For each, the relaxation's bound (schedule/optimal.py) and the gap: how much above the
least possible cost the schedule may be. The old LP ("window" placement, connectors fixed
by the booking service) is timed beside the first for scale.

    .venv/bin/python benchmarks/schedule.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import itertools
import logging
import random
import statistics
import sys
import time
from collections.abc import Hashable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from evcms_desktop.app.evaluate_command import ProgressBar
from evcms_desktop.csms.schedule_applier import AppliedPlan, ConnectorTarget, replan
from evcms_desktop.evaluation.comparison import greedy_schedule, schedule_problem, site_schedule
from evcms_desktop.evaluation.runner import EvaluationRun, StationSetup, run_evaluation
from evcms_desktop.evaluation.scenario import ScenarioConfig, generate_scenario
from evcms_desktop.schedule import (
    BookingPlan,
    Schedule,
    ScheduleBooking,
    ScheduleProblem,
    solve_schedule,
)
from evcms_desktop.schedule.milp import LIVE_OPTIONS, MilpOptions
from evcms_desktop.schedule.optimal import relaxation_bound

DAY = datetime(2027, 3, 2, tzinfo=UTC)  # a Tuesday
SLOT = timedelta(minutes=15)
POWER_KW = 22
EVALUATION_BUDGET_S = 45.0


def day_of_bookings(count: int, connectors: int, seed: int) -> ScheduleProblem:
    rng = random.Random(seed)
    bookings: list[ScheduleBooking] = []
    per_connector = [count // connectors + (c < count % connectors) for c in range(connectors)]
    for connector, n in enumerate(per_connector):
        cuts = sorted(rng.sample(range(1, 96), n - 1)) if n > 1 else []
        edges = [0, *cuts, 96]
        for start, end in itertools.pairwise(edges):
            most = POWER_KW * 0.8 * (end - start) / 4
            widen = rng.randint(0, 8), rng.randint(0, 8)
            bookings.append(
                ScheduleBooking(
                    id=len(bookings),
                    earliest=DAY + max(0, start - widen[0]) * SLOT,
                    latest=DAY + min(96, end + widen[1]) * SLOT,
                    energy_kwh=Decimal(f"{most * rng.uniform(0.3, 0.9):.1f}"),
                    max_power_kw=Decimal(POWER_KW),
                    connector_id=connector,
                )
            )
    return ScheduleProblem(
        bookings=tuple(bookings),
        connector_ids=tuple(range(connectors)),
        site_limit_kw=Decimal(connectors * POWER_KW) * Decimal("0.6"),
    )


def describe(schedule: Schedule) -> str:
    """Cost, peak and energy short, each beside the relaxation's bound where it has one."""
    short = sum(u.shortfall_kwh for u in schedule.unmet)
    bound = schedule.bound
    if bound is None:
        return f"cost {schedule.total_cost}, peak {schedule.peak_kw:.1f} kW, short {short:.1f} kWh"
    shortfall = f"short {short:.1f} kWh (bound {bound.unmet_kwh:.1f})"
    if schedule.unmet or bound.cost is None:
        # The bound's cost is of schedules that meet every booking: not one that delivers less.
        what = f"cost {schedule.total_cost} of what it delivers"
        return f"{what}, peak {schedule.peak_kw:.1f} kW, {shortfall}"
    gap = "n/a" if schedule.gap is None else f"{schedule.gap:.3%}"
    return (
        f"cost {schedule.total_cost} (bound {bound.cost}, gap {gap}),"
        f" peak {schedule.peak_kw:.1f} kW, {shortfall}"
    )


@dataclass
class Figures:
    """One case's figures over the repeats, for the medians."""

    seconds: list[float] = field(default_factory=list)
    cost: list[float] = field(default_factory=list)
    peak: list[float] = field(default_factory=list)
    short: list[float] = field(default_factory=list)
    short_gap: list[float] = field(default_factory=list)  # kWh short above the bound
    changed: list[int] = field(default_factory=list)  # requests a re-plan sends

    def add(self, seconds: float, schedule: Schedule) -> None:
        """The schedule's figures; its bound (given with `with_bound`) comes after the time."""
        short = sum(u.shortfall_kwh for u in schedule.unmet)
        self.seconds.append(seconds)
        self.cost.append(float(schedule.total_cost))
        self.peak.append(schedule.peak_kw)
        self.short.append(short)

    def bounded(self, schedule: Schedule) -> None:
        short = sum(u.shortfall_kwh for u in schedule.unmet)
        assert schedule.bound is not None
        self.short_gap.append(short - schedule.bound.unmet_kwh)

    def medians(self) -> str:
        out = (
            f"median {statistics.median(self.seconds):.2f} s (max {max(self.seconds):.2f} s),"
            f" cost {statistics.median(self.cost):.2f}, peak {statistics.median(self.peak):.1f}"
            f" kW, short {statistics.median(self.short):.1f} kWh"
            f" ({statistics.median(self.short_gap):.1f} above the bound)"
        )
        if self.changed:
            out += f", profiles sent {statistics.median(self.changed):.0f}"
        return out


def with_bound(
    schedule: Schedule, problem: ScheduleProblem, fixed: dict[Hashable, BookingPlan]
) -> Schedule:
    """The schedule with the relaxation's bound, computed apart (the live re-plan skips it)."""
    limit = float(problem.site_limit_kw) if problem.site_limit_kw is not None else None
    return replace(schedule, bound=relaxation_bound(problem, limit, fixed))


def targets_of(problem: ScheduleProblem) -> dict[int, ConnectorTarget]:
    return {c: ConnectorTarget(f"CP-{c}", 1, float(POWER_KW)) for c in problem.connector_ids}


def rest_of_day(
    problem: ScheduleProblem, previous: Schedule, now: datetime, added: ScheduleBooking
) -> tuple[ScheduleProblem, dict[Hashable, int]]:
    """What replan_day reads at `now` (as day_problem does) with one booking added, and
    the transactions running then: a booking whose plan has begun and not ended."""
    bookings, running = [], {}
    for b in problem.bookings:
        plan = previous.plans.get(b.id)
        if b.latest <= now or (plan is not None and plan.end is not None and plan.end <= now):
            continue  # over: nothing left to plan
        if plan is not None and plan.start is not None and plan.start < now:
            running[b.id] = len(running) + 1
        bookings.append(replace(b, earliest=max(b.earliest, now)))
    return replace(problem, bookings=(*bookings, added)), running


def new_booking(problem: ScheduleProblem, now: datetime, seed: int) -> ScheduleBooking:
    """A driver books at `now` for later today: 2 to 4 hours, half to 90 % of what fits."""
    rng = random.Random(1000 + seed)
    start = now + rng.randint(1, 24) * SLOT
    slots = rng.randint(8, 16)
    most = POWER_KW * 0.8 * slots / 4
    return ScheduleBooking(
        id=len(problem.bookings),
        earliest=start,
        latest=start + slots * SLOT,
        energy_kwh=Decimal(f"{most * rng.uniform(0.5, 0.9):.1f}"),
        max_power_kw=Decimal(POWER_KW),
        connector_id=rng.randrange(len(problem.connector_ids)),
    )


def live_day(repeats: int) -> None:
    print(f"1. the live re-plan, {LIVE_OPTIONS.time_budget_s} s budget (target < 2 s)")
    print("   a. one day, 100 bookings, 20 connectors, site limit 264 kW, planned cold")
    print(
        "   b. the same day at 10:00, that plan sent, one booking added (sessions under way kept)"
    )
    cold, warm = Figures(), Figures()
    lp_times = []
    now = DAY + timedelta(hours=10)
    for repeat in range(repeats):
        problem = day_of_bookings(100, 20, seed=repeat)
        targets = targets_of(problem)
        began = time.perf_counter()
        first, requests = replan(problem, targets, AppliedPlan())  # as replan_day does
        cold.add(time.perf_counter() - began, first)
        first = with_bound(first, problem, {})
        cold.bounded(first)
        print(f"   a. seed {repeat}: {cold.seconds[-1]:.2f} s, {describe(first)}")
        applied = AppliedPlan(first, {r.key: r for r in requests})
        later, running = rest_of_day(problem, first, now, new_booking(problem, now, repeat))
        began = time.perf_counter()
        booked = {b.id: b.earliest for b in (*problem.bookings, later.bookings[-1])}
        second, changed = replan(
            later, targets, applied, transactions=running, booked_starts=booked, now=now
        )
        warm.add(time.perf_counter() - began, second)
        second = with_bound(second, later, {b: first.plans[b] for b in running})
        warm.bounded(second)
        warm.changed.append(len(changed))
        print(
            f"   b. seed {repeat}: {warm.seconds[-1]:.2f} s, {describe(second)},"
            f" {len(changed)} profiles sent of {len(second.plans) - len(running)} re-planned"
            f" ({len(running)} under way kept)"
        )
        began = time.perf_counter()
        solve_schedule(problem)
        lp_times.append(time.perf_counter() - began)
    print(f"   a. {cold.medians()}")
    print(f"   b. {warm.medians()}")
    print(f"   the old LP on a.: median {statistics.median(lp_times):.2f} s")


def evaluation() -> None:
    print("2. the evaluation: seed 1, 500 bookings, 14 days, 4 connectors")
    logging.getLogger("evcms_desktop").setLevel(logging.WARNING)
    setup = StationSetup.with_connectors(4)
    scenario = generate_scenario(ScenarioConfig(), setup.tariff, setup.calendar)
    run = run_evaluation(scenario, setup)
    bar = ProgressBar(sys.stderr)
    print(f"   the greedy: {describe(greedy_schedule(schedule_problem(run, None, 'booked')))}")
    try:
        for limit in (None, Decimal(80), Decimal(60)):
            _evaluation_case(run, limit, bar)
    finally:
        bar.close()


def _evaluation_case(run: EvaluationRun, limit: Decimal | None, bar: ProgressBar) -> None:
    label = "no limit" if limit is None else f"limit {limit} kW"
    began = time.perf_counter()
    schedule, placement, _ = site_schedule(
        run,
        limit,
        options=MilpOptions(time_budget_s=EVALUATION_BUDGET_S, power_profiles=True),
        progress=lambda done, total: bar.show(label, done, total),
        phase=lambda step, budget: bar.phase(f"{label}: {step}", budget),
    )
    seconds = time.perf_counter() - began
    print(f"   {label}: {seconds:.1f} s (target < 60 s), {placement}: {describe(schedule)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--live-only", action="store_true", help="the live re-plan only")
    args = parser.parse_args()
    live_day(args.repeats)
    if not args.live_only:
        evaluation()


if __name__ == "__main__":
    main()
