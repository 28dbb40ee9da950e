"""The booking flow through the real dialog, against a real SQLite file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from PySide6.QtCore import QDate, Qt, QTime
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QDateEdit, QLabel

from evcms_desktop.domain.validation import BookingRequestError, PlanRequest, slot_length_error
from evcms_desktop.store.models import Booking, BookingState
from evcms_desktop.ui.dialogs.booking import NewBookingDialog


def test_booking_flow_shows_plans_stores_choice_and_shows_id(qtbot, service):
    dialog = NewBookingDialog(service)
    qtbot.addWidget(dialog)
    dialog.open()
    form = dialog.flow.form
    form.time.setTime(QTime(9, 0))  # Peak On in London on a Tuesday
    qtbot.keyClicks(form.energy, "15")

    with qtbot.waitSignal(dialog.flow.page_changed) as shown:
        qtbot.mouseClick(dialog.show_plans, Qt.MouseButton.LeftButton)
    assert shown.args == ["plans"]

    cards = dialog.flow.plans.cards
    assert [c.plan.kind.value for c in cards] == [1, 2, 3, 4]
    cheapest = [c for c in cards if c.property("cheapest")]
    assert len(cheapest) == 1
    assert cheapest[0].plan.kind.value in (3, 4)  # an Eco plan, in Peak Off
    assert cheapest[0].plan.price.total == min(c.plan.price.total for c in cards)
    assert Booking.select().count() == 0  # nothing is written before a choice

    with qtbot.waitSignal(dialog.booked) as booked:
        qtbot.mouseClick(cheapest[0].choose_button, Qt.MouseButton.LeftButton)
    code = booked.args[0]
    stored = Booking.get(Booking.code == code)
    assert stored.plan == cheapest[0].plan.kind.value
    assert stored.state == BookingState.CONFIRMED
    assert stored.start == cheapest[0].plan.start.astimezone(UTC)
    assert stored.energy_kwh == 15
    assert dialog.flow.page == "done"
    assert dialog.flow.confirmation.code.text() == code
    assert dialog.flow.confirmation.code.isVisible()

    dialog.flow.confirmation.copy_button.click()
    assert QGuiApplication.clipboard().text() == code
    with qtbot.waitSignal(dialog.accepted):
        dialog.flow.confirmation.done_button.click()


def test_invalid_input_is_refused_with_messages_beside_the_fields(qtbot, service):
    dialog = NewBookingDialog(service)
    qtbot.addWidget(dialog)
    dialog.open()
    form = dialog.flow.form
    qtbot.keyClicks(form.energy, "lots")
    assert form.errors["energy"].isVisible()  # explained while typing
    assert "number" in form.errors["energy"].text()

    qtbot.mouseClick(dialog.show_plans, Qt.MouseButton.LeftButton)
    assert dialog.flow.page == "form"

    form.energy.clear()
    form.time.setTime(QTime(5, 0))  # before the test clock's 06:00
    qtbot.mouseClick(dialog.show_plans, Qt.MouseButton.LeftButton)
    assert dialog.flow.page == "form"
    assert "has passed" in form.errors["arrival"].text()
    assert form.errors["arrival"].isVisible()
    assert "energy" in form.errors["energy"].text().lower()
    assert Booking.select().count() == 0


def test_cancel_on_the_plans_leaves_nothing_behind(qtbot, service):
    dialog = NewBookingDialog(service)
    qtbot.addWidget(dialog)
    dialog.open()
    qtbot.keyClicks(dialog.flow.form.energy, "10")
    qtbot.mouseClick(dialog.show_plans, Qt.MouseButton.LeftButton)
    assert dialog.flow.plans.cards
    with qtbot.waitSignal(dialog.rejected):
        qtbot.mouseClick(dialog.cancel, Qt.MouseButton.LeftButton)
    assert Booking.select().count() == 0


def test_a_slot_taken_meanwhile_is_explained_and_plans_refreshed(qtbot, service, station):
    dialog = NewBookingDialog(service)
    qtbot.addWidget(dialog)
    dialog.open()
    form = dialog.flow.form
    form.connector.setCurrentIndex(1)  # one connector only
    form.time.setTime(QTime(13, 0))
    qtbot.keyClicks(form.energy, "10")
    qtbot.mouseClick(dialog.show_plans, Qt.MouseButton.LeftButton)
    card = dialog.flow.plans.cards[0]
    # someone else takes the same slot first
    rival = service.plan(dialog.flow.outcome.request)
    service.confirm(rival, rival.plan(card.plan.kind))

    qtbot.mouseClick(card.choose_button, Qt.MouseButton.LeftButton)
    assert dialog.flow.page == "plans"
    assert "just been taken" in dialog.flow.plans.problem.text()
    assert dialog.flow.plans.cards[0].plan.start > card.plan.start
    assert Booking.select().count() == 1
    assert datetime(2026, 12, 1, tzinfo=UTC) < card.plan.start


def test_i_can_come_earlier_lets_an_eco_plan_start_before_the_arrival(qtbot, service):
    dialog = NewBookingDialog(service)
    qtbot.addWidget(dialog)
    dialog.open()
    form = dialog.flow.form
    form.time.setTime(QTime(17, 0))  # Peak On (16:00-22:00) on the test's Tuesday
    qtbot.keyClicks(form.energy, "8.8")
    assert not form.earliest.isEnabled()
    qtbot.mouseClick(dialog.show_plans, Qt.MouseButton.LeftButton)
    eco = {c.plan.kind.value: c.plan for c in dialog.flow.plans.cards if c.plan.kind.value > 2}
    assert all(p.start >= datetime(2026, 12, 1, 17, tzinfo=UTC) for p in eco.values())

    dialog.flow.back()
    form.earlier.setChecked(True)
    assert form.earliest.isEnabled()
    form.earliest.setTime(QTime(14, 0))
    assert form.request().earliest == datetime(2026, 12, 1, 14, tzinfo=UTC)
    qtbot.mouseClick(dialog.show_plans, Qt.MouseButton.LeftButton)
    eco = {c.plan.kind.value: c.plan for c in dialog.flow.plans.cards if c.plan.kind.value > 2}
    assert eco[3].start == datetime(2026, 12, 1, 15, tzinfo=UTC)  # Peak Off before 16:00

    dialog.flow.back()
    form.earliest.setTime(QTime(5, 30))  # before the test clock's 06:00
    qtbot.mouseClick(dialog.show_plans, Qt.MouseButton.LeftButton)
    assert dialog.flow.page == "form"
    assert form.errors["earliest"].text() == "The earlier time has passed."
    assert form.errors["earliest"].isVisible()


def test_a_slot_longer_than_its_energy_needs_is_explained(qtbot, service):
    """A 24-hour slot for 0.2 kWh was offered; the dialog says what `book` says."""
    dialog = NewBookingDialog(service)
    qtbot.addWidget(dialog)
    dialog.open()
    form = dialog.flow.form
    form.time.setTime(QTime(9, 0))
    form.duration.setValue(24 * 60)
    qtbot.keyClicks(form.energy, "0.2")
    qtbot.mouseClick(dialog.show_plans, Qt.MouseButton.LeftButton)
    assert dialog.flow.page == "form"
    expected = slot_length_error(timedelta(hours=24), Decimal("0.2"))
    assert expected is not None and form.errors["duration"].text() == expected
    assert form.errors["duration"].isVisible()
    form.duration.setValue(12 * 60)
    form.energy.clear()
    qtbot.keyClicks(form.energy, "12")
    qtbot.mouseClick(dialog.show_plans, Qt.MouseButton.LeftButton)
    assert dialog.flow.page == "plans"
    assert Booking.select().count() == 0


def test_an_energy_too_large_to_use_is_refused_with_the_command_lines_words(qtbot, service):
    dialog = NewBookingDialog(service)
    qtbot.addWidget(dialog)
    dialog.open()
    form = dialog.flow.form
    form.time.setTime(QTime(13, 0))
    qtbot.keyClicks(form.energy, "999999")  # the largest amount taken: planned, not a crash
    for _ in range(2):  # past the question about a car's battery
        qtbot.mouseClick(dialog.show_plans, Qt.MouseButton.LeftButton)
    assert dialog.flow.page == "form"
    assert "delivers at most" in form.errors["energy"].text()
    form.energy.clear()
    qtbot.keyClicks(form.energy, "1e309")
    qtbot.mouseClick(dialog.show_plans, Qt.MouseButton.LeftButton)
    assert dialog.flow.page == "form"
    assert form.errors["energy"].text() == (
        "1e309 is more than this station can use: at most 1000000."
    )


def test_the_date_field_takes_the_command_lines_dates_and_says_so(qtbot, service, tmp_path):
    dialog = NewBookingDialog(service)
    qtbot.addWidget(dialog)
    dialog.open()
    form = dialog.flow.form
    form.date.setDate(QDate(9999, 12, 31))  # Qt's own last date, once typed in silence
    assert form.date.date() == QDate(2099, 12, 31)
    assert form.date_hint.isVisible()
    assert form.date_hint.text() == "Use a date from 2000-01-01 to 2099-12-31."
    dialog.grab().save(str(tmp_path / "form.png"))
    qtbot.keyClicks(form.energy, "15")
    qtbot.mouseClick(dialog.show_plans, Qt.MouseButton.LeftButton)
    assert dialog.flow.page == "plans"  # the last day plans, said with its year
    assert "Thu 31 Dec 2099 " in dialog.flow.plans.asked.text()
    shown = [label.text() for label in dialog.flow.plans.findChildren(QLabel)]
    assert "Thu 31 Dec 2099" in shown

    far = datetime(9999, 12, 31, 12, tzinfo=UTC)
    request = PlanRequest(far, timedelta(hours=1), Decimal(15))
    with pytest.raises(BookingRequestError) as refused:
        service.plan(request)  # the store, asked by anything else, says why too
    assert [(e.field, e.message) for e in refused.value.errors] == [
        ("arrival", "Use a date from 2000-01-01 to 2099-12-31.")
    ]


def test_every_date_field_of_the_console_stops_at_the_last_date(window_factory):
    window = window_factory()
    edits = window.findChildren(QDateEdit)
    assert len(edits) >= 6  # bookings, sessions, demand, analysis and the form's
    assert all(e.maximumDate() == QDate(2099, 12, 31) for e in edits)
    assert all(e.minimumDate() == QDate(2000, 1, 1) for e in edits)
