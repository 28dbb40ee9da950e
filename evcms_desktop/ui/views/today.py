"""The Today tab: the paper's dashboard counters and the booking timeline."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QVBoxLayout, QWidget

from evcms_desktop.domain.tariff import format_money
from evcms_desktop.store.models import BookingState, Station, utcnow
from evcms_desktop.ui.formatting import fmt_duration, fmt_number, fmt_percent, state_text
from evcms_desktop.ui.models.bookings import BookingsModel
from evcms_desktop.ui.stats import TodayCounters, today_counters, upcoming_bookings
from evcms_desktop.ui.theme import BOOKING_COLOURS
from evcms_desktop.ui.views.tables import sortable_table
from evcms_desktop.ui.views.timeline import BookingTimeline


class Counter(QFrame):
    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("counter")
        self.value = QLabel("–")
        self.value.setObjectName("counterValue")
        self.detail = QLabel("")
        self.detail.setObjectName("counterTitle")
        self.detail.setWordWrap(True)
        heading = QLabel(title)
        heading.setObjectName("counterTitle")
        layout = QVBoxLayout(self)
        layout.addWidget(heading)
        layout.addWidget(self.value)
        layout.addWidget(self.detail)

    def set(self, value: str, detail: str = "") -> None:
        self.value.setText(value)
        self.detail.setText(detail)


class TodayView(QWidget):
    REFRESH_MS = 5000

    def __init__(
        self,
        station: Station,
        clock: Callable[[], datetime] = utcnow,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.station, self.clock = station, clock
        self.counters = {
            name: Counter(title)
            for name, title in (
                ("vehicles", "Vehicles charged"),
                ("energy", "Energy delivered"),
                ("revenue", "Revenue"),
                ("average", "Average session time"),
                ("soc", "State of charge (charging now)"),
                ("online", "Chargers online"),
            )
        }
        grid = QGridLayout()
        for i, counter in enumerate(self.counters.values()):
            grid.addWidget(counter, 0, i)
        self.timeline = BookingTimeline(station, clock)
        swatch = '<span style="color:{}; font-size:13pt">■</span> {}'
        legend = QLabel(
            "&nbsp;&nbsp;".join(
                swatch.format(colour, state_text(state))
                for state, colour in BOOKING_COLOURS.items()
                if state != BookingState.CANCELLED.value
            )
            + '&nbsp;&nbsp;<span style="background:#fbe6d2">&nbsp;Peak On&nbsp;</span>'
        )
        self.upcoming = BookingsModel(station, self)
        self.upcoming_table = sortable_table(self.upcoming, self)
        next_heading = QLabel("Next bookings")
        next_heading.setObjectName("sectionTitle")
        heading = QLabel("Bookings today (Peak On shaded, now in red; click a booking to open it)")
        heading.setObjectName("sectionTitle")
        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addSpacing(8)
        layout.addWidget(heading)
        layout.addWidget(self.timeline)
        layout.addWidget(legend)
        layout.addSpacing(8)
        layout.addWidget(next_heading)
        layout.addWidget(self.upcoming_table, 1)
        self._timer = QTimer(self, interval=self.REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()
        self.refresh()

    def refresh(self) -> None:
        now = self.clock()
        self.show_counters(today_counters(self.station, now))
        self.timeline.refresh()
        self.upcoming.set_records(upcoming_bookings(self.station, now))

    def show_counters(self, c: TodayCounters) -> None:
        currency = self.station.currency
        self.counters["vehicles"].set(str(c.vehicles_charged), f"{c.charging_now} charging now")
        self.counters["energy"].set(fmt_number(c.energy_kwh, "kWh"))
        self.counters["revenue"].set(format_money(c.revenue, currency), "finished sessions")
        self.counters["average"].set(fmt_duration(c.average_session))
        per_connector = ", ".join(f"{k} {fmt_percent(v)}" for k, v in c.soc_by_connector.items())
        self.counters["soc"].set(fmt_percent(c.average_soc), per_connector or "no EV charging")
        self.counters["online"].set(f"{c.chargers_online} / {c.chargers_total}")
