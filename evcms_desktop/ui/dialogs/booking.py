"""The New booking dialog: the booking flow in a window-modal dialog."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QVBoxLayout, QWidget

from evcms_desktop.store.bookings import BookingService
from evcms_desktop.ui.booking.flow import BookingFlow


class NewBookingDialog(QDialog):
    booked = Signal(str)

    def __init__(self, service: BookingService, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New booking")
        self.flow = BookingFlow(service)
        self.buttons = QDialogButtonBox()
        self.show_plans = self.buttons.addButton(
            "Show plans", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.back = self.buttons.addButton("Change request", QDialogButtonBox.ButtonRole.ResetRole)
        self.back.clicked.connect(self.flow.back)
        self.cancel = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.show_plans.setDefault(True)
        self.buttons.accepted.connect(self.flow.submit)
        self.buttons.rejected.connect(self.reject)
        self.flow.booked.connect(self.booked)
        self.flow.finished.connect(self.accept)
        self.flow.page_changed.connect(self._page_changed)
        layout = QVBoxLayout(self)
        layout.addWidget(self.flow)
        layout.addWidget(self.buttons)
        self._page_changed("form")

    def _page_changed(self, page: str) -> None:
        self.show_plans.setVisible(page == "form")
        self.back.setVisible(page == "plans")
        self.cancel.setVisible(page != "done")
        sizes = {"form": (540, 340), "plans": (250 * max(2, len(self.flow.plans.cards)) + 60, 560)}
        self.resize(*sizes.get(page, (560, 330)))
