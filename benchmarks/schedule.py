"""Time to schedule one day of bookings with the site scheduler (HiGHS LP, two passes).

Days of 100, 500 and 2,000 bookings on 8, 20 and 50 connectors. Each connector's day is
cut into consecutive windows (one car after another), each car asking for 30 to 90 % of
what its connector could deliver in its window; the site limit is 60 % of the connectors'
total power, so it binds. Combinations that leave a car less than 30 minutes on average
(more than 48 bookings per connector a day) are skipped: no site looks like that.
Target: under 1 s for 500 bookings on 20 connectors. The fallback (earliest deadline
first, valley filling) and the "fit" placement (the scheduler also chooses each car's
session inside its window) are timed on the same days; "not met" counts the bookings of
the last repeat that the site limit leaves short.

    .venv/bin/python benchmarks/schedule.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from evcms_desktop.schedule import ScheduleBooking, ScheduleProblem, solve_schedule

DAY = datetime(2027, 3, 2, tzinfo=UTC)  # a Tuesday
SLOT = timedelta(minutes=15)
POWER_KW = 22
MAX_PER_CONNECTOR = 48


def day_of_bookings(count: int, connectors: int, seed: int) -> ScheduleProblem:
    rng = random.Random(seed)
    bookings: list[ScheduleBooking] = []
    per_connector = [count // connectors + (c < count % connectors) for c in range(connectors)]
    for connector, n in enumerate(per_connector):
        cuts = sorted(rng.sample(range(1, 96), n - 1)) if n > 1 else []
        edges = [0, *cuts, 96]
        for start, end in itertools.pairwise(edges):
            most = POWER_KW * 0.8 * (end - start) / 4
            bookings.append(
                ScheduleBooking(
                    id=len(bookings),
                    earliest=DAY + start * SLOT,
                    latest=DAY + end * SLOT,
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(
        f"{'bookings':>8} {'connectors':>10} {'LP median s':>12} {'max s':>7} {'not met':>8}"
        f" {'fit median s':>13} {'greedy median s':>16} {'not met':>8}"
    )
    for count in (100, 500, 2000):
        for connectors in (8, 20, 50):
            if count / connectors > MAX_PER_CONNECTOR:
                print(f"{count:>8} {connectors:>10}  skipped: under 30 min per car")
                continue
            times: list[float] = []
            greedy_times: list[float] = []
            fit_times: list[float] = []
            for repeat in range(args.repeats):
                problem = day_of_bookings(count, connectors, seed=repeat)
                began = time.perf_counter()
                schedule = solve_schedule(problem)
                times.append(time.perf_counter() - began)
                began = time.perf_counter()
                solve_schedule(problem, placement="fit")
                fit_times.append(time.perf_counter() - began)
                began = time.perf_counter()
                greedy = solve_schedule(problem, max_lp_variables=0)
                greedy_times.append(time.perf_counter() - began)
            assert schedule.method == "lp" and greedy.method == "greedy"
            print(
                f"{count:>8} {connectors:>10} {statistics.median(times):12.3f} {max(times):7.3f}"
                f" {len(schedule.unmet):>8} {statistics.median(fit_times):13.3f}"
                f" {statistics.median(greedy_times):16.3f}"
                f" {len(greedy.unmet):>8}"
            )


if __name__ == "__main__":
    main()
