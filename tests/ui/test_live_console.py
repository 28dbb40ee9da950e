"""The console against the real central system and simulated chargers over real sockets."""

from __future__ import annotations

from datetime import timedelta

import pytest
from PySide6.QtCore import Qt

from evcms_desktop.csms.events import EventKind
from evcms_desktop.domain.validation import PlanRequest
from evcms_desktop.simulator.chargebox import Battery, ChargeBox
from evcms_desktop.store.bookings import BookingService
from evcms_desktop.store.models import ChargePoint, ChargingTransaction, utcnow
from evcms_desktop.ui.dialogs.confirm import ConfirmDialog
from evcms_desktop.ui.dialogs.remote_start import RemoteStartDialog
from evcms_desktop.ui.main_window import MainWindow
from evcms_desktop.ui.roles import Role, Session
from tests.ui.conftest import run


@pytest.fixture
def box(qtbot, central):
    charger = ChargeBox(
        "CP-A",
        f"ws://127.0.0.1:{central.port}/ocpp",
        connectors=2,
        meter_interval=0.2,
        time_scale=60,
        battery=lambda: Battery(soc=40.0),
    )
    yield charger
    run(qtbot, charger.close())


def _cell(window, column, ident="CP-A", number=1):
    model = window.chargers_model
    i = model.row_index(ident, number)
    return None if i is None else model.index(i, model.column(column)).data()


def test_remote_start_and_stop_from_the_console(qtbot, db, station, bus, central, box, credentials):
    service = BookingService(db, station)  # the real clock, as the central system's
    outcome = service.plan(
        PlanRequest(arrival=utcnow(), duration=timedelta(hours=1), energy_kwh=10)
    )
    booking = service.confirm(outcome, outcome.plan(outcome.plans[0].kind))
    session = Session(credentials)
    session.set_role(Role.OPERATOR)
    window = MainWindow(service, bus, session, commands=central.commands, approver=central.approve)
    qtbot.addWidget(window)
    window.show()
    window.tabs.setCurrentWidget(window.chargers)

    async def plug_in():
        await box.connect()
        await box.boot()
        for connector in (1, 2):
            await box.status(connector, "Available")

    run(qtbot, plug_in())
    qtbot.waitUntil(lambda: _cell(window, "Status") == "Available", timeout=5000)
    assert ChargePoint.get(ChargePoint.ident == "CP-A").connected

    row_cp = booking.connector.charge_point.ident, booking.connector.number
    window.chargers.select(*row_cp)
    start = window.chargers.panel.buttons["start"]
    assert start.isEnabled()
    qtbot.mouseClick(start, Qt.MouseButton.LeftButton)
    dialog = window.actions.dialog
    assert isinstance(dialog, RemoteStartDialog)
    assert dialog.chosen_tag == booking.code
    with qtbot.waitSignal(window.actions.finished, timeout=10_000) as started:
        dialog.ok.click()
    assert started.args[0].status == "Accepted"

    qtbot.waitUntil(lambda: _cell(window, "Status", *row_cp) == "Charging", timeout=10_000)
    qtbot.waitUntil(lambda: _cell(window, "Booking", *row_cp) == booking.code, timeout=5000)
    qtbot.waitUntil(
        lambda: (window.chargers_model.row_for(*row_cp).power_kw or 0) > 0, timeout=5000
    )
    kinds = [n.kind for n in window.notifications_model.notices()]
    assert EventKind.CHARGING_STARTED.value in kinds
    qtbot.waitUntil(window.chargers.panel.buttons["stop"].isEnabled, timeout=2000)

    qtbot.mouseClick(window.chargers.panel.buttons["stop"], Qt.MouseButton.LeftButton)
    confirm = window.actions.dialog
    assert isinstance(confirm, ConfirmDialog)
    with qtbot.waitSignal(window.actions.finished, timeout=10_000) as stopped:
        confirm.ok.click()
    assert stopped.args[0].status == "Accepted"
    qtbot.waitUntil(
        lambda: (
            EventKind.SESSION_STOPPED.value
            in [n.kind for n in window.notifications_model.notices()]
        ),
        timeout=10_000,
    )
    qtbot.waitUntil(lambda: _cell(window, "Booking", *row_cp) == "–", timeout=5000)
    qtbot.waitUntil(lambda: _cell(window, "Status", *row_cp) == "Finishing", timeout=5000)
    tx = ChargingTransaction.get()
    assert tx.stop_reason == "Remote"
    assert tx.price_total is not None
    messages = [n.message for n in window.notifications_model.notices()]
    assert any("Remote stop on CP-A #1: Accepted" in m for m in messages)
    assert window.statusBar().currentMessage()
    window.close()


