"""`evcms-desktop evaluate`: the paper's evaluation and the site schedule, as CSVs and PNGs."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from evcms_desktop.app.arguments import whole_number
from evcms_desktop.app.config import AppConfig

if TYPE_CHECKING:
    from evcms_desktop.evaluation.report import EvaluationReport

BAR_WIDTH = 30
TICK_S = 2.0  # a step silent this long says how long it has taken


class ProgressBar:
    """A one-line text bar on a terminal, redrawn in place at most ten times a second.

    Into a file or a pipe (no terminal to redraw on) it writes a plain line per 10 %
    instead, so a redirected log holds a dozen lines, not hundreds of redraws.

    `phase` names a step as it starts; while the step runs and nothing else is written
    for `tick_s`, a thread of its own says how long the step has taken, of its budget
    when it has one (a solve in HiGHS, which lets other threads run meanwhile), so a long
    step shows it is alive without slowing it. `close` stops that thread.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        terminal: bool | None = None,
        tick_s: float = TICK_S,
    ) -> None:
        self.stream = stream or sys.stderr
        self.terminal = self._is_terminal(self.stream) if terminal is None else terminal
        self.tick_s = tick_s
        self._last = 0.0
        self._step: tuple[str, int] | None = None  # the label and tenth last written
        self._lock = threading.Lock()
        self._written = time.monotonic()  # when anything was last written
        self._phase: tuple[str, float, float | None] | None = None  # label, began, budget
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    @staticmethod
    def _is_terminal(stream: TextIO) -> bool:
        try:
            return stream.isatty()
        except (AttributeError, ValueError):  # no such method, or a closed stream
            return False

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()
        self._written = time.monotonic()

    def _line(self, text: str) -> None:
        """A whole line: on a terminal it replaces the bar drawn in place."""
        self._write(f"\r{text:<{BAR_WIDTH + 34}}\n" if self.terminal else f"{text}\n")

    def show(self, label: str, done: int, total: int) -> None:
        share = min(1.0, done / total) if total else 1.0
        with self._lock:
            if not self.terminal:
                step = (label, int(share * 10))
                if step != self._step:
                    self._step = step
                    self._write(f"{label:<22} {share:4.0%} {done}/{total}\n")
                return
            now = time.monotonic()
            if done < total and now - self._last < 0.1:
                return
            self._last = now
            filled = round(BAR_WIDTH * share)
            bar = "#" * filled + "-" * (BAR_WIDTH - filled)
            self._write(f"\r{label:<22} [{bar}] {share:4.0%} {done}/{total}")
            if done >= total:
                self._write("\n")

    def phase(self, label: str, budget_s: float | None = None) -> None:
        """A step starts now: say so at once, then tick while it runs."""
        with self._lock:
            self._phase = (label, time.monotonic(), budget_s)
            self._step = None
            given = "" if budget_s is None else f" ({budget_s:.0f} s given)"
            self._line(f"{label}{given}")
        if self._ticker is None:
            self._ticker = threading.Thread(target=self._tick, name="progress-ticker", daemon=True)
            self._ticker.start()

    def _tick(self) -> None:
        while not self._stop.wait(self.tick_s / 4):
            with self._lock:
                now = time.monotonic()
                if self._phase is None or now - self._written < self.tick_s:
                    continue
                label, began, budget = self._phase
                spent = f"{now - began:.0f} s" + ("" if budget is None else f" of {budget:.0f} s")
                self._line(f"{label}: {spent}")

    def close(self) -> None:
        """No more ticks: the last step is over."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        with self._lock:
            self._phase = None


SITE_LIMIT_KW = (Decimal(1), Decimal(10_000))  # 1 kW to 10 MW


def _kilowatts(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of kW") from exc
    if not value.is_finite() or not SITE_LIMIT_KW[0] <= value <= SITE_LIMIT_KW[1]:
        low, high = SITE_LIMIT_KW
        raise argparse.ArgumentTypeError(f"must be a number of kW from {low} to {high}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="reproduce the paper's evaluation (Tables 2-3, Figures 13-16) and the site schedule",
        description=(
            "Book a seeded scenario through the booking service twice (the paper's original"
            " system and the optimized one), schedule the site, and write table2.csv,"
            " table3.csv, comparison.csv, hourly_demand.csv, schedule.csv, frontier.csv,"
            " figure13..16.png and frontier.png. Scratch databases only: your database is"
            " not touched."
        ),
    )
    parser.add_argument(
        "--bookings", type=whole_number(1, 20_000), default=500, help="requests (500)"
    )
    parser.add_argument("--seed", type=int, default=1, help="scenario seed (1)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    parser.add_argument("--connectors", type=whole_number(1, 64), default=4, help="connectors (4)")
    parser.add_argument(
        "--days", type=whole_number(1, 366), default=14, help="days in the period (14)"
    )
    parser.add_argument(
        "--site-limit", type=_kilowatts, default=None, metavar="KW", help="site power limit (none)"
    )
    parser.add_argument("--no-figures", action="store_true", help="write the CSVs only")
    parser.add_argument(
        "--no-frontier",
        action="store_true",
        help="schedule the site once, without the cost-peak frontier (frontier.csv)",
    )
    parser.set_defaults(handler=run_evaluate)


def _print_summary(report: EvaluationReport, out: Path, stream: TextIO) -> None:
    from evcms_desktop.evaluation.tables import PAPER_TABLE3

    stream.write("Table 3 (average cost per case, GBP)   paper          ours\n")
    for s in report.table3:
        paper = PAPER_TABLE3[s.case]
        ours = (
            f"{s.original:6.2f} -> {s.optimized:6.2f}"
            if s.original is not None and s.optimized is not None
            else "     (none)"
        )
        stream.write(
            f"  Case {s.case} {s.labels[0]:<8} {s.labels[1]:<13} n={s.booked:<4}"
            f" {paper[0]:6.2f} -> {paper[1]:6.2f}   {ours}\n"
        )
    stream.write(
        f"Costs over the {report.comparison.compared} bookings every system met in full\n"
        "System               total cost  peak kW   PAR  Peak On share  not met\n"
    )
    for system in report.comparison.systems:
        m = system.metrics
        stream.write(
            f"  {system.name:<19}{system.total_cost:>10.2f} {m.peak_kw:8.1f}"
            f" {m.peak_to_average:5.2f} {m.peak_on_share:14.1%} {system.unmet:8d}\n"
        )
    schedule = report.comparison.schedule
    stream.write(
        f"Site schedule ({report.comparison.placement} placement): made by {schedule.method}"
        f" in {schedule.seconds:.2f} s\n"
    )
    bound = schedule.bound
    if bound is not None and bound.cost is not None and schedule.gap is not None:
        stream.write(
            f"  bound: no schedule meeting every booking costs less than {bound.cost:.2f}"
            f" (gap {schedule.gap:.3%})\n"
        )
    elif bound is not None:
        stream.write(f"  bound: no schedule leaves less than {bound.unmet_kwh:.1f} kWh short\n")
    for unmet in schedule.unmet:
        stream.write(f"  TID {unmet.booking_id} not met: {unmet.reason}\n")
    if report.comparison.frontier:
        points = report.comparison.frontier
        stream.write("Cost-peak frontier (frontier.csv)\n")
        for point in points:
            b = point.schedule.bound
            beside = ""
            if b is not None and point.comparable_bound() is not None:
                beside = f"bound {b.cost:.2f}"
            elif b is not None and not point.must_be_short:  # else its label says the bound
                beside = f"bound {b.unmet_kwh:.1f} kWh short"
            what = "cost" if not point.short else "cost of what it delivers"
            line = f"  {point.label(points[0]):<48} {what} {point.cost:.2f}  {beside}"
            stream.write(line.rstrip() + "\n")
    stream.write(f"Written to {out}\n")


def run_evaluate(args: argparse.Namespace, config: AppConfig) -> int:
    """The `evaluate` command; `config` is unused: only scratch databases are written."""
    bar = ProgressBar()
    try:
        return _evaluate(args, bar)
    finally:
        bar.close()


def _evaluate(args: argparse.Namespace, bar: ProgressBar) -> int:
    bar.phase(f"loading: {args.bookings} requests over {args.days} days")
    from evcms_desktop.evaluation.report import evaluate, write_csvs
    from evcms_desktop.evaluation.runner import StationSetup
    from evcms_desktop.evaluation.scenario import ScenarioConfig, generate_scenario

    setup = StationSetup.with_connectors(args.connectors)
    scenario = generate_scenario(
        ScenarioConfig(
            bookings=args.bookings, seed=args.seed, connectors=args.connectors, days=args.days
        ),
        setup.tariff,
        setup.calendar,
    )

    def booked(done: int, total: int) -> None:
        """Each request is booked in the original system, then each in the optimized one."""
        each = total // 2
        if done <= each:
            bar.show("booking, original system", done, each)
        else:
            bar.show("booking, optimized system", done - each, each)

    store_log = logging.getLogger("evcms_desktop.store")
    level = store_log.level
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        store_log.setLevel(logging.WARNING)  # a line per scratch booking would bury the bar
    try:
        bar.phase(f"booking {len(scenario.requests)} requests in each system")
        report = evaluate(
            scenario,
            setup,
            site_limit_kw=args.site_limit,
            progress=booked,
            frontier=not args.no_frontier,
            schedule_progress=lambda done, total: bar.show(
                "site schedule" if args.no_frontier else "cost-peak frontier", done, total
            ),
            phase=bar.phase,
        )
    finally:
        store_log.setLevel(level)
    bar.phase("writing tables")
    written = write_csvs(report, args.out)
    bar.show("writing tables", len(written), len(written))
    if not args.no_figures:
        bar.phase("drawing figures")
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        from PySide6.QtWidgets import QApplication

        from evcms_desktop.ui.charts.evaluation_figures import render_figures

        _app = QApplication.instance() or QApplication([])
        figures = render_figures(report, args.out)
        bar.show("drawing figures", len(figures), len(figures))
    bar.close()
    _print_summary(report, args.out, sys.stdout)
    return 0
