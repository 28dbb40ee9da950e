"""The walk-up kiosk: full screen, big touch targets, booking and "my booking" only.

No operator action is reachable from here. Leaving needs the kiosk PIN, typed on the
on-screen keypad, and opens the console (signed out); a minute without a touch goes back
to the start screen and forgets what was typed.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from PySide6.QtCore import QEvent, QObject, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QKeyEvent
from PySide6.QtWidgets import (
    QApplication,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from evcms_desktop.csms.events import DRIVER_KINDS
from evcms_desktop.domain.attempts import WrongAttempts, lock_span
from evcms_desktop.domain.booking_codes import ID_TAG_MAX
from evcms_desktop.domain.outcome import quote_beside_bill, running_beside_quote
from evcms_desktop.domain.tariff import format_money
from evcms_desktop.store.bookings import BookingNotFoundError, BookingService
from evcms_desktop.store.models import Booking, ChargingTransaction, TransactionState, utcnow
from evcms_desktop.store.notices import booking_events
from evcms_desktop.store.sessions import session_cost, session_energy
from evcms_desktop.store.stations import station_calendar, station_tariff
from evcms_desktop.ui.booking.flow import BookingFlow
from evcms_desktop.ui.formatting import fmt_span, state_text
from evcms_desktop.ui.roles import Credentials
from evcms_desktop.ui.theme import CONSOLE_STYLE, KIOSK_STYLE

log = logging.getLogger(__name__)

IDLE_MS = 60_000
INPUT_EVENTS = {
    QEvent.Type.MouseButtonPress,
    QEvent.Type.KeyPress,
    QEvent.Type.TouchBegin,
    QEvent.Type.Wheel,
}


def _title(text: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName("kioskTitle")
    label.setWordWrap(True)
    return label


def _secondary(text: str) -> QPushButton:
    button = QPushButton(text)
    button.setObjectName("secondary")
    return button


def booking_status(service: BookingService, code: str) -> str:
    """What the driver sees for a booking ID: state, connector, time and cost so far."""
    booking: Booking = service.find(code)
    station = service.station
    calendar = station_calendar(station)
    tz = calendar.tz
    currency = station.currency
    tx = (
        ChargingTransaction.select()
        .where(ChargingTransaction.booking == booking)
        .order_by(ChargingTransaction.started_at.desc())
        .first()
    )
    lines = [
        f"<b>{booking.code}</b>: {state_text(booking.state)}",
        f"Connector {booking.connector.label}",
        fmt_span(booking.start, booking.end, tz),
    ]
    if tx is None:
        lines.append(f"Price when charged as booked: {format_money(booking.price_total, currency)}")
    elif tx.state == TransactionState.ACTIVE.value:
        energy = session_energy(tx) or Decimal(0)
        so_far = session_cost(tx, station_tariff(station), calendar, utcnow())
        lines.append(
            "Charging: "
            + running_beside_quote(
                booking.energy_kwh, booking.price_total, energy, so_far, currency
            )
        )
    elif tx.energy_kwh is None or tx.price_total is None:
        lines.append(f"Quoted {format_money(booking.price_total, currency)}; not billed yet")
    else:
        text = quote_beside_bill(
            booking.energy_kwh, booking.price_total, tx.energy_kwh, tx.price_total, currency
        )
        lines.append(text[0].upper() + text[1:])
    for event in booking_events(booking.code, [kind.value for kind in DRIVER_KINDS]):
        lines.append(f"{calendar.to_local(event.timestamp):%H:%M} {html.escape(event.message)}")
    return "<br>".join(lines)


class _UpAndDownScroll(QScrollArea):
    """A page that scrolls up and down only: as wide as the page needs, never taller than
    the window has room for (a page taller than the screen pushed the Staff button off)."""

    def __init__(self, page: QWidget) -> None:
        super().__init__()
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setWidget(page)

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        page = self.widget()
        if page is not None:
            bar = self.verticalScrollBar().sizeHint().width()
            hint.setWidth(max(hint.width(), page.minimumSizeHint().width() + bar))
        return hint


class KioskWindow(QWidget):
    closed = Signal()

    def __init__(
        self,
        service: BookingService,
        credentials: Credentials,
        clock: Callable[[], datetime] = utcnow,
        idle_ms: int = IDLE_MS,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.service = service
        self.credentials = credentials
        self.clock = clock
        self.unlocked = False
        self.task: asyncio.Task[None] | None = None
        self.wrong_pins = WrongAttempts(clock)  # the staff exit locks after a few
        self.setWindowTitle(f"{service.station.name} – book a charge")
        self.setStyleSheet(CONSOLE_STYLE + KIOSK_STYLE)

        self.stack = QStackedWidget()
        self.start_page = self._start_page()
        self.booking_page = self._booking_page()
        self.lookup_page = self._lookup_page()
        self.exit_page = self._exit_page()
        for page in (self.start_page, self.booking_page, self.lookup_page, self.exit_page):
            self.stack.addWidget(page)
        self.staff_button = QPushButton("Staff")
        self.staff_button.setObjectName("staff")
        self.staff_button.clicked.connect(self.ask_exit)
        bottom = QHBoxLayout()
        bottom.addStretch(1)
        bottom.addWidget(self.staff_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(60, 40, 60, 16)
        layout.addWidget(self.stack, 1)
        layout.addLayout(bottom)

        self.idle = QTimer(self, interval=idle_ms, singleShot=True)
        self.idle.timeout.connect(self.go_home)
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self)
        self.go_home()

    # Pages
    def _start_page(self) -> QWidget:
        page = QWidget()
        self.book_button = QPushButton("Book a charge")
        self.my_booking_button = _secondary("My booking")
        self.book_button.clicked.connect(self.start_booking)
        self.my_booking_button.clicked.connect(
            lambda: self.stack.setCurrentWidget(self.lookup_page)
        )
        hint = QLabel("Choose when you arrive and how much energy you need; we show you the plans.")
        hint.setObjectName("kioskHint")
        hint.setWordWrap(True)
        layout = QVBoxLayout(page)
        layout.addStretch(1)
        layout.addWidget(_title(f"Welcome to {self.service.station.name}"))
        layout.addWidget(hint)
        layout.addSpacing(40)
        layout.addWidget(self.book_button)
        layout.addWidget(self.my_booking_button)
        layout.addStretch(2)
        return page

    def _booking_page(self) -> QWidget:
        page = QWidget()
        self.flow = BookingFlow(self.service, connector_choice=False, public=True)
        self.flow.finished.connect(self.go_home)
        self.flow.page_changed.connect(self._flow_page)
        self.show_plans_button = QPushButton("Show plans")
        self.show_plans_button.clicked.connect(self.show_plans)
        self.start_over_button = _secondary("Start over")
        self.start_over_button.clicked.connect(self.go_home)
        self.change_button = _secondary("Change request")
        self.change_button.clicked.connect(self.flow.back)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_over_button)
        buttons.addWidget(self.change_button)
        buttons.addStretch(1)
        buttons.addWidget(self.show_plans_button)
        self.flow_scroll = _UpAndDownScroll(self.flow)
        layout = QVBoxLayout(page)
        layout.addWidget(_title("Book a charge"))
        layout.addWidget(self.flow_scroll, 1)
        layout.addLayout(buttons)
        return page

    def _lookup_page(self) -> QWidget:
        page = QWidget()
        self.code = QLineEdit(placeholderText="Booking ID")
        self.code.setMaxLength(ID_TAG_MAX + 4)
        self.code.returnPressed.connect(self.look_up)
        self.look_up_button = QPushButton("Look up")
        self.look_up_button.clicked.connect(self.look_up)
        self.lookup_result = QLabel()
        self.lookup_result.setWordWrap(True)
        back = _secondary("Back")
        back.clicked.connect(self.go_home)
        row = QHBoxLayout()
        row.addWidget(self.code, 1)
        row.addWidget(self.look_up_button)
        layout = QVBoxLayout(page)
        layout.addWidget(_title("My booking"))
        layout.addLayout(row)
        layout.addWidget(self.lookup_result)
        layout.addStretch(1)
        layout.addWidget(back, 0, Qt.AlignmentFlag.AlignLeft)
        return page

    def _exit_page(self) -> QWidget:
        page = QWidget()
        self.pin = QLineEdit(placeholderText="Kiosk PIN")
        self.pin.setEchoMode(QLineEdit.EchoMode.Password)
        self.pin.returnPressed.connect(self.try_exit)
        self.exit_message = QLabel()
        self.exit_message.setObjectName("fieldError")
        keypad = QGridLayout()
        for i, key in enumerate("123456789C0⌫"):
            button = _secondary(key)
            button.setMinimumWidth(110)
            button.clicked.connect(lambda _=False, k=key: self._key(k))
            keypad.addWidget(button, i // 3, i % 3)
        self.unlock_button = QPushButton("Open the console")
        self.unlock_button.clicked.connect(self.try_exit)
        back = _secondary("Back")
        back.clicked.connect(self.go_home)
        buttons = QHBoxLayout()
        buttons.addWidget(back)
        buttons.addStretch(1)
        buttons.addWidget(self.unlock_button)
        layout = QVBoxLayout(page)
        layout.addWidget(_title("Staff only"))
        layout.addWidget(self.pin)
        layout.addLayout(keypad)
        layout.addWidget(self.exit_message)
        layout.addStretch(1)
        layout.addLayout(buttons)
        return page

    # Behaviour
    def _key(self, key: str) -> None:
        if key == "C":
            self.pin.clear()
        elif key == "⌫":
            self.pin.backspace()
        else:
            self.pin.insert(key)

    def _flow_page(self, page: str) -> None:
        self.flow_scroll.updateGeometry()  # the page's width may need more room
        self.show_plans_button.setVisible(page == "form")
        self.change_button.setVisible(page == "plans")
        self.start_over_button.setVisible(page != "done")

    def show_plans(self) -> None:
        """Plan the request; when refused, scroll to the first field's message."""
        if self.flow.submit():
            return
        shown = [label for label in self.flow.form.errors.values() if label.isVisibleTo(self)]
        if shown:
            self.flow_scroll.ensureWidgetVisible(min(shown, key=lambda label: label.y()))

    def start_booking(self) -> None:
        self.flow.restart()
        self.stack.setCurrentWidget(self.booking_page)

    def go_home(self) -> None:
        """The start screen, with everything typed forgotten."""
        self.flow.restart()
        self.code.clear()
        self.lookup_result.clear()
        self.pin.clear()
        self.exit_message.clear()
        self.stack.setCurrentWidget(self.start_page)
        self.idle.start()

    def look_up(self) -> None:
        try:
            self.lookup_result.setText(booking_status(self.service, self.code.text()))
        except BookingNotFoundError:
            self.lookup_result.setText("No booking has that ID. Check the letters and try again.")

    def ask_exit(self) -> None:
        self.pin.clear()
        self.exit_message.clear()
        self.stack.setCurrentWidget(self.exit_page)
        self.pin.setFocus()

    def try_exit(self) -> None:
        if self._say_locked():
            self.pin.clear()
            return
        self.unlock_button.setEnabled(False)
        self.task = asyncio.ensure_future(self._try_exit(self.pin.text()))

    def _say_locked(self) -> bool:
        """While the staff exit is locked: say so, and for how long; True then."""
        left = self.wrong_pins.seconds_locked()
        if not left:
            return False
        assert self.wrong_pins.locked_until is not None
        until = self.wrong_pins.locked_until.astimezone(station_calendar(self.service.station).tz)
        self.exit_message.setText(
            f"Too many wrong PINs: locked for {lock_span(left)} more (until {until:%H:%M:%S})."
        )
        return True

    def _wrong_pin(self) -> None:
        left = self.wrong_pins.failed()
        if left:
            self.exit_message.setText(f"Wrong PIN. {left} {'try' if left == 1 else 'tries'} left.")
            return
        log.warning("Kiosk staff exit locked after %d wrong PINs", self.wrong_pins.tries)
        self._say_locked()

    async def _try_exit(self, pin: str) -> None:
        try:
            good = await self.credentials.check_kiosk_exit(pin, self.service.station.id)
        finally:
            self.unlock_button.setEnabled(True)
        self.pin.clear()
        if not good:
            log.warning("Kiosk exit refused: wrong PIN")
            self._wrong_pin()
            return
        log.info("Kiosk mode left with the kiosk PIN")
        self.unlocked = True
        self.close()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() in INPUT_EVENTS and self.isVisible():
            self.idle.start()
        return False

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.ask_exit()
            return
        super().keyPressEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.unlocked:
            event.ignore()
            self.ask_exit()
            return
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)
        super().closeEvent(event)
        self.closed.emit()
