"""Charging demand (sessions per hour) and power demand (kWh per hour) of one day.

The paper's Figures 15 and 16 on live data: each hour has two bars, the bookings as
asked (light) and as booked after optimisation (dark); Peak On hours are orange, Peak Off
hours teal.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QDateEdit, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from evcms_desktop.store.models import Station, utcnow
from evcms_desktop.store.stations import station_calendar
from evcms_desktop.ui.charts.hints import EmptyHint
from evcms_desktop.ui.formatting import bound_dates, local_qdate, plural
from evcms_desktop.ui.stats import HourlyDemand, hourly_demand
from evcms_desktop.ui.theme import PEAK_OFF, PEAK_OFF_LIGHT, PEAK_ON, PEAK_ON_LIGHT

WIDTH = 0.38


def _legend() -> QLabel:
    swatch = '<span style="color:{}; font-size:14pt">■</span> {}'
    items = [
        (PEAK_ON_LIGHT, "Peak On, as asked"),
        (PEAK_ON, "Peak On, as booked"),
        (PEAK_OFF_LIGHT, "Peak Off, as asked"),
        (PEAK_OFF, "Peak Off, as booked"),
    ]
    return QLabel("&nbsp;&nbsp;&nbsp;".join(swatch.format(c, t) for c, t in items))


class DemandView(QWidget):
    def __init__(
        self,
        station: Station,
        clock: Callable[[], datetime] = utcnow,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.station = station
        self.demand: HourlyDemand | None = None
        self.day = QDateEdit(local_qdate(clock(), station_calendar(station).tz), calendarPopup=True)
        self.day.setDisplayFormat("ddd d MMM yyyy")
        bound_dates(self.day)
        self.day.dateChanged.connect(self.refresh)
        previous, following = QPushButton("◀"), QPushButton("▶")
        previous.setFixedWidth(36)
        following.setFixedWidth(36)
        previous.clicked.connect(lambda: self.day.setDate(self.day.date().addDays(-1)))
        following.clicked.connect(lambda: self.day.setDate(self.day.date().addDays(1)))
        self.summary = QLabel()
        self.summary.setWordWrap(True)

        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setBackground("w")
        self.sessions_plot = self.plots.addPlot(row=0, col=0, title="Charging demand")
        self.energy_plot = self.plots.addPlot(row=1, col=0, title="Power demand")
        self.sessions_plot.setLabel("left", "sessions starting")
        self.energy_plot.setLabel("left", "kWh")
        for plot in (self.sessions_plot, self.energy_plot):
            plot.showGrid(y=True, alpha=0.2)
            plot.setMouseEnabled(x=False, y=False)
            plot.hideButtons()
            plot.getAxis("bottom").setTicks(
                [[(h, f"{h:02d}") for h in range(0, 24, 2)], [(h, "") for h in range(24)]]
            )
            plot.setLabel("bottom", "hour of the day (local time)")
        self.hints = [EmptyHint(p, "No bookings on this day") for p in self._plots()]

        top = QHBoxLayout()
        top.addWidget(QLabel("Day"))
        top.addWidget(previous)
        top.addWidget(self.day)
        top.addWidget(following)
        top.addSpacing(16)
        top.addWidget(_legend())
        top.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.summary)
        layout.addWidget(self.plots, 1)
        self.refresh()

    def _plots(self) -> tuple[pg.PlotItem, pg.PlotItem]:
        return self.sessions_plot, self.energy_plot

    def refresh(self) -> None:
        self.demand = demand = hourly_demand(self.station, self.day.date().toPython())
        x = np.arange(demand.hours)
        empty = not any(demand.sessions_asked) and not any(demand.sessions_optimized)
        for plot, hint, asked, booked in (
            (self.sessions_plot, self.hints[0], demand.sessions_asked, demand.sessions_optimized),
            (self.energy_plot, self.hints[1], demand.energy_asked, demand.energy_optimized),
        ):
            plot.clear()
            plot.addItem(hint.item, ignoreBounds=True)
            hint.show(empty)
            light = [PEAK_ON_LIGHT if on else PEAK_OFF_LIGHT for on in demand.peak_on]
            dark = [PEAK_ON if on else PEAK_OFF for on in demand.peak_on]
            plot.addItem(
                pg.BarGraphItem(x=x - WIDTH / 2, height=asked, width=WIDTH, brushes=light, pen=None)
            )
            plot.addItem(
                pg.BarGraphItem(x=x + WIDTH / 2, height=booked, width=WIDTH, brushes=dark, pen=None)
            )
            plot.setXRange(-0.6, demand.hours - 0.4, padding=0)
            plot.setYRange(0, max([*asked, *booked, 1]) * 1.15, padding=0)
        most = max([*demand.sessions_asked, *demand.sessions_optimized, 1])
        step = max(1, round(most / 5))
        self.sessions_plot.getAxis("left").setTickSpacing(step, step)
        self.summary.setText(self._summary(demand))

    @staticmethod
    def _summary(demand: HourlyDemand) -> str:
        asked = demand.peak_on_share(demand.energy_asked)
        booked = demand.peak_on_share(demand.energy_optimized)
        if asked is None:
            return "No bookings on this day."
        total = sum(demand.energy_optimized)
        return (
            f"{plural(sum(demand.sessions_optimized), 'session')}, {total:.1f} kWh. "
            f"Share of energy in Peak On: {asked:.0%} as asked, {booked:.0%} as booked."
        )
