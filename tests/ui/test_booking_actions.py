"""Cancelling and checking in from the console: who may, what is asked, what is kept."""

from __future__ import annotations

import logging
import subprocess
import sys
from datetime import timedelta

from PySide6.QtCore import Qt

from evcms_desktop.csms.events import CsmsEvent, EventKind
from evcms_desktop.domain.validation import PlanRequest
from evcms_desktop.store.models import Booking, BookingState, Event
from evcms_desktop.store.notices import BOOKING_CANCELLED, BOOKING_CREATED
from evcms_desktop.ui.dialogs.confirm import ConfirmDialog
from evcms_desktop.ui.dialogs.sign_in import SignInDialog
from tests.conftest import NOW


def _book(service, hours_ahead: float = 6, name: str | None = None) -> Booking:
    from evcms_desktop.store.bookings import DriverDetails

    outcome = service.plan(
        PlanRequest(
            arrival=NOW + timedelta(hours=hours_ahead),
            duration=timedelta(hours=1),
            energy_kwh=10,
        )
    )
    return service.confirm(outcome, outcome.plans[0], DriverDetails(name, None))


def _state(booking: Booking) -> str:
    return Booking.get_by_id(booking.id).state


def _sign_in(qtbot, window, password: str):
    """Answer the sign-in the action asked for; returns the dialog that comes next."""
    sign_in = window.actions.dialog
    assert isinstance(sign_in, SignInDialog)
    qtbot.keyClicks(sign_in.password, password)
    with qtbot.waitSignal(window.booking_actions.dialog_opened, timeout=5000) as opened:
        sign_in.ok.click()
    return opened.args[0]


def test_an_attendant_cannot_cancel_without_an_operator(qtbot, service, window_factory, qloop):
    booking = _book(service, hours_ahead=1)
    window = window_factory()
    view = window.bookings
    view.table.selectRow(0)
    qtbot.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
    sign_in = window.actions.dialog
    assert isinstance(sign_in, SignInDialog)
    with qtbot.waitSignal(window.actions.denied) as denied:
        sign_in.reject()
    assert denied.args == ["Cancel booking"]
    assert _state(booking) == BookingState.CONFIRMED


def test_an_operator_confirms_the_cancel_which_is_logged_and_notified(
    qtbot, service, window_factory, operator_password, qloop, caplog
):
    booking = _book(service, hours_ahead=1, name="Ada Driver")
    window = window_factory()
    view = window.bookings
    view.table.selectRow(0)
    qtbot.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
    confirm = _sign_in(qtbot, window, operator_password)
    assert isinstance(confirm, ConfirmDialog)
    assert booking.code in confirm.windowTitle()
    assert confirm.keep.text() == "Keep booking" and confirm.keep.isDefault()
    confirm.keep.click()
    assert _state(booking) == BookingState.CONFIRMED  # kept: nothing happened

    view.table.selectRow(0)
    with qtbot.waitSignal(window.booking_actions.dialog_opened) as opened:
        qtbot.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)  # signed in now
    with caplog.at_level(logging.INFO):
        opened.args[0].ok.click()
    assert _state(booking) == BookingState.CANCELLED
    assert f"Booking {booking.code} (confirmed) cancelled by" in caplog.text
    assert "Ada" not in caplog.text  # no personal data in the log
    assert window.notifications_model.notices()[0].message.startswith(
        f"Booking {booking.code} (confirmed) cancelled"
    )
    assert view.model.records()[0].state == BookingState.CANCELLED
    assert not view.cancel_button.isEnabled()

    restarted = window_factory()  # notices of bookings survive a restart
    messages = [n.message for n in restarted.notifications_model.notices()]
    assert any(m.startswith(f"Booking {booking.code} (confirmed) cancelled") for m in messages)
    assert any(m.startswith(f"New booking {booking.code}") for m in messages)


def test_cancelling_a_checked_in_booking_from_its_dialog_says_so(
    qtbot, service, window_factory, operator_password, qloop
):
    booking = _book(service, hours_ahead=0.1)
    service.check_in(booking.code)
    window = window_factory()
    details = window.open_booking(booking.code)
    details.cancel_button.click()
    assert not details.isVisible()
    confirm = _sign_in(qtbot, window, operator_password)
    assert "The driver has already checked in." in confirm.text.text()
    confirm.ok.click()
    assert _state(booking) == BookingState.CANCELLED
    assert Event.select().where(Event.kind == BOOKING_CANCELLED).count() == 1


