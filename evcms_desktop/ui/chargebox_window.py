"""The paper's simulator window: connect as a charge point, type a booking ID, watch the log.

A self-contained QWidget; it needs the application's qasync loop (the console's), as it
drives a ChargeBox with asyncio tasks. Charging runs at real time by default, so that its
sessions are billed as a real charger's are. A faster clock (chosen before connecting)
lets a session be watched to its end, but its readings are soon stamped more than five
minutes ahead of the central system's clock, which its plausibility check does not trust:
such a session is flagged for review, not billed from its meter. The window says so. (A
per-charger "simulated clock" exemption would be a switch that turns the check off for a
charger id, which anyone holding its password could then use.)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from PySide6.QtCore import QDateTime
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from evcms_desktop.csms.protocol import websocket_url
from evcms_desktop.simulator.chargebox import ChargeBox
from evcms_desktop.simulator.cli import describe_failure

log = logging.getLogger(__name__)

# What a refused connection means, in the console's words (an unknown charger and a wrong
# password get the same 401, so that ids cannot be found by trying them).
REFUSALS = {
    401: "unknown charger or wrong password. An operator adds the charger under Settings >"
    " Chargers with a password of 16 to 40 characters; type that password here.",
    404: "unknown charger. An operator adds it under Settings > Chargers.",
    429: "too many wrong passwords from here: wait, or an operator lifts the lockout with"
    " Unlock under Settings > Chargers.",
    503: "the central system cannot take this charger now; try again shortly.",
}
CLOCKS = (1.0, 10.0, 60.0)  # simulated seconds per real second offered in the window


def speed_note(time_scale: float) -> str:
    if time_scale == 1:
        return "Simulated time runs at real time: sessions are billed as a charger's are."
    return (
        f"Simulated time runs {time_scale:g} times faster than real time (an hour of"
        f" charging takes {60 / time_scale:g} min). Its readings soon run more than 5 minutes"
        " ahead of the central system's clock, so its plausibility check flags the session"
        " for review instead of billing it. Choose real time for a billed session."
    )


class ChargeBoxWindow(QWidget):
    def __init__(
        self,
        url: str | None = None,  # None: the default endpoint on this machine
        ident: str = "CP-1",
        *,
        time_scale: float = 1.0,
        meter_interval: float = 2.0,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.time_scale = time_scale
        self.meter_interval = meter_interval
        self.box: ChargeBox | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False  # the widgets may be gone; late task output goes to the log

        self.url_edit = QLineEdit(url or websocket_url())
        self.ident_edit = QLineEdit(ident)
        self.password_edit = QLineEdit()
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.password_edit.setPlaceholderText("only for security profiles 1 and 2")
        self.clock_choice = QComboBox()
        for scale in sorted({*CLOCKS, time_scale}):
            self.clock_choice.addItem(
                "Real time" if scale == 1 else f"{scale:g}× real time (not billed)", scale
            )
        self.clock_choice.setCurrentIndex(self.clock_choice.findData(time_scale))
        self.clock_choice.currentIndexChanged.connect(self._choose_clock)
        self.connect_button = QPushButton("Connect")
        self.connect_button.clicked.connect(self._toggle_connection)
        self.booking_edit = QLineEdit()
        self.booking_edit.setPlaceholderText("Booking ID")
        self.booking_edit.returnPressed.connect(self._charge)
        self.connector_spin = QSpinBox()
        self.connector_spin.setRange(1, 2)
        self.charge_button = QPushButton("Start charging")
        self.charge_button.clicked.connect(self._charge)
        self.stop_button = QPushButton("Stop charging")
        self.stop_button.clicked.connect(self._stop)
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(2000)

        form = QFormLayout()
        form.addRow("Central system", self.url_edit)
        form.addRow("Charge point id", self.ident_edit)
        form.addRow("Password", self.password_edit)
        form.addRow("Clock", self.clock_choice)
        form.addRow("", self.connect_button)
        session = QHBoxLayout()
        session.addWidget(self.booking_edit, 1)
        session.addWidget(self.connector_spin)
        session.addWidget(self.charge_button)
        session.addWidget(self.stop_button)
        self.speed_note = QLabel()
        self.speed_note.setWordWrap(True)
        self._choose_clock()
        layout = QVBoxLayout(self)
        layout.addWidget(self.speed_note)
        layout.addLayout(form)
        layout.addLayout(session)
        layout.addWidget(self.log_view, 1)
        self.resize(640, 480)
        self._update_buttons()

    def _choose_clock(self) -> None:
        """The clock of the next connection: the note says what it means for the bill."""
        self.time_scale = float(self.clock_choice.currentData())
        speed = "real time" if self.time_scale == 1 else f"{self.time_scale:g}× real time"
        self.setWindowTitle(f"Charge-box simulator ({speed})")
        self.speed_note.setText(speed_note(self.time_scale))
        self.speed_note.setObjectName("" if self.time_scale == 1 else "fieldError")
        self.speed_note.style().unpolish(self.speed_note)
        self.speed_note.style().polish(self.speed_note)

    def append_log(self, text: str) -> None:
        if self._closed:
            log.info("Simulator: %s", text)
            return
        stamp = QDateTime.currentDateTime().toString("HH:mm:ss")
        self.log_view.appendPlainText(f"{stamp}  {text}")

    def _update_buttons(self) -> None:
        if self._closed:
            return
        online = self.box is not None and self.box.connected
        self.connect_button.setText("Disconnect" if online else "Connect")
        for widget in (self.url_edit, self.ident_edit, self.password_edit, self.clock_choice):
            widget.setEnabled(not online)
        self.charge_button.setEnabled(online)
        self.stop_button.setEnabled(online)

    def _run(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(self._guard(coro))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guard(self, coro: Coroutine[Any, Any, Any]) -> None:
        try:
            await coro
        except Exception as exc:
            log.debug("Simulator action failed", exc_info=True)
            self.append_log(f"error: {describe_failure(exc, REFUSALS)}")
        finally:
            self._update_buttons()

    def _toggle_connection(self) -> None:
        if self.box is not None and self.box.connected:
            self._run(self.box.close())
            return
        password = self.password_edit.text() or None
        self.box = ChargeBox(
            self.ident_edit.text().strip(),
            self.url_edit.text().strip(),
            password=password,
            meter_interval=self.meter_interval,
            time_scale=self.time_scale,
            on_log=self.append_log,
        )
        self.connector_spin.setRange(1, len(self.box.connectors))
        self._run(self._connect(self.box))

    async def _connect(self, box: ChargeBox) -> None:
        await box.connect()
        self._update_buttons()
        if await box.boot() == "Accepted":
            for number in box.connectors:
                await box.status(number, "Available")

    def _charge(self) -> None:
        code = self.booking_edit.text().strip()
        if self.box is None or not code:
            return
        self._run(self.box.charge(code, self.connector_spin.value()))

    def _stop(self) -> None:
        if self.box is None:
            return
        connector = self.connector_spin.value()
        for tx in list(self.box.transactions.values()):
            if tx.connector == connector:
                self._run(self.box.stop_transaction(tx.id, "Local"))

    def closeEvent(self, event: QCloseEvent) -> None:
        self._closed = True
        if self.box is not None and self.box.connected:
            self._run(self.box.close())
        super().closeEvent(event)
