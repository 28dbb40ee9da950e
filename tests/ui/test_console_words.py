"""Labels that follow what is true: the role, the port, plurals, empty states, and a
booking form that says all it objects to at once."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTime

from evcms_desktop.store.models import Booking, ChargePoint, Connector
from evcms_desktop.ui.dialogs.booking import NewBookingDialog
from evcms_desktop.ui.roles import Role


def test_the_operator_note_and_settings_messages_follow_the_role(qtbot, window_factory):
    window = window_factory()
    note = window.chargers.panel.note
    assert not note.isHidden()
    window.session.set_role(Role.OPERATOR)
    assert note.isHidden()
    window.settings.charger_message.setText("Added CP-9.")
    window.session.set_role(Role.ATTENDANT)
    assert not note.isHidden()
    assert window.settings.charger_message.text() == ""


def test_settings_say_where_this_run_listens(qtbot, service, bus, credentials, clock):
    from evcms_desktop.ui.main_window import MainWindow
    from evcms_desktop.ui.roles import Session

    window = MainWindow(service, bus, Session(credentials), clock=clock,
                        server_text="Listening on ws://0.0.0.0:9123/ocpp/…")  # fmt: skip
    qtbot.addWidget(window)
    assert "9123" in window.settings.listening.text()


def test_an_empty_station_says_how_to_add_a_charger(qtbot, db, service, window_factory):
    Booking.delete().execute()
    Connector.delete().execute()
    ChargePoint.delete().execute()
    window = window_factory()
    window.chargers_model.reload()
    assert not window.chargers.empty.isHidden()
    assert "Settings > Chargers" in window.chargers.empty.text()
    assert "Charge-box simulator" in window.chargers.empty.text()


def test_the_form_shows_every_error_at_once_and_asks_about_a_huge_energy(qtbot, service):
    dialog = NewBookingDialog(service)
    qtbot.addWidget(dialog)
    dialog.show()
    form = dialog.flow.form
    assert "From 15 min to 24 h" in form.duration_hint.text()
    form.time.setTime(QTime(0, 0))  # in the past on the test clock (06:00)
    qtbot.keyClicks(form.energy, "lots")
    qtbot.mouseClick(dialog.show_plans, Qt.MouseButton.LeftButton)
    assert form.errors["energy"].isVisibleTo(dialog)
    assert form.errors["arrival"].isVisibleTo(dialog)  # not one at a time

    form.time.setTime(QTime(13, 0))
    form.energy.setText("300")
    qtbot.mouseClick(dialog.show_plans, Qt.MouseButton.LeftButton)
    assert dialog.flow.page == "form"
    assert "more than a car's battery holds" in form.errors["energy"].text()
    qtbot.mouseClick(dialog.show_plans, Qt.MouseButton.LeftButton)  # yes, really
    assert dialog.flow.page == "plans"


def test_the_dialog_shrinks_back_after_change_request(qtbot, service):
    dialog = NewBookingDialog(service)
    qtbot.addWidget(dialog)
    dialog.show()
    form = dialog.flow.form
    form.time.setTime(QTime(17, 0))
    form.energy.setText("20")
    dialog.show_plans.click()
    wide = dialog.width()
    dialog.back.click()
    qtbot.waitUntil(lambda: dialog.width() < wide)
    assert dialog.minimumSizeHint().width() < wide
