"""The Analysis tab: the paper's evaluation and the site schedule, re-run from the console.

Runs go to a worker thread (QThreadPool) that waits on a child process doing the work
(evaluation.background): the runner rebinds the store process-wide, which the console's
own database must never see. The progress bar follows the child's reports, then turns
busy while the site schedule is solved; Cancel ends the child at once.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from PySide6.QtCore import QDate, QObject, QRunnable, QThreadPool, Signal
from PySide6.QtWidgets import (
    QDateEdit,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from evcms_desktop.evaluation.background import (
    EvaluationCancelled,
    EvaluationJob,
    bookings_asked_between,
    requests_from_bookings,
    run_in_child,
    scenario_config_for,
)
from evcms_desktop.evaluation.report import EvaluationReport
from evcms_desktop.evaluation.runner import StationSetup
from evcms_desktop.evaluation.scenario import (
    ScenarioConfig,
    generate_scenario,
    scenario_from_requests,
)
from evcms_desktop.evaluation.tables import CASES, PAPER_TABLE3
from evcms_desktop.store.models import Station
from evcms_desktop.store.stations import load_site
from evcms_desktop.ui.charts.evaluation_figures import FIGURES
from evcms_desktop.ui.formatting import bound_dates, plural
from evcms_desktop.ui.frontier_view import FrontierView

log = logging.getLogger(__name__)

EXPLANATION = (
    "How much drivers pay, with and without EVCMS's plans. <b>Original</b>: every request"
    " booked as asked, at the full Eq. (8) price. <b>Optimized</b>: the four plans are"
    " offered and the driver takes the cheapest. <b>Paper</b>: the published figures"
    " (Table 3), <b>Here</b>: this run. Cases: 1 Peak On with the slot free, 2 Peak On"
    " with it taken, 3 Peak Off free, 4 Peak Off taken. Prices in GBP per booking."
)


class _Signals(QObject):
    progress = Signal(int, int)
    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal()


class _EvaluationTask(QRunnable):
    """One run on the pool's thread. Its signals belong to the tab (`owner`), so they outlive
    the runnable, which the pool deletes when `run` returns, until their queued deliveries
    are made; the tab releases them with deleteLater once the run has ended."""

    def __init__(self, job: EvaluationJob, owner: QObject) -> None:
        super().__init__()
        self.job = job
        self.signals = _Signals(owner)
        self.cancel = threading.Event()

    def run(self) -> None:
        try:
            report = run_in_child(
                self.job, self.signals.progress.emit, cancelled=self.cancel.is_set
            )
        except EvaluationCancelled:
            log.info("Evaluation cancelled")
            self.signals.cancelled.emit()
            return
        except Exception as exc:
            log.exception("Evaluation failed")
            self.signals.failed.emit(str(exc))
            return
        self.signals.finished.emit(report)


def _money(value: Decimal | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _fill(table: QTableWidget, rows: list[list[str]]) -> None:
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            table.setItem(r, c, QTableWidgetItem(text))
    table.resizeColumnsToContents()


def _table(headers: list[str]) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    table.setWordWrap(False)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
    table.verticalHeader().setVisible(False)
    return table


class AnalysisTab(QWidget):
    """Table 3, the comparison with the paper and the site schedule, and Figures 13 to 16."""

    report_ready = Signal(object)
    site_limit_chosen = Signal(object, str)  # kW (Decimal) and the frontier point's label

    def __init__(self, station: Station, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.station = station
        self.report: EvaluationReport | None = None
        self._task: _EvaluationTask | None = None
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)

        self.bookings = QSpinBox(minimum=1, maximum=20_000, value=500)
        self.seed = QSpinBox(minimum=0, maximum=1_000_000, value=1)
        self.connectors = QSpinBox(minimum=1, maximum=500, value=4)
        self.days = QSpinBox(minimum=1, maximum=366, value=14)
        self.site_limit = QDoubleSpinBox(minimum=0, maximum=100_000, decimals=1, suffix=" kW")
        self.site_limit.setSpecialValueText("none")
        if station.site_power_limit_kw is not None:
            self.site_limit.setValue(float(station.site_power_limit_kw))
        self.run_scenario = QPushButton("Run scenario")
        self.run_scenario.setToolTip(
            "Book a generated day of requests in the original and the optimized system."
        )
        self.run_scenario.clicked.connect(self.start_scenario)

        today = QDate.currentDate()
        self.period_from = QDateEdit(today.addDays(-30), calendarPopup=True)
        self.period_to = QDateEdit(today, calendarPopup=True)
        bound_dates(self.period_from, self.period_to)
        self.run_real = QPushButton("Run on these bookings")
        self.run_real.setToolTip(
            "Book this station's requests of the period again in both systems and compare."
        )
        self.run_real.clicked.connect(self.start_real)

        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status = QLabel("Run the scenario to see the evaluation.")
        self.status.setWordWrap(True)
        self.explanation = QLabel(EXPLANATION)
        self.explanation.setObjectName("hint")
        self.explanation.setWordWrap(True)

        self.table3 = _table(
            ["Case", "Peak", "Slot asked", "Bookings", "Paper: original", "Paper: optimized",
             "Here: original", "Here: optimized"]
        )  # fmt: skip
        self.comparison = _table(["", "Paper", "Original", "Optimized (greedy)", "Site schedule"])
        self.results = QTabWidget()
        self.results.addTab(self.table3, "Table 3")
        self.results.addTab(self.comparison, "Comparison")
        self.frontier = FrontierView()
        self.frontier.limit_chosen.connect(self.site_limit_chosen)
        self.results.addTab(self.frontier, "Cost–peak frontier")
        self._figure_tabs: list[QWidget] = []

        scenario_box = QGroupBox("Scenario")
        form = QFormLayout(scenario_box)
        form.addRow("Bookings", self.bookings)
        form.addRow("Seed", self.seed)
        form.addRow("Connectors", self.connectors)
        form.addRow("Days", self.days)
        form.addRow("Site limit", self.site_limit)
        form.addRow(self.run_scenario)
        real_box = QGroupBox("This station's bookings")
        real_form = QFormLayout(real_box)
        real_form.addRow("From", self.period_from)
        real_form.addRow("To (inclusive)", self.period_to)
        real_form.addRow(self.run_real)

        controls = QHBoxLayout()
        controls.addWidget(scenario_box)
        controls.addWidget(real_box)
        controls.addStretch(1)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(self.explanation)
        layout.addLayout(progress_row)
        layout.addWidget(self.status)
        layout.addWidget(self.results, 1)

    @property
    def running(self) -> bool:
        return self._task is not None

    def _limit(self) -> Decimal | None:
        value = self.site_limit.value()
        return Decimal(f"{value:.1f}") if value > 0 else None

    def start_scenario(self) -> None:
        setup = StationSetup.with_connectors(self.connectors.value())
        config = ScenarioConfig(
            bookings=self.bookings.value(),
            seed=self.seed.value(),
            connectors=self.connectors.value(),
            days=self.days.value(),
        )
        scenario = generate_scenario(config, setup.tariff, setup.calendar)
        self._start(EvaluationJob(scenario, setup, self._limit()), f"{config.bookings} bookings")

    def start_real(self) -> None:
        site = load_site(self.station)
        if not site.connectors:
            self.status.setText(f"{self.station.name} has no connectors to evaluate.")
            return
        tz = site.calendar.tz
        first = datetime.combine(self.period_from.date().toPython(), time(0), tz)
        last = datetime.combine(self.period_to.date().toPython(), time(0), tz)
        start, end = first.astimezone(UTC), (last + timedelta(days=1)).astimezone(UTC)
        requests = requests_from_bookings(bookings_asked_between(self.station, start, end))
        if not requests:
            self.status.setText("No bookings were asked for in that period.")
            return
        config = scenario_config_for(requests, len(site.connectors))
        scenario = scenario_from_requests(config, requests)
        label = f"{len(requests)} real bookings"
        self._start(EvaluationJob(scenario, StationSetup.from_site(site), self._limit()), label)

    def _start(self, job: EvaluationJob, label: str) -> None:
        if self.running:
            return
        self.run_scenario.setEnabled(False)
        self.run_real.setEnabled(False)
        self.cancel_button.setEnabled(True)
        total = 2 * len(job.scenario.requests)
        self.progress.setRange(0, total)
        self.progress.setValue(0)
        self.status.setText(f"Booking {label} in the original and the optimized system…")
        task = _EvaluationTask(job, self)
        task.signals.progress.connect(self._on_progress)
        task.signals.finished.connect(self._on_finished)
        task.signals.failed.connect(self._on_failed)
        task.signals.cancelled.connect(self._on_cancelled)
        self._task = task
        self._pool.start(task)

    def cancel(self) -> None:
        """Stop the running evaluation; what was shown before stays."""
        if self._task is not None:
            self._task.cancel.set()
            self.cancel_button.setEnabled(False)
            self.status.setText("Cancelling…")

    def _on_progress(self, done: int, total: int) -> None:
        if done >= total:  # every request booked; the schedule solve reports nothing
            self.progress.setRange(0, 0)
            self.status.setText("Solving the site schedule (and drawing the figures)…")
            return
        self.progress.setRange(0, total)
        self.progress.setValue(done)

    def _release_task(self) -> None:
        if self._task is not None:
            self._task.signals.deleteLater()
            self._task = None

    def _done(self) -> None:
        self._release_task()
        self.run_scenario.setEnabled(True)
        self.run_real.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.run_scenario.setText("Re-run scenario")
        self.run_real.setText("Re-run on these bookings")

    def _on_cancelled(self) -> None:
        self._release_task()
        self.run_scenario.setEnabled(True)
        self.run_real.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status.setText("Cancelled; nothing was kept from that run.")

    def _on_failed(self, message: str) -> None:
        self._done()
        self.status.setText(f"The evaluation failed: {message.splitlines()[0]}")

    def _on_finished(self, report: EvaluationReport) -> None:
        self._done()
        self.show_report(report)
        self.report_ready.emit(report)

    def show_report(self, report: EvaluationReport) -> None:
        self.report = report
        booked = 2 * len(report.run.rows)
        self.progress.setRange(0, booked)
        self.progress.setValue(booked)
        _fill(
            self.table3,
            [
                [
                    f"Case {s.case}",
                    *s.labels,
                    str(s.booked),
                    *(_money(v) for v in PAPER_TABLE3[s.case]),
                    _money(s.original),
                    _money(s.optimized),
                ]
                for s in report.table3
            ],
        )
        c = report.comparison
        systems = c.systems
        rows = [
            [
                f"Total cost of the {c.compared} bookings all met (GBP)",
                "—",
                *(_money(s.total_cost) for s in systems),
            ]
        ]
        rows += [
            [
                f"Case {case} average (GBP; paper: optimized)",
                _money(PAPER_TABLE3[case][1]),
                *(_money(s.case_costs[case]) for s in systems),
            ]
            for case in CASES
        ]
        rows += [
            ["Site peak (kW)", "—", *(f"{s.metrics.peak_kw:.1f}" for s in systems)],
            ["Peak-to-average", "—", *(f"{s.metrics.peak_to_average:.2f}" for s in systems)],
            ["Energy in Peak On", "—", *(f"{s.metrics.peak_on_share:.1%}" for s in systems)],
            ["Bookings not met", "—", *(str(s.unmet) for s in systems)],
        ]
        _fill(self.comparison, rows)
        self.frontier.show_points(c.frontier)
        for widget in self._figure_tabs:
            self.results.removeTab(self.results.indexOf(widget))
            widget.deleteLater()
        self._figure_tabs = []
        for name, build in FIGURES.items():
            widget = build(report)
            self._figure_tabs.append(widget)
            self.results.addTab(widget, name.removesuffix(".png").replace("figure", "Figure "))
        limit = f", site limit {c.site_limit_kw} kW" if c.site_limit_kw else ""
        self.status.setText(
            f"{plural(len(report.run.rows), 'request')} on"
            f" {len(report.run.setup.connector_powers_kw)}"
            f" connectors{limit}; the site schedule ({c.placement} placement,"
            f" {len(c.schedule.unmet)} not met) was made by {c.schedule.method}"
            f" in {c.schedule.seconds:.2f} s."
        )
