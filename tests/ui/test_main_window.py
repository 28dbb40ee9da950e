"""The console's main window against the store and an EventBus the test publishes to."""

from __future__ import annotations

import csv
from datetime import timedelta

from PySide6.QtCore import Qt

from evcms_desktop.csms.events import CsmsEvent, EventKind
from evcms_desktop.domain.validation import PlanRequest
from evcms_desktop.store.models import (
    Booking,
    BookingState,
    ChargePoint,
    ChargingTransaction,
    Connector,
)
from evcms_desktop.ui.dialogs.confirm import ConfirmDialog
from evcms_desktop.ui.dialogs.sign_in import SignInDialog
from evcms_desktop.ui.roles import Role
from tests.conftest import NOW
from tests.ui.conftest import FakeCommands


def _charging(station, ident="CP-A", number=1) -> ChargingTransaction:
    cp = ChargePoint.get(ChargePoint.ident == ident)
    cp.connected = True
    cp.save()
    Connector.update(status="Charging").where(
        (Connector.charge_point == cp) & (Connector.number == number)
    ).execute()
    return ChargingTransaction.create(
        charge_point=cp,
        connector_number=number,
        id_tag="TESTTAG",
        meter_start_wh=1000,
        started_at=NOW - timedelta(minutes=20),
    )


def _cell(window, ident, number, column):
    model = window.chargers_model
    return model.index(model.row_index(ident, number), model.column(column)).data()


def test_chargers_rows_change_in_place_and_notifications_arrive(
    qtbot, station, bus, window_factory
):
    window = window_factory()
    model = window.chargers_model
    assert [r.label for r in model.rows()] == ["CP-A #1", "CP-A #2", "CP-B #1", "CP-B #2"]
    assert _cell(window, "CP-A", 1, "Status") == "Offline"
    resets = []
    model.modelReset.connect(lambda: resets.append(1))

    bus.publish(CsmsEvent(EventKind.CHARGER_CONNECTED, "CP-A connected", "CP-A"))
    bus.publish(
        CsmsEvent(
            EventKind.STATUS_CHANGED,
            "CP-A #1 Charging",
            "CP-A",
            1,
            {"status": "Charging", "error_code": "NoError"},
        )
    )
    bus.publish(
        CsmsEvent(
            EventKind.METER_VALUES,
            "CP-A #1: 3 samples",
            "CP-A",
            1,
            {"transaction_id": None, "power_kw": 11.0, "soc": 42.0, "energy_wh": None},
        )
    )
    with qtbot.waitSignal(model.dataChanged, timeout=2000):
        pass
    qtbot.waitUntil(lambda: _cell(window, "CP-A", 1, "Status") == "Charging")
    assert _cell(window, "CP-B", 1, "Status") == "Offline"
    assert resets == []  # updated in place
    background = model.index(model.row_index("CP-A", 1), model.column("Status")).data(
        Qt.ItemDataRole.BackgroundRole
    )
    assert background.name() == "#d6e8ff"

    bus.publish(CsmsEvent(EventKind.FULLY_CHARGED, "CP-A #1: EV fully charged", "CP-A", 1))
    bus.publish(CsmsEvent(EventKind.CHARGER_DISCONNECTED, "CP-B went offline", "CP-B"))
    notices = [n.message for n in window.notifications_model.notices()]
    assert notices[:3] == ["CP-B went offline", "CP-A #1: EV fully charged", "CP-A connected"]
    assert window.statusBar().currentMessage() == "CP-B went offline"


def test_live_meter_values_fill_the_row_and_the_chart(qtbot, station, bus, window_factory):
    tx = _charging(station)
    window = window_factory()
    window.tabs.setCurrentWidget(window.chargers)
    window.chargers.select("CP-A", 1)
    assert window.chart.key == ("CP-A", 1)
    for i in range(3):
        bus.publish(
            CsmsEvent(
                EventKind.METER_VALUES,
                "",
                "CP-A",
                1,
                {"transaction_id": tx.id, "power_kw": 7.4, "soc": 50 + i, "energy_wh": 3500.0},
                NOW + timedelta(seconds=i),
            )
        )
    qtbot.waitUntil(lambda: _cell(window, "CP-A", 1, "SoC") == "52 %")
    assert _cell(window, "CP-A", 1, "kW") == "7.4 kW"
    assert window.chargers_model.row_for("CP-A", 1).energy_kwh == 2.5

    def soc_points():
        values = window.chart.soc_curve.getData()[1]
        return [] if values is None else list(values)

    qtbot.waitUntil(lambda: soc_points() == [50, 51, 52], timeout=3000)


def test_operator_action_in_attendant_mode_is_denied(
    qtbot, station, window_factory, operator_password, qloop
):
    tx = _charging(station)
    commands = FakeCommands()
    window = window_factory(commands)
    window.chargers.select("CP-A", 1)
    stop = window.chargers.panel.buttons["stop"]
    assert stop.isEnabled()

    qtbot.mouseClick(stop, Qt.MouseButton.LeftButton)
    dialog = window.actions.dialog
    assert isinstance(dialog, SignInDialog)
    assert dialog.isVisible()
    qtbot.keyClicks(dialog.password, "not the password")
    with qtbot.waitSignal(dialog.failed, timeout=5000):
        dialog.ok.click()
    assert dialog.error.text() == "Wrong password. 4 tries left."
    assert not window.session.is_operator

    with qtbot.waitSignal(window.actions.denied) as denied:
        dialog.reject()
    assert denied.args == ["Remote stop"]
    assert commands.calls == []
    assert "needs an operator sign-in" in window.notifications_model.notices()[0].message
    assert window.role_label.text() == "Attendant"
    stored = ChargingTransaction.get_by_id(tx.id)  # the session was never touched
    assert (stored.state, stored.stopped_at, stored.stop_reason) == ("active", None, None)


