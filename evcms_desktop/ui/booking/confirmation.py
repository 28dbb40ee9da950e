"""The confirmed booking: its ID large and copyable, and what was booked."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from evcms_desktop.domain.tariff import format_money
from evcms_desktop.store.models import Booking
from evcms_desktop.ui.formatting import fmt_kw, fmt_kwh, fmt_span


class ConfirmationPage(QWidget):
    done = Signal()

    def __init__(self, tz: ZoneInfo, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tz = tz
        title = QLabel("Booking confirmed")
        title.setObjectName("sectionTitle")
        self.code = QLabel()
        self.code.setObjectName("bookingCode")
        self.code.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.code.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.copy_button = QPushButton("Copy ID")
        self.copy_button.setObjectName("secondary")
        self.copy_button.clicked.connect(self.copy)
        self.done_button = QPushButton("Done")
        self.done_button.clicked.connect(self.done)
        hint = QLabel("Enter this booking ID at the charger (or show it to the attendant).")
        hint.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addWidget(QLabel("Booking ID"))
        layout.addWidget(self.code)
        layout.addWidget(hint)
        layout.addWidget(self.summary)
        layout.addStretch(1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.copy_button)
        buttons.addStretch(1)
        buttons.addWidget(self.done_button)
        layout.addLayout(buttons)

    def show_booking(self, booking: Booking, connector_label: str, currency: str) -> None:
        self.code.setText(booking.code)
        self.summary.setText(
            f"{fmt_span(booking.start, booking.end, self.tz)} on {connector_label}<br>"
            f"{fmt_kwh(booking.energy_kwh)} at {fmt_kw(booking.power_kw)}, "
            f"<b>{format_money(booking.price_total, currency)}</b>"
        )

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self.code.text())
