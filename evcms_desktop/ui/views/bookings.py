"""The Bookings tab: bookings between two dates, by state; New booking, Cancel, Check in."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from PySide6.QtCore import QDate, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDateEdit,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from evcms_desktop.store.bookings import BookingService
from evcms_desktop.store.models import Booking, BookingState, utcnow
from evcms_desktop.store.stations import station_calendar
from evcms_desktop.ui.formatting import local_qdate, state_text
from evcms_desktop.ui.models.bookings import BookingsModel
from evcms_desktop.ui.views.tables import selected_record, sortable_table


def _date_edit(day: QDate) -> QDateEdit:
    edit = QDateEdit(day, calendarPopup=True)
    edit.setDisplayFormat("ddd d MMM yyyy")
    return edit


class BookingsView(QWidget):
    new_booking = Signal()
    changed = Signal(str)
    open_booking = Signal(str)

    def __init__(
        self,
        service: BookingService,
        clock: Callable[[], datetime] = utcnow,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.service = service
        self.model = BookingsModel(service.station, self)
        day = local_qdate(clock(), station_calendar(service.station).tz)
        self.first = _date_edit(day)
        self.last = _date_edit(day.addDays(1))
        self.state = QComboBox()
        self.state.addItem("All states", None)
        for state in BookingState:
            self.state.addItem(state_text(state.value), state.value)
        for widget in (self.first, self.last):
            widget.dateChanged.connect(self.refresh)
        self.state.currentIndexChanged.connect(self.refresh)
        self.table = sortable_table(self.model, self, sort_column=1)
        self.table.doubleClicked.connect(self._open_selected)
        self.table.selectionModel().selectionChanged.connect(self._update_buttons)
        self.new_button = QPushButton("New booking…")
        self.cancel_button = QPushButton("Cancel booking")
        self.check_in_button = QPushButton("Check in")
        self.new_button.clicked.connect(self.new_booking)
        self.cancel_button.clicked.connect(lambda: self._move(self.service.cancel))
        self.check_in_button.clicked.connect(lambda: self._move(self.service.check_in))
        self.message = QLabel()
        self.message.setObjectName("fieldError")

        top = QHBoxLayout()
        top.addWidget(QLabel("From"))
        top.addWidget(self.first)
        top.addWidget(QLabel("to"))
        top.addWidget(self.last)
        top.addWidget(self.state)
        top.addStretch(1)
        top.addWidget(self.new_button)
        top.addWidget(self.check_in_button)
        top.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table)
        layout.addWidget(self.message)
        self.refresh()

    def refresh(self) -> None:
        self.model.load(
            self.first.date().toPython(), self.last.date().toPython(), self.state.currentData()
        )
        self._update_buttons()

    def selected(self) -> Booking | None:
        record = selected_record(self.table)
        return record if isinstance(record, Booking) else None

    def _update_buttons(self) -> None:
        booking = self.selected()
        state = booking.state if booking else None
        self.check_in_button.setEnabled(state == BookingState.CONFIRMED.value)
        self.cancel_button.setEnabled(
            state in (BookingState.CONFIRMED.value, BookingState.CHECKED_IN.value)
        )

    def _move(self, action: Callable[[str], Booking]) -> None:
        booking = self.selected()
        if booking is None:
            return
        try:
            action(booking.code)
        except ValueError as exc:
            self.message.setText(str(exc))
            return
        self.message.clear()
        self.refresh()
        self.changed.emit(booking.code)

    def _open_selected(self) -> None:
        booking = self.selected()
        if booking is not None:
            self.open_booking.emit(booking.code)
