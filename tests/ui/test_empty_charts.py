"""An empty chart shows a sensible axis and says it has nothing yet: the live meter chart
labelled its time axis with the epoch's first second ("00.100 ...") until its first
redraw, and the frontier a 0 to 1 grid of nothing."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

import pyqtgraph as pg
from PySide6.QtGui import QImage, QPainter

from evcms_desktop.csms.events import CsmsEvent, EventKind
from evcms_desktop.store.models import Station
from evcms_desktop.ui.charts.demand import DemandView
from evcms_desktop.ui.charts.frontier import frontier_chart
from evcms_desktop.ui.charts.meter import LiveMeterChart
from tests.conftest import NOW


def _labels(plot: pg.PlotItem) -> list[str]:
    """The labels its bottom axis draws, as it draws them."""
    image = QImage(800, 100, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        specs = plot.getAxis("bottom").generateDrawSpecs(painter)
    finally:
        painter.end()
    return [text for _, _, text in specs[2]] if specs else []


def test_an_empty_meter_chart_shows_the_last_minutes_and_says_it_has_nothing(qtbot, db):
    chart = LiveMeterChart(ZoneInfo("Europe/London"), clock=lambda: NOW)
    qtbot.addWidget(chart)
    chart.resize(700, 400)
    chart.show()
    labels = _labels(chart.soc)
    assert labels and all(re.fullmatch(r"\d\d:\d\d", label) for label in labels), labels
    low, high = chart.soc.vb.viewRange()[0]
    assert low <= NOW.timestamp() <= high + 60  # around now on the station's clock (UTC)
    assert chart.hint.isVisible() and chart.hint.text == "No connector selected"

    chart.set_connector(("CP-A", 1), "CP-A #1")
    assert chart.hint.isVisible() and chart.hint.text == "No meter values yet"
    data = {"power_kw": 11.0, "soc": 40.0}
    chart.on_meter(CsmsEvent(EventKind.METER_VALUES, "", "CP-A", 1, data, NOW))
    chart.redraw()
    assert not chart.hint.isVisible()


def test_an_empty_frontier_has_no_numbers_and_says_so():
    chart = frontier_chart([])
    plot = chart.ci.getItem(0, 0)
    assert _labels(plot) == []
    assert chart.hint.isVisible() and chart.hint.text == "No schedules yet"


def test_a_day_without_bookings_says_so_in_its_charts(qtbot, db, station: Station):
    view = DemandView(station, clock=lambda: NOW)
    qtbot.addWidget(view)
    assert [h.isVisible() for h in view.hints] == [True, True]
    assert {h.text for h in view.hints} == {"No bookings on this day"}
