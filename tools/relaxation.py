"""What the relaxation proves about the evaluation's site schedule, for docs/evaluation.md.

Books the evaluation's scenario through the real booking service (as `evaluate` does),
builds the site-schedule problem over the windows where the drivers are (the "fit"
windows, evaluation/comparison.py) and solves the relaxation (schedule/optimal.py: any
power in any slot of a window, connectors and sessions ignored). Every figure it prints
bounds every schedule inside those windows: no schedule meeting every booking costs less
than the least cost or peaks below the least peak; none under a limit leaves less short.

    .venv/bin/python tools/relaxation.py [--seed 1] [--bookings 500] [--connectors 4 8]
"""

from __future__ import annotations

import argparse
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from evcms_desktop.evaluation.comparison import schedule_problem
from evcms_desktop.evaluation.runner import StationSetup, run_evaluation
from evcms_desktop.evaluation.scenario import ScenarioConfig, generate_scenario
from evcms_desktop.schedule import ScheduleProblem
from evcms_desktop.schedule.model import Bound
from evcms_desktop.schedule.optimal import least_peak_bound, relaxation_bound

EXTRA = Decimal(5)  # GBP above the least cost: the "for £5 more"
COST_LIMITS_KW = (80.0, 100.0)  # the least cost under these limits
SHORT_LIMITS_KW = (80.0, 60.0)  # the least energy short under these limits


@dataclass(frozen=True)
class Relaxation:
    """The relaxation's figures for one scenario; a cost is None where energy must be short."""

    connectors: int
    greedy_cost: Decimal
    least_cost: Decimal | None
    least_peak_kw: float
    peak_at_greedy_cost_kw: float
    peak_at_extra_kw: float
    at_kw: dict[float, Bound]  # under each limit: its least cost, or its least energy short


def relaxation_of(problem: ScheduleProblem, greedy_cost: Decimal, connectors: int) -> Relaxation:
    """The relaxation's least cost, least peaks and what each limit allows."""
    least = relaxation_bound(problem, None).cost
    return Relaxation(
        connectors=connectors,
        greedy_cost=greedy_cost,
        least_cost=least,
        least_peak_kw=least_peak_bound(problem),
        peak_at_greedy_cost_kw=least_peak_bound(problem, greedy_cost),
        peak_at_extra_kw=math.inf if least is None else least_peak_bound(problem, least + EXTRA),
        at_kw={
            kw: relaxation_bound(problem, kw) for kw in sorted({*COST_LIMITS_KW, *SHORT_LIMITS_KW})
        },
    )


def scenario_relaxation(seed: int, bookings: int, connectors: int) -> Relaxation:
    """Book the scenario as `evaluate` does and solve the relaxation over its "fit" windows."""
    setup = StationSetup.with_connectors(connectors)
    config = ScenarioConfig(bookings=bookings, seed=seed, connectors=connectors)
    run = run_evaluation(generate_scenario(config, setup.tariff, setup.calendar), setup)
    greedy = sum((r.optimized.price for r in run.rows if r.optimized is not None), Decimal(0))
    return relaxation_of(schedule_problem(run, None, "fit"), greedy, connectors)


def _cost(value: Decimal | None) -> str:
    return "energy short" if value is None else f"{value:.2f}"


def describe(r: Relaxation) -> list[str]:
    least = r.least_cost
    lines = [
        f"{r.connectors} connectors (the greedy: {r.greedy_cost:.2f})",
        f"  least cost, every booking met: {_cost(least)}",
        f"  least peak meeting every booking, at any cost: {r.least_peak_kw:.1f} kW",
        f"  least peak at the greedy's cost: {r.peak_at_greedy_cost_kw:.1f} kW",
        f"  least peak at the least cost + £{EXTRA}: {r.peak_at_extra_kw:.1f} kW",
    ]
    for kw in COST_LIMITS_KW:
        cost = r.at_kw[kw].cost
        extra = "" if cost is None or least is None else f" (+£{cost - least:.2f})"
        if cost is None:
            extra = f" (at least {r.at_kw[kw].unmet_kwh:.1f} kWh)"
        lines.append(f"  least cost under {kw:.0f} kW: {_cost(cost)}{extra}")
    for kw in SHORT_LIMITS_KW:
        lines.append(f"  least energy short under {kw:.0f} kW: {r.at_kw[kw].unmet_kwh:.1f} kWh")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--bookings", type=int, default=500)
    parser.add_argument("--connectors", type=int, nargs="+", default=[4, 8])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("evcms_desktop.store").setLevel(logging.WARNING)
    for connectors in args.connectors:
        for line in describe(scenario_relaxation(args.seed, args.bookings, connectors)):
            print(line)  # noqa: T201 - a script's output


if __name__ == "__main__":
    main()
