"""The cost–peak frontier as a chart: extra cost against site peak, each point a schedule.

Beside each schedule its bound: the relaxation's least cost under the same limit, so the
distance between a point and its bound is all any schedule could still gain. A schedule
that leaves energy short has no place on the cost axis: it is in a second plot below, of
energy short by site peak, beside its bound (the least any schedule under its limit
leaves short), and a dashed line at its peak in the first.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from evcms_desktop.schedule.optimal import FrontierPoint
from evcms_desktop.ui.charts.hints import EmptyHint

SCHEDULE = "#7d3c98"
BOUND = "#7f8c8d"
SHORT = "#c0392b"


def frontier_chart(points: Sequence[FrontierPoint], title: str = "") -> pg.GraphicsLayoutWidget:
    """Extra cost (GBP, against the least-cost point) by site peak (kW)."""
    widget = pg.GraphicsLayoutWidget()
    widget.setBackground("w")
    if title:
        widget.addLabel(f"<b>{title}</b>", color="k", size="12pt")
        widget.nextRow()
    plot = widget.addPlot()
    plot.showGrid(x=True, y=True, alpha=0.25)
    plot.setLabel("bottom", "site peak (kW)", color="k")
    plot.setLabel("left", "extra cost (GBP)", color="k")
    plot.addLegend(offset=(-10, 10), labelTextColor="k")
    for axis in ("bottom", "left"):
        plot.getAxis(axis).setTextPen("k")
    if not points:
        for axis in ("bottom", "left"):
            plot.getAxis(axis).setStyle(showValues=False)  # no numbers for what is not there
        plot.showGrid(x=False, y=False)
        widget.hint = EmptyHint(plot, "No schedules yet")  # type: ignore[attr-defined]
        return widget
    base = float(points[0].cost)
    met = [p for p in points if not p.short]
    if met:
        plot.plot(
            np.array([p.peak_kw for p in met]),
            np.array([float(p.cost) - base for p in met]),
            pen=pg.mkPen(SCHEDULE, width=2),
            symbol="o",
            symbolBrush=SCHEDULE,
            name="schedule (every booking met)",
        )
    bounded = [p for p in met if p.schedule.bound and p.schedule.bound.cost is not None]
    if bounded:
        plot.plot(
            np.array([p.peak_kw for p in bounded]),
            np.array([float(p.schedule.bound.cost) - base for p in bounded]),  # type: ignore[union-attr]
            pen=None,
            symbol="t",
            symbolBrush=BOUND,
            name="bound (no schedule can cost less)",
        )
    short = [p for p in points if p.short]
    if short:
        # Off the cost axis: a schedule that delivers less is cheaper without saving anything.
        pen = pg.mkPen(SHORT, width=1.5, style=Qt.PenStyle.DashLine)
        plot.plot([], [], pen=pen, name="energy short (below): no extra cost shown")
        for p in short:
            plot.addItem(pg.InfiniteLine(pos=p.peak_kw, angle=90, pen=pen))
        widget.nextRow()
        below = widget.addPlot()
        _short_plot(below, short)
        plot.setXLink(below)
    return widget


def _short_plot(plot: pg.PlotItem, short: Sequence[FrontierPoint]) -> None:
    """Energy short by site peak: each short schedule, and the least any could leave."""
    plot.showGrid(x=True, y=True, alpha=0.25)
    plot.setLabel("bottom", "site peak (kW)", color="k")
    plot.setLabel("left", "energy short (kWh)", color="k")
    plot.addLegend(offset=(-10, 10), labelTextColor="k")
    for axis in ("bottom", "left"):
        plot.getAxis(axis).setTextPen("k")
    peaks = np.array([p.peak_kw for p in short])
    plot.plot(
        peaks,
        np.array([p.unmet_kwh for p in short]),
        pen=pg.mkPen(SHORT, width=2),
        symbol="o",
        symbolBrush=SHORT,
        name="schedule (energy short)",
    )
    plot.plot(
        peaks,
        np.array([p.least_short_kwh for p in short]),
        pen=None,
        symbol="t",
        symbolBrush=BOUND,
        name="bound (no schedule leaves less short)",
    )
    top = max(p.unmet_kwh for p in short)
    plot.setYRange(0, top * 1.25 if top > 0 else 1.0)  # room for the labels above the points
    for p in short:
        text = pg.TextItem(f"{p.unmet_kwh:.0f} (≥ {p.least_short_kwh:.0f})", color=SHORT)
        text.setAnchor((0.5, 1.2))
        text.setPos(p.peak_kw, p.unmet_kwh)
        plot.addItem(text)
