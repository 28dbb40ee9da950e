"""Remote start: for one of the connector's bookings, or for any idTag."""

from __future__ import annotations

from datetime import datetime, timedelta

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from evcms_desktop.domain.booking_codes import ID_TAG_MAX, normalize_code
from evcms_desktop.store.models import Booking, BookingState, Station
from evcms_desktop.store.stations import station_calendar
from evcms_desktop.ui.formatting import fmt_span


def startable_bookings(station: Station, connector_id: int | None, now: datetime) -> list[Booking]:
    """Confirmed or checked-in bookings near now, this connector's first."""
    rows = list(
        Booking.select()
        .where(
            (Booking.station == station)
            & (Booking.state.in_([BookingState.CONFIRMED.value, BookingState.CHECKED_IN.value]))
            & (Booking.end > now)
            & (Booking.start < now + timedelta(hours=12))
        )
        .order_by(Booking.start)
    )
    return sorted(rows, key=lambda b: b.connector_id != connector_id)


class RemoteStartDialog(QDialog):
    def __init__(
        self,
        station: Station,
        label: str,
        connector_id: int | None,
        now: datetime,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Remote start on {label}")
        tz = station_calendar(station).tz
        self.booking = QComboBox()
        self.booking.addItem("No booking: use the idTag below", None)
        for b in startable_bookings(station, connector_id, now):
            self.booking.addItem(
                f"{b.code}  {fmt_span(b.start, b.end, tz)}  {b.connector.label}", b.code
            )
        if self.booking.count() > 1:
            self.booking.setCurrentIndex(1)
        self.id_tag = QLineEdit(placeholderText="idTag (up to 20 characters)")
        self.id_tag.setMaxLength(ID_TAG_MAX)
        self.error = QLabel()
        self.error.setObjectName("fieldError")
        text = QLabel(f"Ask {label} to start charging. The charger answers Accepted or Rejected.")
        text.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Booking", self.booking)
        form.addRow("or idTag", self.id_tag)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.ok = self.buttons.addButton("Start charging", QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self._check)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(text)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(480)

    @property
    def chosen_tag(self) -> str:
        typed = normalize_code(self.id_tag.text())
        return typed or (self.booking.currentData() or "")

    def _check(self) -> None:
        if not self.chosen_tag:
            self.error.setText("Choose a booking or type an idTag.")
            return
        self.accept()
