"""The cost–peak frontier for the operator: each schedule, its bound, and a way to pick one.

A row reads "peak 80 kW for +£2.98": the site peak of a real schedule and what it costs
above the least-cost schedule. A row that leaves energy short has no extra cost (it
delivers less; that is no saving) and says how much is short. Below the least peak at
which every booking can be met, a row is marked (tinted, with a note above the table) and
says the least any schedule under its peak leaves short, the relaxation's bound: "peak
80 kW: at least 31.2 kWh short, this schedule 46.6 kWh short". Picking a row and "Use as
the site limit" emits the row's limit, after a confirmation when the row leaves energy
short; the main window hands it to the Settings view, which makes it the site power limit
that the live schedule keeps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal

from PySide6.QtCore import Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from evcms_desktop.schedule.optimal import FrontierPoint
from evcms_desktop.ui.charts.frontier import frontier_chart

HEADERS = [
    "Trade-off",
    "Site peak (kW)",
    "Cost (GBP)",
    "Energy short (kWh)",
    "Least short possible (kWh)",
    "Bound (GBP)",
    "Gap",
]
MUST_BE_SHORT = QColor("#fde2e0")  # the rows no schedule can meet every booking at
NOTE = (
    "Tinted rows are below the least peak at which any schedule meets every booking: each"
    " says the least any schedule under its peak leaves short (the relaxation's bound) and"
    " what this one leaves."
)


class FrontierView(QWidget):
    """The frontier as a table and a chart; emits (limit kW, label) for the chosen point."""

    limit_chosen = Signal(object, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.points: list[FrontierPoint] = []
        self.hint = QLabel(
            "Each row is a schedule of the same bookings under a site limit; the bound is the"
            " least any schedule under that limit could cost."
        )
        self.base_hint = self.hint.text()
        self.confirm_box: QMessageBox | None = None  # open while a short point is confirmed
        self.hint.setObjectName("hint")
        self.hint.setWordWrap(True)
        self.note = QLabel(NOTE)
        self.note.setObjectName("hint")
        self.note.setWordWrap(True)
        self.note.setVisible(False)
        self.table = QTableWidget(0, len(HEADERS))
        self.table.setHorizontalHeaderLabels(HEADERS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.use = QPushButton("Use as the site limit")
        self.use.setEnabled(False)
        self.use.clicked.connect(self.choose)
        self.chart_holder = QVBoxLayout()
        row = QHBoxLayout()
        row.addWidget(self.hint, 1)
        row.addWidget(self.use)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.note)
        layout.addWidget(self.table, 1)
        layout.addLayout(self.chart_holder, 2)
        self._chart: QWidget | None = None

    def show_points(self, points: Sequence[FrontierPoint]) -> None:
        self.points = list(points)
        self.table.setRowCount(len(self.points))
        base = self.points[0] if self.points else None
        for r, point in enumerate(self.points):
            gap = point.schedule.gap
            bound = point.schedule.bound
            cells = [
                point.label(base) if base else "",
                f"{point.peak_kw:.1f}",
                f"{point.cost:.2f}",
                f"{point.unmet_kwh:.1f}",
                "—" if bound is None else f"{point.least_short_kwh:.1f}",
                "—" if point.comparable_bound() is None else f"{point.comparable_bound():.2f}",
                "—" if gap is None or point.short else f"{gap:.2%}",
            ]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if point.must_be_short:
                    item.setBackground(MUST_BE_SHORT)
                    item.setToolTip(_why_short(point))
                self.table.setItem(r, c, item)
        self.note.setVisible(any(p.must_be_short for p in self.points))
        if self._chart is not None:
            self.chart_holder.removeWidget(self._chart)
            self._chart.deleteLater()
        self._chart = frontier_chart(self.points)
        self.chart_holder.addWidget(self._chart)
        self.use.setEnabled(False)

    def _selection_changed(self) -> None:
        point = self._selected()
        self.use.setEnabled(point is not None)
        if point is not None and point.short:
            forced = f"{_why_short(point)} " if point.must_be_short else ""
            self.hint.setText(
                f"{forced}This schedule leaves {point.unmet_kwh:.1f} kWh short for"
                f" {len(point.schedule.unmet)} booking(s): its cost is of less energy, not a"
                " saving. As the site limit, some cars would leave without their energy."
            )
        else:
            self.hint.setText(self.base_hint)

    def _selected(self) -> FrontierPoint | None:
        rows = {i.row() for i in self.table.selectedIndexes()}
        return self.points[rows.pop()] if len(rows) == 1 else None

    def choose(self) -> None:
        """The selected schedule's peak, rounded up to the next 0.1 kW, becomes the limit.

        A point that leaves energy short is asked about first (a dialog, not blocking).
        """
        point = self._selected()
        if point is None or not self.points:
            return
        if not point.short:
            self._emit(point)
            return
        forced = (
            f" (at least {point.least_short_kwh:.1f} kWh must be)" if point.must_be_short else ""
        )
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            "Use a limit that leaves energy short?",
            f"At {point.peak_kw:.1f} kW this schedule leaves {point.unmet_kwh:.1f} kWh short"
            f" for {len(point.schedule.unmet)} booking(s){forced}. Use it as the site limit"
            " anyway?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            self,
        )
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.finished.connect(lambda result: self._confirmed(box, point, result))
        self.confirm_box = box
        box.open()

    def _confirmed(self, box: QMessageBox, point: FrontierPoint, result: int) -> None:
        self.confirm_box = None
        box.deleteLater()
        if result == QMessageBox.StandardButton.Yes:
            self._emit(point)

    def _emit(self, point: FrontierPoint) -> None:
        limit = Decimal(math.ceil(point.peak_kw * 10 - 1e-6)) / 10
        self.limit_chosen.emit(limit, point.label(self.points[0]))


def _why_short(point: FrontierPoint) -> str:
    limit = point.peak_kw if point.limit_kw is None else point.limit_kw
    return (
        f"No schedule under {limit:.0f} kW meets every booking: at least"
        f" {point.least_short_kwh:.1f} kWh must be short (the relaxation's bound)."
    )
