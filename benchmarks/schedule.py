"""Time and gap of the site schedule: the MILP (schedule/milp.py) against its bound.

1. The live re-plan's size: one day of 100 bookings on 20 connectors (cars back to back on
   each connector, each asking for 30 to 90 % of what its connector could deliver in its
   window, windows widened by up to 2 hours either side, the site limit 60 % of the
   connectors' total, so it binds). Target: under 2 s.
2. The evaluation's size: the seed-1 scenario (500 bookings over 14 days, 4 connectors),
   booked through the real booking service, then scheduled by the MILP over the drivers'
   accepted windows, with a progress bar per day. Target: under 60 s.

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
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from evcms_desktop.app.evaluate_command import ProgressBar
from evcms_desktop.evaluation.comparison import schedule_problem
from evcms_desktop.evaluation.runner import StationSetup, run_evaluation
from evcms_desktop.evaluation.scenario import ScenarioConfig, generate_scenario
from evcms_desktop.schedule import Schedule, ScheduleBooking, ScheduleProblem, solve_schedule
from evcms_desktop.schedule.milp import LIVE_OPTIONS, MilpOptions
from evcms_desktop.schedule.optimal import plan_site

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
    short = sum(u.shortfall_kwh for u in schedule.unmet)
    bound = schedule.bound
    if bound is None:
        return f"short {short:.1f} kWh"
    if bound.cost is None:
        return f"short {short:.1f} kWh (bound {bound.unmet_kwh:.1f})"
    gap = "n/a (energy short)" if schedule.gap is None else f"{schedule.gap:.3%}"
    return (
        f"cost {schedule.total_cost} (bound {bound.cost}, gap {gap}), short {short:.1f} kWh,"
        f" peak {schedule.peak_kw:.1f} kW"
    )


def live_day(repeats: int) -> None:
    print("1. one day, 100 bookings, 20 connectors, site limit 264 kW (the live re-plan)")
    times, lp_times = [], []
    for repeat in range(repeats):
        problem = day_of_bookings(100, 20, seed=repeat)
        began = time.perf_counter()
        schedule = plan_site(problem, LIVE_OPTIONS, compete=False)  # as replan_day does
        times.append(time.perf_counter() - began)
        began = time.perf_counter()
        solve_schedule(problem)
        lp_times.append(time.perf_counter() - began)
        print(f"   seed {repeat}: {times[-1]:.2f} s, {describe(schedule)}")
    print(
        f"   MILP median {statistics.median(times):.2f} s, max {max(times):.2f} s"
        f" (target < 2 s); old LP median {statistics.median(lp_times):.2f} s"
    )


def evaluation() -> None:
    print("2. the evaluation: seed 1, 500 bookings, 14 days, 4 connectors")
    logging.getLogger("evcms_desktop").setLevel(logging.WARNING)
    setup = StationSetup.with_connectors(4)
    scenario = generate_scenario(ScenarioConfig(), setup.tariff, setup.calendar)
    run = run_evaluation(scenario, setup)
    bar = ProgressBar(sys.stderr)
    for limit in (None, Decimal(80), Decimal(60)):
        problem = replace(schedule_problem(run, None, "fit"), site_limit_kw=limit)
        label = "no limit" if limit is None else f"limit {limit} kW"
        began = time.perf_counter()
        schedule = plan_site(
            problem,
            MilpOptions(time_budget_s=EVALUATION_BUDGET_S),
            progress=lambda done, total, label=label: bar.show(label, done, total),
        )
        seconds = time.perf_counter() - began
        print(f"   {label}: {seconds:.1f} s (target < 60 s), {describe(schedule)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    live_day(args.repeats)
    evaluation()


if __name__ == "__main__":
    main()