def test_quitting_with_a_connected_charger_asks_first(
    qtbot, db, station, bus, central, box, credentials
):
    window = MainWindow(BookingService(db, station), bus, Session(credentials))
    qtbot.addWidget(window)
    window.show()
    assert window.quit_warning() is None
    run(qtbot, box.connect())
    run(qtbot, box.boot())
    qtbot.waitUntil(lambda: window.quit_warning() is not None, timeout=5000)
    closed = []
    window.closed.connect(lambda: closed.append(1))

    assert not window.close()
    dialog = window.dialog
    assert isinstance(dialog, ConfirmDialog)
    assert dialog.text.text().startswith("1 charger is connected.")
    assert "Quitting stops the central system" in dialog.text.text()
    dialog.keep.click()
    assert window.isVisible() and not closed

    window.close()
    with qtbot.waitSignal(window.closed, timeout=5000):
        window.dialog.ok.click()
    assert not window.isVisible()


def test_closing_a_connected_simulator_window_leaves_no_failed_task(
    qtbot, db, station, bus, central, credentials
):
    window = MainWindow(
        BookingService(db, station), bus, Session(credentials),
        ocpp_url=f"ws://127.0.0.1:{central.port}/ocpp",
    )  # fmt: skip
    qtbot.addWidget(window)
    simulator = window.open_simulator()
    assert simulator.windowTitle() == "Charge-box simulator (real time)"
    assert "billed" in simulator.speed_note.text()
    simulator.ident_edit.setText("CP-B")
    simulator.connect_button.click()
    qtbot.waitUntil(lambda: simulator.box is not None and simulator.box.connected, timeout=5000)
    box = simulator.box
    simulator.close()  # deleted on close; its disconnect still logs as it runs
    tasks = set(simulator._tasks)
    assert tasks
    qtbot.waitUntil(lambda: all(t.done() for t in tasks), timeout=5000)
    assert all(t.exception() is None for t in tasks)
    assert not box.connected


def test_settings_shows_the_port_the_console_listens_on(
    qtbot, db, station, bus, central, credentials
):
    """The embedded central system listens on a port of its own choosing here (port 0): the
    Listening port field says that one, not the stored setting's 9000."""
    window = MainWindow(
        BookingService(db, station), bus, Session(credentials), listening_port=central.port,
        server_text=f"Listening on {central.url(central.config.host)}/…",
    )  # fmt: skip
    qtbot.addWidget(window)
    assert central.port != 9000
    assert window.settings.port.value() == central.port
    assert window.settings.server_form.isRowVisible(window.settings.port)


def test_settings_lists_a_charger_online_once_it_connects(
    qtbot, db, station, bus, central, box, credentials
):
    """Settings > Chargers said "offline" of a charger that had connected since the page
    was loaded; it follows connections as the other pages do."""
    window = MainWindow(BookingService(db, station), bus, Session(credentials))
    qtbot.addWidget(window)
    window.show()
    window.tabs.setCurrentWidget(window.settings)
    listed = window.settings.chargers

    def line(ident: str) -> str:
        texts = [listed.item(i).text() for i in range(listed.count())]
        return next(t for t in texts if t.startswith(ident + " "))

    assert "offline" in line("CP-A")
    run(qtbot, box.connect())
    run(qtbot, box.boot())
    qtbot.waitUntil(lambda: ", online," in line("CP-A"), timeout=10_000)
    run(qtbot, box.close())
    qtbot.waitUntil(lambda: ", offline," in line("CP-A"), timeout=10_000)
