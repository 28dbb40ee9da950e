"""Figures 13 to 16 of the paper, drawn with pyqtgraph from an EvaluationReport.

The same widgets are shown live in the Analysis tab and exported to PNG (offscreen works:
QT_QPA_PLATFORM=offscreen).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from pyqtgraph.exporters import ImageExporter
from PySide6.QtWidgets import QApplication

from evcms_desktop.evaluation.report import CaseHours, EvaluationReport
from evcms_desktop.evaluation.tables import CASE_LABELS, CASES
from evcms_desktop.ui.charts.frontier import frontier_chart

HOURS = np.arange(24)
ORIGINAL = "#c0392b"
OPTIMIZED = "#2471a3"
SCHEDULED = "#7d3c98"
PEAK_ON = "#d62728"
PEAK_OFF = "#2ca02c"
PROFIT = "#f39c12"


def _layout(title: str) -> pg.GraphicsLayoutWidget:
    widget = pg.GraphicsLayoutWidget()
    widget.setBackground("w")
    widget.addLabel(f"<b>{title}</b>", colspan=2, color="k", size="12pt")
    widget.nextRow()
    return widget


def _plot(widget: pg.GraphicsLayoutWidget, title: str, y_label: str) -> pg.PlotItem:
    plot = widget.addPlot(title=f"<span style='color:black'>{title}</span>")
    plot.showGrid(x=True, y=True, alpha=0.25)
    plot.setLabel("bottom", "hour of day", color="k")
    plot.setLabel("left", y_label, color="k")
    for axis in ("bottom", "left"):
        plot.getAxis(axis).setPen("k")
        plot.getAxis(axis).setTextPen("k")
    plot.setXRange(-0.5, 23.5, padding=0)
    legend = plot.addLegend(offset=(5, 5), labelTextColor="k", brush=(255, 255, 255, 200))
    legend.setParentItem(plot.vb)
    return plot


def _floats(values: Sequence[object]) -> np.ndarray:
    return np.array([float(v) for v in values])  # type: ignore[arg-type]


def _case_title(case: int) -> str:
    peak, availability = CASE_LABELS[case]
    return f"Case {case}: {peak}, {availability}"


def _per_case(
    title: str,
    y_label: str,
    draw: Callable[[pg.PlotItem, int], None],
) -> pg.GraphicsLayoutWidget:
    widget = _layout(title)
    for i, case in enumerate(CASES):
        plot = _plot(widget, _case_title(case), y_label)
        draw(plot, case)
        if i % 2:
            widget.nextRow()
    return widget


def figure13(report: EvaluationReport) -> pg.GraphicsLayoutWidget:
    original, optimized = report.cost_by_hour()

    def draw(plot: pg.PlotItem, case: int) -> None:
        for series, name, color in (
            (original, "Original", ORIGINAL),
            (optimized, "Optimized", OPTIMIZED),
        ):
            plot.plot(
                HOURS,
                _floats(series.values[case]),
                pen=pg.mkPen(color, width=2),
                symbol="o",
                symbolSize=5,
                symbolBrush=color,
                name=name,
            )

    return _per_case("Figure 13. Total charging cost per case (GBP)", "cost (GBP)", draw)


def _bars(plot: pg.PlotItem, series: Sequence[tuple[CaseHours, str, str]], case: int) -> None:
    width = 0.8 / len(series)
    for j, (data, name, color) in enumerate(series):
        x = HOURS - 0.4 + width * (j + 0.5)
        plot.addItem(
            pg.BarGraphItem(
                x=x, height=_floats(data.values[case]), width=width, brush=color, name=name
            )
        )


def figure14(report: EvaluationReport) -> pg.GraphicsLayoutWidget:
    discount, profit = report.discount_and_profit()
    return _per_case(
        "Figure 14. Discount and profit per case (GBP)",
        "GBP",
        lambda plot, case: _bars(
            plot, ((discount, "Discount", OPTIMIZED), (profit, "Profit", PROFIT)), case
        ),
    )


def _lines(plot: pg.PlotItem, series: Sequence[tuple[np.ndarray, str, str, bool]]) -> None:
    for values, name, color, dashed in series:
        pen = pg.mkPen(color, width=2, style=pg.QtCore.Qt.PenStyle.DashLine if dashed else None)
        plot.plot(HOURS, values, pen=pen, symbol="o", symbolSize=4, symbolBrush=color, name=name)


def figure15(report: EvaluationReport) -> pg.GraphicsLayoutWidget:
    c = report.comparison
    widget = _layout("Figure 15. Charging and power demand per hour, before and after")
    _lines(
        _plot(widget, "Charging demand", "sessions charging"),
        (
            (c.original.hourly.sessions, "Before (original)", ORIGINAL, False),
            (c.optimized.hourly.sessions, "After (optimized)", OPTIMIZED, False),
            (c.scheduled.hourly.sessions, "Site schedule", SCHEDULED, True),
        ),
    )
    _lines(
        _plot(widget, "Power demand", "energy drawn (kWh)"),
        (
            (c.original.hourly.energy_kwh, "Before (original)", ORIGINAL, False),
            (c.optimized.hourly.energy_kwh, "After (optimized)", OPTIMIZED, False),
            (c.scheduled.hourly.energy_kwh, "Site schedule", SCHEDULED, True),
        ),
    )
    return widget


def _stacked(plot: pg.PlotItem, off: np.ndarray, on: np.ndarray) -> None:
    plot.addItem(pg.BarGraphItem(x=HOURS, height=off, width=0.8, brush=PEAK_OFF, name="Peak Off"))
    plot.addItem(
        pg.BarGraphItem(x=HOURS, y0=off, height=on, width=0.8, brush=PEAK_ON, name="Peak On")
    )


def figure16(report: EvaluationReport) -> pg.GraphicsLayoutWidget:
    after = report.comparison.optimized.hourly
    widget = _layout("Figure 16. Demand after optimization, Peak Off and Peak On")
    _stacked(
        _plot(widget, "Charging demand", "sessions charging"),
        after.sessions_peak_off,
        after.sessions_peak_on,
    )
    _stacked(
        _plot(widget, "Power demand", "energy drawn (kWh)"),
        after.energy_peak_off_kwh,
        after.energy_peak_on_kwh,
    )
    return widget


def figure_frontier(report: EvaluationReport) -> pg.GraphicsLayoutWidget:
    c = report.comparison
    connectors = len(report.run.connector_ids)
    limit = f", site limit {c.site_limit_kw} kW" if c.site_limit_kw else ""
    return frontier_chart(
        c.frontier, f"Site schedule: cost against peak ({connectors} connectors{limit})"
    )


FIGURES: dict[str, Callable[[EvaluationReport], pg.GraphicsLayoutWidget]] = {
    "figure13.png": figure13,
    "figure14.png": figure14,
    "figure15.png": figure15,
    "figure16.png": figure16,
}


def export_png(widget: pg.GraphicsLayoutWidget, path: Path, size: tuple[int, int]) -> None:
    widget.resize(*size)
    widget.ci.setGeometry(0, 0, *size)
    QApplication.processEvents()
    exporter = ImageExporter(widget.scene())
    exporter.parameters()["width"] = size[0]
    exporter.export(str(path))


def render_figures(
    report: EvaluationReport, out: Path, size: tuple[int, int] = (1400, 900)
) -> list[Path]:
    """Write Figures 13 to 16 (and the frontier, when there is one) as PNGs.

    Needs a QApplication (an offscreen one will do).
    """
    out.mkdir(parents=True, exist_ok=True)
    figures = dict(FIGURES)
    if report.comparison.frontier:
        figures["frontier.png"] = figure_frontier
    written = []
    for name, build in figures.items():
        widget = build(report)
        path = out / name
        export_png(widget, path, size)
        widget.close()
        written.append(path)
    return written
