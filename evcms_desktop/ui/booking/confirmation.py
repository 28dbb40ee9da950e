"""The confirmed booking: its ID large, as a QR code to photograph, and what was booked.

On the public kiosk screen there is no clipboard to copy to; a Print button appears where
the system has a printer.
"""

from __future__ import annotations

import io
import logging
from zoneinfo import ZoneInfo

import segno
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication, QPainter, QPixmap
from PySide6.QtPrintSupport import QPrintDialog, QPrinter, QPrinterInfo
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from evcms_desktop.domain.tariff import format_money
from evcms_desktop.store.models import Booking
from evcms_desktop.ui.formatting import fmt_kw, fmt_kwh, fmt_span

log = logging.getLogger(__name__)


def qr_pixmap(text: str, scale: int = 8) -> QPixmap:
    """A QR code of `text` (segno), black on white with the standard quiet zone."""
    buffer = io.BytesIO()
    # micro=False: most phone cameras read full QR codes only, not Micro QR.
    segno.make(text, error="m", micro=False).save(buffer, kind="png", scale=scale, border=4)
    pixmap = QPixmap()
    pixmap.loadFromData(buffer.getvalue(), "PNG")
    return pixmap


class ConfirmationPage(QWidget):
    done = Signal()

    def __init__(self, tz: ZoneInfo, public: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tz = tz
        self.public = public
        title = QLabel("Booking confirmed")
        title.setObjectName("confirmTitle")
        label = QLabel("Your booking ID")
        label.setObjectName("codeLabel")
        self.code = QLabel()
        self.code.setObjectName("bookingCode")
        self.code.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.qr = QLabel()
        self.qr.setObjectName("bookingQr")
        self.qr.setToolTip("The booking ID as a QR code: photograph it to keep it.")
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        hint = QLabel(
            "Enter this ID at the charger (or show it to the attendant)."
            + (" Photograph the code to keep it." if public else "")
        )
        hint.setWordWrap(True)
        self.copy_button = QPushButton("Copy ID")
        self.copy_button.setObjectName("secondary")
        self.copy_button.clicked.connect(self.copy)
        self.copy_button.setVisible(not public)
        self.print_button = QPushButton("Print")
        self.print_button.setObjectName("secondary")
        self.print_button.clicked.connect(self.print_booking)
        self.print_button.setVisible(bool(QPrinterInfo.availablePrinterNames()))
        self.done_button = QPushButton("Done")
        self.done_button.clicked.connect(self.done)

        details = QVBoxLayout()
        details.addWidget(label)
        details.addWidget(self.code)
        details.addWidget(hint)
        details.addWidget(self.summary)
        details.addStretch(1)
        grid = QGridLayout()
        grid.addLayout(details, 0, 0)
        grid.addWidget(self.qr, 0, 1, Qt.AlignmentFlag.AlignTop)
        grid.setColumnStretch(0, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.copy_button)
        buttons.addWidget(self.print_button)
        buttons.addStretch(1)
        buttons.addWidget(self.done_button)
        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addLayout(grid)
        layout.addStretch(1)
        layout.addLayout(buttons)

    def show_booking(self, booking: Booking, connector_label: str, currency: str) -> None:
        self.code.setText(booking.code)
        self.qr.setPixmap(qr_pixmap(booking.code, scale=10 if self.public else 6))
        self.summary.setText(
            f"{fmt_span(booking.start, booking.end, self.tz)} on {connector_label}<br>"
            f"{fmt_kwh(booking.energy_kwh)} at {fmt_kw(booking.power_kw)}, "
            f"<b>{format_money(booking.price_total, currency)}</b>"
        )

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self.code.text())

    def print_booking(self) -> None:
        """The ID, its QR code and the summary on one page of the chosen printer."""
        printer = QPrinter()
        dialog = QPrintDialog(printer, self)
        if dialog.exec() != QPrintDialog.DialogCode.Accepted:
            return
        painter = QPainter(printer)
        try:
            font = painter.font()
            font.setPointSize(28)
            painter.setFont(font)
            painter.drawText(0, 60, self.code.text())
            painter.drawPixmap(0, 100, qr_pixmap(self.code.text(), scale=12))
        finally:
            painter.end()
        log.info("Booking %s printed", self.code.text())