def test_operator_signs_in_confirms_and_sees_the_answer(
    qtbot, station, window_factory, operator_password, qloop
):
    tx = _charging(station)
    commands = FakeCommands(answer="Rejected")
    window = window_factory(commands)
    window.chargers.select("CP-A", 1)
    qtbot.mouseClick(window.chargers.panel.buttons["stop"], Qt.MouseButton.LeftButton)
    sign_in = window.actions.dialog
    qtbot.keyClicks(sign_in.password, operator_password)
    with qtbot.waitSignal(window.actions.dialog_opened, timeout=5000) as opened:
        sign_in.ok.click()
    assert window.session.is_operator
    assert window.role_label.text() == "Operator"
    confirm = opened.args[0]
    assert isinstance(confirm, ConfirmDialog)
    with qtbot.waitSignal(window.actions.finished, timeout=5000) as finished:
        confirm.ok.click()
    assert commands.calls == [("remote_stop", "CP-A", tx.id)]
    assert finished.args[0].status == "Rejected"
    assert window.chargers.panel.result.text().startswith("Remote stop on CP-A #1: Rejected")


def test_timeline_block_opens_the_booking_which_can_be_cancelled(
    qtbot, station, service, window_factory, operator_password, qloop
):
    outcome = service.plan(
        PlanRequest(arrival=NOW + timedelta(hours=6), duration=timedelta(hours=1), energy_kwh=10)
    )
    booking = service.confirm(outcome, outcome.plans[0])
    window = window_factory()
    timeline = window.today.timeline
    timeline.resize(1000, timeline.sizeHint().height())
    timeline.repaint()
    rect = timeline.block_rect(booking.code)
    assert rect is not None
    qtbot.mouseClick(timeline, Qt.MouseButton.LeftButton, pos=rect.center().toPoint())
    details = window.dialog
    assert details.windowTitle() == f"Booking {booking.code}"
    details.cancel_button.click()
    sign_in = window.actions.dialog
    qtbot.keyClicks(sign_in.password, operator_password)
    with qtbot.waitSignal(window.booking_actions.dialog_opened, timeout=5000) as opened:
        sign_in.ok.click()
    opened.args[0].ok.click()
    assert Booking.get_by_id(booking.id).state == BookingState.CANCELLED
    qtbot.waitUntil(lambda: booking.code not in [b.code for b in timeline.blocks])


def test_bookings_tab_checks_in_and_sessions_export_csv(
    qtbot, station, service, window_factory, tmp_path
):
    outcome = service.plan(
        PlanRequest(arrival=NOW + timedelta(minutes=10), duration=timedelta(hours=1), energy_kwh=10)
    )
    booking = service.confirm(outcome, outcome.plans[0])
    tx = _charging(station)
    window = window_factory()
    view = window.bookings
    assert [b.code for b in view.model.records()] == [booking.code]
    view.table.selectRow(0)
    view.check_in_button.click()
    assert Booking.get_by_id(booking.id).state == BookingState.CHECKED_IN
    assert view.model.records()[0].state == BookingState.CHECKED_IN

    path = tmp_path / "sessions.csv"
    window.sessions.export(path)
    rows = list(csv.DictReader(path.open()))
    assert [(r["transaction_id"], r["charger"], r["end"]) for r in rows] == [
        (str(tx.id), "CP-A", "")
    ]


def test_tools_menu_opens_the_charge_box_simulator(qtbot, station, window_factory):
    window = window_factory()
    window.simulator_action.trigger()
    assert len(window.simulators) == 1
    simulator = window.simulators[0]
    assert simulator.isVisible()
    assert simulator.windowTitle() == "Charge-box simulator (real time)"
    simulator.close()
    qtbot.waitUntil(lambda: window.simulators == [])


def test_pending_charger_is_approved_by_an_operator(qtbot, station, window_factory):
    ChargePoint.create(ident="CP-NEW", station=None, state="pending", connected=True)
    approved = []
    window = window_factory()
    window.actions.approver = lambda ident, site: approved.append((ident, site.name))
    window.session.set_role(Role.OPERATOR)
    window.chargers.select("CP-NEW", 0)
    approve = window.chargers.panel.buttons["approve"]
    assert approve.isVisibleTo(window.chargers.panel)
    assert _cell(window, "CP-NEW", 0, "Status") == "Pending approval"
    qtbot.mouseClick(approve, Qt.MouseButton.LeftButton)
    confirm = window.actions.dialog
    assert isinstance(confirm, ConfirmDialog)
    with qtbot.waitSignal(window.actions.finished) as finished:
        confirm.ok.click()
    assert approved == [("CP-NEW", station.name)]
    assert finished.args[0].ok


def test_ocpp_log_filters_by_charger_and_action(qtbot, station, bus, window_factory):
    window = window_factory()
    for ident, action in (("CP-A", "Heartbeat"), ("CP-B", "Heartbeat"), ("CP-A", "MeterValues")):
        bus.publish(
            CsmsEvent(
                EventKind.OCPP_MESSAGE,
                "",
                ident,
                data={"direction": "in", "action": action, "payload": {"x": 1}},
            )
        )
    view = window.ocpp_log
    qtbot.waitUntil(lambda: view.model.rowCount() == 3)
    assert view.model.index(0, 3).data() == "MeterValues"  # newest first
    view.select_filter("CP-A")
    assert view.proxy.rowCount() == 2
    view.select_filter("CP-A", "Heartbeat")
    assert view.proxy.rowCount() == 1
    assert view.proxy.index(0, 4).data() == '{"x":1}'
