"""The Bookings tab: bookings between two dates, by state, or found by their ID; New booking,
Check in, Cancel (through BookingActions)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from PySide6.QtCore import QDate, QSortFilterProxyModel, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDateEdit,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from evcms_desktop.domain.booking_codes import ID_TAG_MAX, normalize_code
from evcms_desktop.store.bookings import BookingNotFoundError, BookingService
from evcms_desktop.store.models import Booking, BookingState, utcnow
from evcms_desktop.store.stations import station_calendar
from evcms_desktop.ui.booking_actions import BookingActions
from evcms_desktop.ui.formatting import bound_dates, local_qdate, state_text
from evcms_desktop.ui.models.bookings import BookingsModel
from evcms_desktop.ui.sites import SiteChoice, SiteLookup
from evcms_desktop.ui.views.tables import selected_record, sortable_table


def _date_edit(day: QDate) -> QDateEdit:
    edit = QDateEdit(day, calendarPopup=True)
    edit.setDisplayFormat("ddd d MMM yyyy")
    bound_dates(edit)
    return edit


class BookingsView(QWidget):
    new_booking = Signal()
    open_booking = Signal(str)

    def __init__(
        self,
        service: BookingService,
        actions: BookingActions,
        clock: Callable[[], datetime] = utcnow,
        parent: QWidget | None = None,
        sites: SiteLookup | None = None,
    ) -> None:
        super().__init__(parent)
        self.service = service
        self.actions = actions
        self.tz = station_calendar(service.station).tz
        self.model = BookingsModel(service.station, self, sites)
        self.site_choice = SiteChoice(self.model.sites)
        self.site_choice.chosen.connect(self.refresh)
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
        self.search = QLineEdit(placeholderText="Find a booking ID")
        self.search.setMaxLength(ID_TAG_MAX + 4)
        self.search.setClearButtonEnabled(True)
        self.search.setToolTip(
            "Type part of an ID to filter the list; Enter finds the booking on any date."
        )
        self.search.textChanged.connect(self._filter)
        self.search.returnPressed.connect(self.find_code)
        self.table = sortable_table(self.model, self, sort_column=self.model.column("Start"))
        self.proxy = self.table.model()
        assert isinstance(self.proxy, QSortFilterProxyModel)
        self.proxy.setFilterKeyColumn(0)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.table.doubleClicked.connect(self._open_selected)
        self.table.selectionModel().selectionChanged.connect(self._update_buttons)
        self.new_button = QPushButton("New booking…")
        self.cancel_button = QPushButton("Cancel booking…")
        self.cancel_button.setToolTip("Needs an operator; asks before it cancels.")
        self.check_in_button = QPushButton("Check in")
        self.erase_button = QPushButton("Erase driver data…")
        self.erase_button.setToolTip(
            "On the driver's request: blanks their name and contact on all their bookings."
        )
        self.erase_button.clicked.connect(self._erase)
        self.new_button.clicked.connect(self.new_booking)
        self.cancel_button.clicked.connect(self._cancel)
        self.check_in_button.clicked.connect(self._check_in)
        self.message = QLabel()
        self.message.setObjectName("fieldError")
        actions.changed.connect(self._changed)
        actions.failed.connect(self.message.setText)

        top = QHBoxLayout()
        top.addWidget(self.site_choice)
        top.addWidget(QLabel("From"))
        top.addWidget(self.first)
        top.addWidget(QLabel("to"))
        top.addWidget(self.last)
        top.addWidget(self.state)
        top.addWidget(self.search, 1)
        top.addWidget(self.new_button)
        top.addWidget(self.check_in_button)
        top.addWidget(self.cancel_button)
        top.addWidget(self.erase_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table)
        layout.addWidget(self.message)
        self.refresh()

    def refresh(self) -> None:
        self.model.site_ids = self.site_choice.site_ids()
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
        self.erase_button.setEnabled(
            booking is not None and bool(booking.driver_name or booking.driver_contact)
        )

    def _filter(self, text: str) -> None:
        self.proxy.setFilterFixedString(normalize_code(text) if text.strip() else "")

    def find_code(self) -> Booking | None:
        """Show the booking with the typed ID, whatever its date, and select it."""
        text = self.search.text().strip()
        if not text:
            return None
        try:
            booking = self.service.find(text)
        except BookingNotFoundError as exc:
            self.message.setText(str(exc))
            return None
        day = local_qdate(booking.start, self.tz)
        for edit in (self.first, self.last):
            edit.blockSignals(True)
        self.first.setDate(day)
        self.last.setDate(day)
        for edit in (self.first, self.last):
            edit.blockSignals(False)
        self.state.setCurrentIndex(0)
        self.refresh()
        self.search.setText(booking.code)
        self.table.selectRow(0)
        self.message.clear()
        return booking

    def _cancel(self) -> None:
        if (booking := self.selected()) is not None:
            self.actions.cancel(booking)

    def _erase(self) -> None:
        if (booking := self.selected()) is not None:
            self.actions.erase_driver(booking)

    def _check_in(self) -> None:
        if (booking := self.selected()) is not None:
            self.actions.check_in(booking)

    def _changed(self, _code: str) -> None:
        self.message.clear()
        self.refresh()

    def _open_selected(self) -> None:
        booking = self.selected()
        if booking is not None:
            self.open_booking.emit(booking.code)
