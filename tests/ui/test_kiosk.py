"""The walk-up kiosk: booking, "my booking", the PIN to leave, the idle reset."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal

import numpy as np
import zxingcpp
from PySide6.QtCore import QPoint, QRect, Qt, QTime
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QLabel, QPushButton

from evcms_desktop.app.console import StationScreens
from evcms_desktop.domain.validation import slot_length_error
from evcms_desktop.store.bookings import BookingService
from evcms_desktop.store.models import Booking, Setting, Station
from evcms_desktop.ui.dialogs.sign_in import SignInDialog
from evcms_desktop.ui.kiosk import KioskWindow
from evcms_desktop.ui.roles import KIOSK_PIN_KEY, Role, Session, kiosk_pin_key
from tests.conftest import NOW
from tests.csms.helpers import FakeClock
from tests.ui.conftest import run

PIN = "2468"


def _kiosk(qtbot, service, credentials, idle_ms=60_000) -> KioskWindow:
    Setting.insert(key=KIOSK_PIN_KEY, value=credentials.hasher.hash(PIN)).execute()
    kiosk = KioskWindow(service, credentials, clock=service.clock, idle_ms=idle_ms)
    qtbot.addWidget(kiosk)
    kiosk.show()
    return kiosk


def test_kiosk_refuses_to_quit_without_the_pin(qtbot, service, credentials, qloop):
    kiosk = _kiosk(qtbot, service, credentials)
    assert not kiosk.close()  # Alt+F4, the window manager's close button
    assert kiosk.isVisible()
    assert kiosk.stack.currentWidget() is kiosk.exit_page

    qtbot.keyClicks(kiosk.pin, "1111")
    kiosk.unlock_button.click()
    qtbot.waitUntil(lambda: kiosk.exit_message.text() == "Wrong PIN. 4 tries left.", timeout=5000)
    assert kiosk.isVisible()
    qtbot.keyClick(kiosk, Qt.Key.Key_Escape)
    assert kiosk.isVisible()

    for digit in PIN:
        button = next(b for b in kiosk.exit_page.findChildren(QPushButton) if b.text() == digit)
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(kiosk.closed, timeout=5000):
        kiosk.unlock_button.click()
    assert not kiosk.isVisible()


def test_the_staff_exit_locks_after_wrong_pins_and_says_for_how_long(
    qtbot, db, station, credentials, qloop
):
    clock = FakeClock(NOW)
    kiosk = _kiosk(qtbot, BookingService(db, station, clock=clock), credentials)
    kiosk.ask_exit()

    def attempt(pin: str, expected: str) -> None:
        qtbot.keyClicks(kiosk.pin, pin)
        kiosk.unlock_button.click()
        qtbot.waitUntil(lambda: kiosk.exit_message.text() == expected, timeout=5000)
        kiosk.exit_message.clear()

    for left in (4, 3, 2):
        attempt("1111", f"Wrong PIN. {left} tries left.")
    attempt("1111", "Wrong PIN. 1 try left.")
    # 06:00 UTC is 06:00 in London: the lock ends a minute later.
    attempt("1111", "Too many wrong PINs: locked for 60 s more (until 06:01:00).")
    clock.advance(seconds=20)
    attempt(PIN, "Too many wrong PINs: locked for 40 s more (until 06:01:00).")  # not tried
    assert kiosk.isVisible()
    clock.advance(seconds=40)  # the lock is over; the next lock lasts twice as long
    for left in (4, 3, 2):
        attempt("1111", f"Wrong PIN. {left} tries left.")
    attempt("1111", "Wrong PIN. 1 try left.")
    attempt("1111", "Too many wrong PINs: locked for 2 min more (until 06:03:00).")
    clock.advance(minutes=2)
    with qtbot.waitSignal(kiosk.closed, timeout=5000):
        qtbot.keyClicks(kiosk.pin, PIN)
        kiosk.unlock_button.click()


def test_kiosk_offers_no_operator_action(qtbot, service, credentials):
    kiosk = _kiosk(qtbot, service, credentials)
    texts = {b.text() for b in kiosk.findChildren(QPushButton)}
    for operator_only in ("Remote start…", "Remote stop…", "Reset…", "Unlock…", "Approve"):
        assert operator_only not in texts
    assert not kiosk.flow.form.connector.isVisibleTo(kiosk)


def test_kiosk_books_looks_up_and_forgets_after_idle(qtbot, service, credentials):
    kiosk = _kiosk(qtbot, service, credentials, idle_ms=300)
    qtbot.mouseClick(kiosk.book_button, Qt.MouseButton.LeftButton)
    form = kiosk.flow.form
    form.time.setTime(QTime(13, 0))
    qtbot.keyClicks(form.energy, "12")
    qtbot.mouseClick(kiosk.show_plans_button, Qt.MouseButton.LeftButton)
    card = kiosk.flow.plans.cards[0]
    with qtbot.waitSignal(kiosk.flow.booked) as booked:
        qtbot.mouseClick(card.choose_button, Qt.MouseButton.LeftButton)
    code = booked.args[0]
    assert Booking.get(Booking.code == code).energy_kwh == 12
    assert kiosk.flow.confirmation.code.text() == code

    qtbot.mouseClick(kiosk.flow.confirmation.done_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(kiosk.my_booking_button, Qt.MouseButton.LeftButton)
    qtbot.keyClicks(kiosk.code, code.lower())
    qtbot.mouseClick(kiosk.look_up_button, Qt.MouseButton.LeftButton)
    assert "Confirmed" in kiosk.lookup_result.text()
    assert "CP-A #1" in kiosk.lookup_result.text()

    qtbot.waitUntil(lambda: kiosk.stack.currentWidget() is kiosk.start_page, timeout=3000)
    assert kiosk.code.text() == ""
    assert kiosk.lookup_result.text() == ""


def test_a_single_plan_is_not_called_the_cheapest(qtbot, service, credentials):
    kiosk = _kiosk(qtbot, service, credentials)
    qtbot.mouseClick(kiosk.book_button, Qt.MouseButton.LeftButton)
    form = kiosk.flow.form
    form.time.setTime(QTime(13, 0))  # Peak Off: no Eco plans
    qtbot.keyClicks(form.energy, "17.6")  # one hour at the connector's full rate
    qtbot.mouseClick(kiosk.show_plans_button, Qt.MouseButton.LeftButton)
    outcome = kiosk.flow.outcome
    assert outcome is not None and len(outcome.plans) == 1  # Plan 2 would be Plan 1
    cards = kiosk.flow.plans.cards
    assert len(cards) == 1
    assert not cards[0].property("cheapest")  # nothing to be cheaper than


def _book_at_kiosk(qtbot, kiosk) -> str:
    qtbot.mouseClick(kiosk.book_button, Qt.MouseButton.LeftButton)
    form = kiosk.flow.form
    form.time.setTime(QTime(13, 0))
    qtbot.keyClicks(form.energy, "12")
    qtbot.mouseClick(kiosk.show_plans_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(kiosk.flow.booked) as booked:
        qtbot.mouseClick(kiosk.flow.plans.cards[0].choose_button, Qt.MouseButton.LeftButton)
    return booked.args[0]


def test_the_confirmation_shows_a_qr_code_of_the_booking_id(qtbot, service, credentials):
    kiosk = _kiosk(qtbot, service, credentials)
    code = _book_at_kiosk(qtbot, kiosk)
    page = kiosk.flow.confirmation
    # As the driver sees it: once the page has been laid out in the window.
    qtbot.waitUntil(lambda: page.qr.size() == page.qr.pixmap().size(), timeout=3000)
    assert page.code.text() == code
    assert not page.copy_button.isVisibleTo(kiosk)  # nothing to copy to on a public screen
    assert page.qr.isVisibleTo(kiosk)
    # What is on the screen, decoded as a phone would.
    shown = page.qr.grab().toImage().convertToFormat(QImage.Format.Format_Grayscale8)
    pixels = np.frombuffer(shown.constBits(), np.uint8).reshape(
        shown.height(), shown.bytesPerLine()
    )[:, : shown.width()]
    decoded = zxingcpp.read_barcodes(np.ascontiguousarray(pixels))
    assert [d.text for d in decoded] == [code]
    assert decoded[0].format == zxingcpp.BarcodeFormat.QRCode
    title = page.findChild(QLabel, "confirmTitle")
    label = page.findChild(QLabel, "codeLabel")
    assert title.font().pointSizeF() > label.font().pointSizeF()
    assert page.code.font().pointSizeF() > title.font().pointSizeF()


def _type_pin(qtbot, kiosk, pin: str) -> None:
    for digit in pin:
        button = next(b for b in kiosk.exit_page.findChildren(QPushButton) if b.text() == digit)
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def test_leaving_the_kiosk_opens_the_console_signed_out_and_the_central_system_serves(
    qtbot, service, bus, central, credentials, operator_password
):
    Setting.insert(key=KIOSK_PIN_KEY, value=credentials.hasher.hash(PIN)).execute()
    session = Session(credentials)
    session.set_role(Role.OPERATOR)
    screens = StationScreens(service, bus, session, central, "Listening", "")
    kiosk = screens.show_kiosk()
    assert not session.is_operator
    assert kiosk.isFullScreen()
    assert kiosk.geometry() == kiosk.screen().geometry()  # also without a window manager

    kiosk.ask_exit()
    _type_pin(qtbot, kiosk, PIN)
    with qtbot.waitSignal(kiosk.closed, timeout=5000):
        kiosk.unlock_button.click()
    console = screens.console
    assert console is not None
    qtbot.addWidget(console)
    assert console.isVisible()
    assert not session.is_operator and console.role_label.text() == "Attendant"
    free = console.screen().availableGeometry().size()
    assert console.size() == console.size().boundedTo(free).expandedTo(console.minimumSize())

    async def still_serving() -> bool:
        _reader, writer = await asyncio.open_connection("127.0.0.1", central.port)
        writer.close()
        await writer.wait_closed()
        return True

    assert run(qtbot, still_serving())

    console.kiosk_action.trigger()  # back to the kiosk: an operator's decision
    sign_in = console.actions.dialog
    assert isinstance(sign_in, SignInDialog)
    qtbot.keyClicks(sign_in.password, operator_password)
    sign_in.ok.click()
    qtbot.waitUntil(lambda: screens.kiosk is not None, timeout=5000)
    assert not console.isVisible()
    assert not session.is_operator
    screens.kiosk.ask_exit()
    _type_pin(qtbot, screens.kiosk, PIN)
    with qtbot.waitSignal(screens.kiosk.closed, timeout=5000):
        screens.kiosk.unlock_button.click()
    assert console.isVisible()


def test_kiosk_mode_needs_a_kiosk_pin_first(qtbot, service, credentials, window_factory):
    window = window_factory()
    window.session.set_role(Role.OPERATOR)
    wanted = []
    window.kiosk_wanted.connect(lambda: wanted.append(1))
    window.kiosk_action.trigger()
    assert not wanted
    assert window.tabs.currentWidget() is window.settings
    assert window.settings.kiosk_message.text().startswith("Set a kiosk PIN first")
    # On the screen, not below the fold of the page (it was, and the button seemed dead).
    qtbot.waitUntil(lambda: not window.settings.kiosk_message.visibleRegion().isEmpty())
    assert not window.settings.kiosk_pin.visibleRegion().isEmpty()
    window.settings.kiosk_pin.setText("12a4")
    window.settings.kiosk_pin_button.click()
    assert window.settings.kiosk_message.text() == "A PIN has 4 to 12 digits."


def test_the_kiosk_does_not_start_without_a_pin(db_path, db, operator_password):
    result = subprocess.run(
        [sys.executable, "-m", "evcms_desktop", "--db", str(db_path), "--kiosk", "--port", "0"],
        capture_output=True, text=True, check=False, timeout=120,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "The kiosk needs a kiosk PIN" in lines[0]


def test_each_site_has_its_own_kiosk_pin(qtbot, db, station, credentials, qloop):
    other = Station.create(name="Harbour Street", timezone="Asia/Tokyo")
    Setting.insert(key=kiosk_pin_key(station.id), value=credentials.hasher.hash("1357")).execute()
    Setting.insert(key=kiosk_pin_key(other.id), value=credentials.hasher.hash("8642")).execute()
    kiosk = KioskWindow(BookingService(db, other), credentials, clock=lambda: NOW)
    qtbot.addWidget(kiosk)
    kiosk.show()
    kiosk.ask_exit()
    qtbot.keyClicks(kiosk.pin, "1357")  # the other site's PIN
    kiosk.unlock_button.click()
    qtbot.waitUntil(lambda: kiosk.exit_message.text() == "Wrong PIN. 4 tries left.", timeout=5000)
    with qtbot.waitSignal(kiosk.closed, timeout=5000):
        qtbot.keyClicks(kiosk.pin, "8642")
        kiosk.unlock_button.click()


def test_the_kiosk_explains_a_slot_longer_than_its_energy_needs(qtbot, service, credentials):
    """The same reason as `book` and the booking dialog, beside the duration."""
    kiosk = _kiosk(qtbot, service, credentials)
    qtbot.mouseClick(kiosk.book_button, Qt.MouseButton.LeftButton)
    form = kiosk.flow.form
    form.time.setTime(QTime(13, 0))
    form.duration.setValue(3 * 60)
    qtbot.keyClicks(form.energy, "1.5")
    qtbot.mouseClick(kiosk.show_plans_button, Qt.MouseButton.LeftButton)
    assert kiosk.flow.page == "form"
    expected = slot_length_error(timedelta(hours=3), Decimal("1.5"))
    assert expected is not None and "(1 h 30 min)" in expected
    assert form.errors["duration"].text() == expected
    assert form.errors["duration"].isVisible()
    assert Booking.select().count() == 0


def _stepped(qtbot, edit, *keys: Qt.Key) -> list[str]:
    shown = []
    for key in keys:
        qtbot.keyClick(edit, key)
        shown.append(edit.time().toString("HH:mm"))
    return shown


def test_the_kiosks_time_steps_by_the_booking_slot(qtbot, db, station, credentials):
    """Up and Down move the arrival by one slot, whichever part of the time has the cursor,
    and stay within the day."""
    kiosk = _kiosk(qtbot, BookingService(db, station, clock=lambda: NOW), credentials)
    qtbot.mouseClick(kiosk.book_button, Qt.MouseButton.LeftButton)
    form = kiosk.flow.form
    form.time.setFocus()
    form.time.setTime(QTime(13, 0))
    up, down = Qt.Key.Key_Up, Qt.Key.Key_Down
    assert _stepped(qtbot, form.time, up, up, down, down, down) == [
        "13:15", "13:30", "13:15", "13:00", "12:45",
    ]  # fmt: skip
    form.time.setTime(QTime(13, 7))  # typed between two slots
    assert _stepped(qtbot, form.time, down, up) == ["13:00", "13:15"]
    form.time.setTime(QTime(23, 45))
    assert _stepped(qtbot, form.time, up) == ["23:45"]
    form.earlier.setChecked(True)
    form.earliest.setTime(QTime(9, 0))
    assert _stepped(qtbot, form.earliest, up) == ["09:15"]


def test_a_site_with_half_hour_slots_steps_by_half_an_hour(qtbot, db, station, credentials):
    Station.update(step_minutes=30).where(Station.id == station.id).execute()
    service = BookingService(db, Station.get_by_id(station.id), clock=lambda: NOW)
    kiosk = _kiosk(qtbot, service, credentials)
    qtbot.mouseClick(kiosk.book_button, Qt.MouseButton.LeftButton)
    form = kiosk.flow.form
    form.time.setTime(QTime(13, 0))
    assert _stepped(qtbot, form.time, Qt.Key.Key_Up, Qt.Key.Key_Up) == ["13:30", "14:00"]


def test_an_energy_or_power_too_large_to_use_is_refused_under_its_field(
    qtbot, service, credentials
):
    kiosk = _kiosk(qtbot, service, credentials)
    qtbot.mouseClick(kiosk.book_button, Qt.MouseButton.LeftButton)
    form = kiosk.flow.form
    form.time.setTime(QTime(13, 0))
    for field, other in ((form.energy, form.power), (form.power, form.energy)):
        other.clear()
        field.clear()
        qtbot.keyClicks(field, "1e309")
        for _ in range(2):  # a second press is no way past it
            qtbot.mouseClick(kiosk.show_plans_button, Qt.MouseButton.LeftButton)
            assert kiosk.flow.page == "form"
            label = form.errors["energy" if field is form.energy else "power"]
            assert label.isVisibleTo(kiosk)
            assert label.text() == "1e309 is more than this station can use: at most 1000000."
    assert Booking.select().count() == 0


def test_the_kiosk_keeps_to_the_screen_and_the_staff_button_shows_on_every_page(
    qtbot, service, credentials
):
    """After a first booking form it grew past a 1366x768 screen (Staff off it), and after
    "Change request" the form shrank to about 60 % of the width."""
    kiosk = _kiosk(qtbot, service, credentials)
    kiosk.setGeometry(0, 0, 1366, 768)
    size = kiosk.size()
    form = kiosk.flow.form

    def fits() -> None:
        qtbot.wait(20)  # the layouts settle
        assert kiosk.size() == size
        staff = kiosk.staff_button.geometry()
        assert kiosk.staff_button.isVisible() and kiosk.rect().contains(staff)
        assert kiosk.sizeHint().height() <= 768 or kiosk.minimumSizeHint().height() <= 768

    qtbot.mouseClick(kiosk.book_button, Qt.MouseButton.LeftButton)
    fits()
    width = kiosk.flow.width()
    form.time.setTime(QTime(9, 0))  # Peak On: four plans
    qtbot.keyClicks(form.energy, "15")
    qtbot.mouseClick(kiosk.show_plans_button, Qt.MouseButton.LeftButton)
    assert kiosk.flow.page == "plans"
    fits()
    qtbot.mouseClick(kiosk.change_button, Qt.MouseButton.LeftButton)
    assert kiosk.flow.page == "form"
    fits()
    assert kiosk.flow.width() == width
    assert form.width() >= 0.9 * kiosk.flow.width()
    qtbot.mouseClick(kiosk.show_plans_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(kiosk.flow.booked):
        qtbot.mouseClick(kiosk.flow.plans.cards[0].choose_button, Qt.MouseButton.LeftButton)
    fits()
    qtbot.mouseClick(kiosk.flow.confirmation.done_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(kiosk.book_button, Qt.MouseButton.LeftButton)
    fits()
    assert form.width() >= 0.9 * kiosk.flow.width()


def test_a_drivers_name_longer_than_a_station_name_is_refused_with_a_message(
    qtbot, service, credentials
):
    kiosk = _kiosk(qtbot, service, credentials)
    qtbot.mouseClick(kiosk.book_button, Qt.MouseButton.LeftButton)
    form = kiosk.flow.form
    form.time.setTime(QTime(13, 0))
    qtbot.keyClicks(form.energy, "12")
    form.name.setText("N" * 300)
    qtbot.mouseClick(kiosk.show_plans_button, Qt.MouseButton.LeftButton)
    assert kiosk.flow.page == "form"
    assert form.errors["name"].isVisibleTo(kiosk)
    assert "at most 100 characters" in form.errors["name"].text()
    label, viewport = form.errors["name"], kiosk.flow_scroll.viewport()
    top = label.mapTo(viewport, QPoint(0, 0))
    assert viewport.rect().intersects(QRect(top, label.size()))  # scrolled to the message
    form.name.setText("N" * 100)
    qtbot.mouseClick(kiosk.show_plans_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(kiosk.flow.booked) as booked:
        qtbot.mouseClick(kiosk.flow.plans.cards[0].choose_button, Qt.MouseButton.LeftButton)
    assert Booking.get(Booking.code == booked.args[0]).driver_name == "N" * 100
    assert Booking.select().count() == 1