def test_an_early_check_in_asks_first(qtbot, service, window_factory):
    early = _book(service, hours_ahead=4)
    window = window_factory()
    view = window.bookings
    view.table.selectRow(0)
    with qtbot.waitSignal(window.booking_actions.dialog_opened) as opened:
        qtbot.mouseClick(view.check_in_button, Qt.MouseButton.LeftButton)
    confirm = opened.args[0]
    assert "starts in 4 h 00 min" in confirm.text.text()
    confirm.keep.click()
    assert _state(early) == BookingState.CONFIRMED
    qtbot.mouseClick(view.check_in_button, Qt.MouseButton.LeftButton)
    window.booking_actions.dialog.ok.click()
    assert _state(early) == BookingState.CHECKED_IN


def test_a_check_in_near_the_start_needs_no_question(qtbot, service, window_factory):
    soon = _book(service, hours_ahead=0.1)
    window = window_factory()
    view = window.bookings
    view.table.selectRow(0)
    qtbot.mouseClick(view.check_in_button, Qt.MouseButton.LeftButton)
    assert _state(soon) == BookingState.CHECKED_IN
    assert window.booking_actions.dialog is None


def test_search_by_booking_id_finds_it_on_any_date(qtbot, service, window_factory):
    today = _book(service, hours_ahead=1)
    later = _book(service, hours_ahead=24 * 9)
    window = window_factory()
    view = window.bookings
    assert [b.code for b in view.model.records()] == [today.code]
    view.search.setFocus()
    qtbot.keyClicks(view.search, today.code[:4].lower())
    assert view.proxy.rowCount() == 1  # a part of an ID filters the list shown
    view.search.clear()
    spaced = f"{later.code[:5]} {later.code[5:]}".lower()  # as a driver may read it out
    qtbot.keyClicks(view.search, spaced)
    assert view.proxy.rowCount() == 0  # not in the dates shown
    qtbot.keyClick(view.search, Qt.Key.Key_Return)
    assert view.selected().code == later.code
    assert view.first.date().toPython() == (NOW + timedelta(days=9)).date()

    view.search.clear()
    qtbot.keyClicks(view.search, "NOSUCHID")
    qtbot.keyClick(view.search, Qt.Key.Key_Return)
    assert "No booking has the ID 'NOSUCHID'" in view.message.text()


def test_a_booking_made_on_the_command_line_is_notified(
    qtbot, service, window_factory, db_path, station
):
    window = window_factory()
    assert Event.select().where(Event.kind == BOOKING_CREATED).count() == 0
    day = (NOW + timedelta(days=2)).date().isoformat()
    result = subprocess.run(
        [sys.executable, "-m", "evcms_desktop", "--db", str(db_path), "book", "--date", day,
         "--arrival", "17:00", "--duration", "60", "--energy", "10"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    window.bridge.event.emit(CsmsEvent(EventKind.BOOKINGS_CHANGED, "Bookings changed"))
    code = Booking.select().order_by(Booking.id.desc()).get().code
    assert window.notifications_model.notices()[0].message.startswith(f"New booking {code}")


def test_an_operator_erases_a_drivers_data_from_the_bookings_tab(
    qtbot, service, window_factory, operator_password, qloop
):
    booking = _book(service, hours_ahead=1, name="Ada Driver")
    window = window_factory()
    view = window.bookings
    view.table.selectRow(0)
    assert view.erase_button.isEnabled()
    qtbot.mouseClick(view.erase_button, Qt.MouseButton.LeftButton)
    confirm = _sign_in(qtbot, window, operator_password)
    assert "The bookings, their energy and prices are kept" in confirm.text.text()
    confirm.ok.click()
    kept = Booking.get_by_id(booking.id)
    assert kept.driver_name is None and kept.price_total == booking.price_total
    assert window.notifications_model.notices()[0].message.startswith(
        "Driver's details erased on request from 1 booking"
    )
    view.table.selectRow(0)
    assert not view.erase_button.isEnabled()  # nothing left to erase


def test_the_retention_is_set_in_settings(qtbot, service, window_factory):
    from evcms_desktop.store import driver_data

    window = window_factory()
    settings = window.settings
    assert settings.retention.value() == 90
    settings.retention.setValue(30)
    assert settings.save()
    assert driver_data.retention_days() == 30
