"""Check-in and cancellation of a booking, as the Bookings tab and the booking dialog offer them.

Cancelling is destructive (the driver's ID stops working at the charger): it needs an
operator, is confirmed, and is logged and kept as a notice. A check-in well before the
booking starts asks first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QDialog, QWidget

from evcms_desktop.store import driver_data
from evcms_desktop.store.bookings import BookingNotFoundError, BookingService
from evcms_desktop.store.models import Booking, BookingState, utcnow
from evcms_desktop.store.stations import station_calendar
from evcms_desktop.ui.dialogs.confirm import ConfirmDialog
from evcms_desktop.ui.formatting import fmt_duration, fmt_span

log = logging.getLogger(__name__)

# Runs its callable once the console is in operator mode (ConnectorActions.require_operator).
OperatorGate = Callable[[str, Callable[[], None]], None]


class BookingActions(QObject):
    changed = Signal(str)  # code of the booking that was checked in or cancelled
    failed = Signal(str)  # why an action did not happen
    notice = Signal(str)  # what happened, for the status bar and notifications
    dialog_opened = Signal(object)

    def __init__(
        self,
        service: BookingService,
        require_operator: OperatorGate,
        parent_widget: QWidget,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(parent_widget)
        self.service = service
        self.require_operator = require_operator
        self.parent_widget = parent_widget
        self.clock = clock
        self.dialog: QDialog | None = None

    def _open(self, dialog: QDialog) -> None:
        self.dialog = dialog
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()
        self.dialog_opened.emit(dialog)

    def _describe(self, booking: Booking) -> str:
        tz = station_calendar(self.service.station).tz
        return f"{booking.connector.label}, {fmt_span(booking.start, booking.end, tz)}"

    def cancel(self, booking: Booking) -> None:
        def ask() -> None:
            warning = (
                " The driver has already checked in."
                if booking.state == BookingState.CHECKED_IN.value
                else ""
            )
            dialog = ConfirmDialog(
                f"Cancel booking {booking.code}",
                f"Cancel booking {booking.code} ({self._describe(booking)})?{warning} Its ID"
                " stops working at the charger and the slot is offered to others. This"
                " cannot be undone.",
                "Cancel booking",
                parent=self.parent_widget,
                keep="Keep booking",
            )
            dialog.accepted.connect(lambda: self._apply(booking.code, cancel=True))
            self._open(dialog)

        self.require_operator("Cancel booking", ask)

    def erase_driver(self, booking: Booking) -> None:
        """On the driver's request: their name and contact, on all their bookings."""

        def ask() -> None:
            dialog = ConfirmDialog(
                "Erase the driver's personal data",
                f"Erase the name and contact of the driver of {booking.code} from all their"
                " bookings? The bookings, their energy and prices are kept. This cannot be"
                " undone.",
                "Erase",
                parent=self.parent_widget,
                keep="Keep",
            )
            dialog.accepted.connect(lambda: self._erase(booking.code))
            self._open(dialog)

        self.require_operator("Erase driver data", ask)

    def _erase(self, code: str) -> None:
        try:
            count = driver_data.erase_driver(code, by="the console operator")
        except driver_data.DriverDataError as exc:
            self.failed.emit(str(exc))
            return
        self.notice.emit(f"Erased the driver's details from {count} booking{'s' * (count != 1)}")
        self.changed.emit(code)

    def check_in(self, booking: Booking, parent: QWidget | None = None) -> None:
        now = self.clock()
        early = booking.start - now
        grace = timedelta(minutes=self.service.station.authorize_grace_minutes)
        if early <= grace:
            self._apply(booking.code, cancel=False)
            return
        dialog = ConfirmDialog(
            f"Check in {booking.code} early?",
            f"Booking {booking.code} ({self._describe(booking)}) starts in"
            f" {fmt_duration(early)}. The charger accepts its ID only from"
            f" {grace.seconds // 60} minutes before the start. Check in now anyway?",
            "Check in",
            parent=parent or self.parent_widget,
        )
        dialog.accepted.connect(lambda: self._apply(booking.code, cancel=False))
        self._open(dialog)

    def _apply(self, code: str, cancel: bool) -> None:
        try:
            if cancel:
                booking = self.service.cancel(code, by="the console operator")
                text = f"Cancelled booking {booking.code}"
            else:
                booking = self.service.check_in(code)
                text = f"Checked in {booking.code}"
        except (ValueError, BookingNotFoundError) as exc:
            self.failed.emit(str(exc))
            return
        self.notice.emit(text)
        self.changed.emit(booking.code)
