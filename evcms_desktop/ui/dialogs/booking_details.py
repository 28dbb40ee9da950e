"""One booking: what was booked, and Check in / Cancel (through BookingActions)."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from evcms_desktop.domain.tariff import format_money
from evcms_desktop.store.bookings import BookingService
from evcms_desktop.store.models import Booking, BookingState
from evcms_desktop.store.stations import station_calendar
from evcms_desktop.ui.booking_actions import BookingActions
from evcms_desktop.ui.formatting import DASH, fmt_kw, fmt_kwh, fmt_span, state_text
from evcms_desktop.ui.models.bookings import PLAN_NAMES


class BookingDetailsDialog(QDialog):
    def __init__(
        self,
        service: BookingService,
        booking: Booking,
        actions: BookingActions,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.service = service
        self.actions = actions
        self.booking = booking
        tz = station_calendar(service.station).tz
        currency = service.station.currency
        self.setWindowTitle(f"Booking {booking.code}")
        code = QLabel(booking.code)
        code.setObjectName("bookingCode")
        self.state = QLabel(state_text(booking.state))
        form = QFormLayout()
        form.addRow("State", self.state)
        form.addRow("Booked", QLabel(fmt_span(booking.start, booking.end, tz)))
        form.addRow(
            "Asked for", QLabel(fmt_span(booking.requested_start, booking.requested_end, tz))
        )
        form.addRow("Connector", QLabel(booking.connector.label))
        form.addRow("Plan", QLabel(PLAN_NAMES.get(booking.plan, str(booking.plan))))
        form.addRow(
            "Energy, power",
            QLabel(f"{fmt_kwh(booking.energy_kwh)} at {fmt_kw(booking.power_kw)}"),
        )
        form.addRow("Price", QLabel(format_money(booking.price_total, currency)))
        form.addRow("Driver", QLabel(booking.driver_name or DASH))
        form.addRow("Contact", QLabel(booking.driver_contact or DASH))
        self.error = QLabel()
        self.error.setObjectName("fieldError")
        self.error.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.check_in_button = self.buttons.addButton(
            "Check in", QDialogButtonBox.ButtonRole.ActionRole
        )
        self.cancel_button = self.buttons.addButton(
            "Cancel booking…", QDialogButtonBox.ButtonRole.DestructiveRole
        )
        self.check_in_button.clicked.connect(self.check_in)
        self.cancel_button.clicked.connect(self.cancel_booking)
        self.buttons.rejected.connect(self.reject)
        actions.changed.connect(self._changed)
        actions.failed.connect(self.error.setText)
        layout = QVBoxLayout(self)
        layout.addWidget(code)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self._update_buttons()

    def _update_buttons(self) -> None:
        state = self.booking.state
        self.check_in_button.setEnabled(state == BookingState.CONFIRMED.value)
        self.cancel_button.setEnabled(
            state in (BookingState.CONFIRMED.value, BookingState.CHECKED_IN.value)
        )
        self.state.setText(state_text(state))

    def _changed(self, code: str) -> None:
        if code != self.booking.code:
            return
        self.booking = self.service.find(code)
        self.error.clear()
        self._update_buttons()

    def check_in(self) -> None:
        self.actions.check_in(self.booking, parent=self)

    def cancel_booking(self) -> None:
        """The confirmation (and sign-in) come over the console, this dialog closed."""
        self.accept()
        self.actions.cancel(self.booking)
