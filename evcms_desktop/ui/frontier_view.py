"""The cost–peak frontier for the operator: each schedule, its bound, and a way to pick one.

A row reads "peak 80 kW for +£2.98": the site peak of a real schedule and what it costs
above the least-cost schedule. Picking a row and "Use as the site limit" emits the row's
limit; the main window hands it to the Settings view, which makes it the site power limit
that the live schedule keeps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from evcms_desktop.schedule.optimal import FrontierPoint
from evcms_desktop.ui.charts.frontier import frontier_chart

HEADERS = ["Trade-off", "Site peak (kW)", "Cost (GBP)", "Energy short (kWh)", "Bound (GBP)", "Gap"]


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
        self.hint.setObjectName("hint")
        self.hint.setWordWrap(True)
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
        layout.addWidget(self.table, 1)
        layout.addLayout(self.chart_holder, 2)
        self._chart: QWidget | None = None

    def show_points(self, points: Sequence[FrontierPoint]) -> None:
        self.points = list(points)
        self.table.setRowCount(len(self.points))
        base = self.points[0] if self.points else None
        for r, point in enumerate(self.points):
            bound = point.schedule.bound
            gap = point.schedule.gap
            cells = [
                point.label(base) if base else "",
                f"{point.peak_kw:.1f}",
                f"{point.cost:.2f}",
                f"{point.unmet_kwh:.1f}",
                f"{bound.cost:.2f}" if bound and bound.cost is not None else "—",
                "—" if gap is None else f"{gap:.2%}",
            ]
            for c, text in enumerate(cells):
                self.table.setItem(r, c, QTableWidgetItem(text))
        if self._chart is not None:
            self.chart_holder.removeWidget(self._chart)
            self._chart.deleteLater()
        self._chart = frontier_chart(self.points)
        self.chart_holder.addWidget(self._chart)
        self.use.setEnabled(False)

    def _selection_changed(self) -> None:
        self.use.setEnabled(self._selected() is not None)

    def _selected(self) -> FrontierPoint | None:
        rows = {i.row() for i in self.table.selectedIndexes()}
        return self.points[rows.pop()] if len(rows) == 1 else None

    def choose(self) -> None:
        """The selected schedule's peak, rounded up to the next 0.1 kW, becomes the limit."""
        point = self._selected()
        if point is None or not self.points:
            return
        limit = Decimal(math.ceil(point.peak_kw * 10 - 1e-6)) / 10
        self.limit_chosen.emit(limit, point.label(self.points[0]))
