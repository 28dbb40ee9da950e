"""Power (kW) and SoC (%) of one connector against local time, scrolling.

Samples of every connector are kept in small ring buffers as they arrive; the chart
redraws the selected connector's at most once a second, so a sample a second from each
of many chargers costs one redraw.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from evcms_desktop.csms.events import CsmsEvent
from evcms_desktop.store.models import utcnow
from evcms_desktop.store.sessions import stored_samples
from evcms_desktop.ui.charts.hints import EmptyHint
from evcms_desktop.ui.theme import POWER_PEN, SOC_PEN

Key = tuple[str, int]
WINDOW = timedelta(minutes=15)
MIN_SPAN = timedelta(minutes=1)
MAX_SAMPLES = 3600
IDLE_TOP_KW = 7.4  # the power axis of an empty chart: a single-phase wallbox's


class MeterHistory:
    """Recent (time, kW, SoC) samples per connector."""

    def __init__(self) -> None:
        self._samples: dict[Key, deque[tuple[float, float, float]]] = {}

    def add(self, key: Key, at: datetime, power_kw: float | None, soc: float | None) -> None:
        buffer = self._samples.setdefault(key, deque(maxlen=MAX_SAMPLES))
        buffer.append(
            (
                at.timestamp(),
                np.nan if power_kw is None else power_kw,
                np.nan if soc is None else soc,
            )
        )

    def replace(self, key: Key, samples: list[tuple[float, float, float]]) -> None:
        self._samples[key] = deque(samples, maxlen=MAX_SAMPLES)

    def has(self, key: Key) -> bool:
        return bool(self._samples.get(key))

    def arrays(self, key: Key) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        samples = self._samples.get(key)
        if not samples:
            empty = np.empty(0)
            return empty, empty, empty
        data = np.asarray(samples, dtype=float)
        return data[:, 0], data[:, 1], data[:, 2]


class LiveMeterChart(QWidget):
    REDRAW_MS = 1000

    def __init__(self, tz: ZoneInfo, clock=utcnow, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tz = tz
        self.clock = clock
        self.history = MeterHistory()
        self.key: Key | None = None
        self._dirty = False
        self._first_sample: float | None = None

        pg.setConfigOptions(antialias=True)
        self.title = QLabel("Select a connector to see its power and state of charge.")
        self.title.setObjectName("sectionTitle")
        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setBackground("w")
        self.power = self.plots.addPlot(row=0, col=0, axisItems={"bottom": self._axis()})
        self.soc = self.plots.addPlot(row=1, col=0, axisItems={"bottom": self._axis()})
        self.power.setLabel("left", "Power", units="kW")
        self.soc.setLabel("left", "SoC", units="%")
        self.power.getAxis("left").enableAutoSIPrefix(False)
        self.soc.getAxis("left").enableAutoSIPrefix(False)
        self.soc.setYRange(0, 100)
        self.soc.setXLink(self.power)
        self.power.hideAxis("bottom")
        for plot in (self.power, self.soc):
            plot.getAxis("left").setWidth(56)
            plot.showGrid(x=True, y=True, alpha=0.2)
            plot.setMouseEnabled(x=False, y=False)
            plot.hideButtons()
        self.power_curve = self.power.plot(pen=pg.mkPen(POWER_PEN, width=2))
        self.soc_curve = self.soc.plot(pen=pg.mkPen(SOC_PEN, width=2))
        self.hint = EmptyHint(self.power, "No connector selected")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.plots, 1)
        self._timer = QTimer(self, interval=self.REDRAW_MS)
        self._timer.timeout.connect(self.redraw)
        self._timer.start()
        self._dirty = True
        self.redraw()  # the last minutes of the day at once, not the epoch's first second

    @staticmethod
    def _axis() -> pg.DateAxisItem:
        # x values are shifted to the station's wall clock, so the axis shows them as UTC
        return pg.DateAxisItem(orientation="bottom", utcOffset=0)

    def _shift(self, at: float) -> float:
        offset = datetime.fromtimestamp(at, self.tz).utcoffset() or timedelta(0)
        return at + offset.total_seconds()

    def set_connector(self, key: Key | None, label: str = "") -> None:
        self.key = key
        if key is None:
            self.title.setText("Select a connector to see its power and state of charge.")
        else:
            self.title.setText(f"Live meter values: {label}")
            if not self.history.has(key):
                self.history.replace(key, stored_samples(*key, self.clock() - WINDOW))
        self._dirty = True
        self.redraw()

    def on_meter(self, event: CsmsEvent) -> None:
        if event.charge_point is None or event.connector is None:
            return
        data = event.data
        power = data.get("power_kw")
        soc = data.get("soc")
        key = (event.charge_point, event.connector)
        self.history.add(
            key,
            event.timestamp,
            None if power is None else float(power),
            None if soc is None else float(soc),
        )
        if key == self.key:
            self._dirty = True

    def redraw(self) -> None:
        """Scroll to now; redraw the curves when new samples came for this connector."""
        now = self._shift(self.clock().timestamp())
        first = self._first_sample
        span = WINDOW.total_seconds()
        if first is not None:
            # a fresh session fills the chart instead of sitting at its right edge
            span = min(span, max(MIN_SPAN.total_seconds(), now - first + 20))
        self.power.setXRange(now - span, now + 10, padding=0)
        if not self._dirty:
            return
        self._dirty = False
        if self.key is None:
            t = p = s = np.empty(0)
        else:
            t, p, s = self.history.arrays(self.key)
            if len(t):
                t = t + (self._shift(t[-1]) - t[-1])
        self._first_sample = float(t[0]) if len(t) else None
        self.power_curve.setData(t, p, connect="finite")
        self.soc_curve.setData(t, s, connect="finite")
        top = np.nanmax(p) if len(p) and not np.all(np.isnan(p)) else 0.0
        self.power.setYRange(0, max(float(top) * 1.15, IDLE_TOP_KW), padding=0)
        if self.key is None:
            self.hint.show(True, "No connector selected")
        else:
            self.hint.show(not len(t), "No meter values yet")
