"""A charger's tools against the real central system and a simulated charger: the
deviations it needed tolerated, its configuration read and edited, its composite
schedule drawn, and TriggerMessage / ClearCache / DataTransfer."""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

import pytest
from websockets.asyncio.client import connect

from evcms_desktop.simulator.chargebox import ChargeBox
from evcms_desktop.store.deviations import deviation_totals
from evcms_desktop.ui.dialogs.charger_tools import ChargerToolsDialog, check_value
from evcms_desktop.ui.main_window import MainWindow
from evcms_desktop.ui.models.chargers import ChargerRow
from evcms_desktop.ui.roles import Role, Session
from tests.ui.conftest import run

LONDON = ZoneInfo("Europe/London")
PROFILE = {
    "chargingProfileId": 3,
    "stackLevel": 1,
    "chargingProfilePurpose": "TxDefaultProfile",
    "chargingProfileKind": "Absolute",
    "chargingSchedule": {
        "chargingRateUnit": "W",
        "startSchedule": "2020-01-01T00:00:00Z",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7400}],
    },
}


@pytest.fixture
def box(qtbot, central):
    charger = ChargeBox("CP-A", f"ws://127.0.0.1:{central.port}/ocpp")
    run(qtbot, charger.connect())
    run(qtbot, charger.boot())
    yield charger
    run(qtbot, charger.close())


def _cells(table, column):
    return [table.item(r, column).text() for r in range(table.rowCount())]


def test_the_tolerated_tab_lists_what_the_charger_needed(qtbot, central):
    async def quirky() -> None:
        async with connect(f"ws://127.0.0.1:{central.port}/ocpp/CP-A") as ws:
            frame = [
                2,
                "b",
                "BootNotification",
                {"chargePointVendor": "V", "chargePointModel": "M", "x": 1},
            ]
            for _ in range(2):
                await ws.send(json.dumps(frame))
                await ws.recv()

    run(qtbot, quirky())
    central.tick()  # the counts are written on the store writer's thread
    qtbot.waitUntil(lambda: sum(deviation_totals().get("CP-A", {}).values()) == 3, timeout=5000)
    dialog = ChargerToolsDialog("CP-A", 1, central.commands, LONDON)
    qtbot.addWidget(dialog)
    assert _cells(dialog.deviations, 0) == ["extra_field", "no_subprotocol"]
    assert _cells(dialog.deviations, 2) == ["2", "1"]
    assert "ignored x" in dialog.deviations.item(0, 4).text()
    assert "read as the central system is set" in dialog.reading.text()


def test_configuration_is_read_checked_and_changed(qtbot, central, box):
    dialog = ChargerToolsDialog("CP-A", 1, central.commands, LONDON)
    qtbot.addWidget(dialog)
    dialog.read_configuration()
    qtbot.waitUntil(lambda: dialog.config_table.rowCount() > 0)
    keys = _cells(dialog.config_table, 0)
    assert "HeartbeatInterval" in keys
    assert _cells(dialog.config_table, 2)[keys.index("NumberOfConnectors")] == "read-only"
    dialog.config_table.selectRow(keys.index("NumberOfConnectors"))
    assert not dialog.config_apply.isEnabled()
    assert "read-only" in dialog.config_result.text()
    dialog.config_table.selectRow(keys.index("HeartbeatInterval"))
    dialog.config_value.setText("soon")
    dialog.change_configuration()
    assert "whole number" in dialog.config_result.text()
    assert box.configuration["HeartbeatInterval"][0] == "300"  # nothing was sent
    dialog.config_value.setText("120")
    dialog.change_configuration()
    qtbot.waitUntil(
        lambda: (
            "Accepted" in dialog.config_result.text() or "keys read" in dialog.config_result.text()
        )
    )
    assert box.configuration["HeartbeatInterval"][0] == "120"


def test_an_unknown_key_is_explained(qtbot, central, box):
    dialog = ChargerToolsDialog("CP-A", 1, central.commands, LONDON)
    qtbot.addWidget(dialog)
    dialog._config = {"VendorMagic": ("1", False)}
    dialog.config_key.setText("VendorMagic")
    dialog.config_value.setText("2")
    dialog.change_configuration()
    qtbot.waitUntil(lambda: "NotSupported" in dialog.config_result.text())
    assert "does not know this key" in dialog.config_result.text()


def test_the_composite_schedule_is_drawn(qtbot, central, box):
    assert run(qtbot, central.commands.set_charging_profile("CP-A", 1, PROFILE)).ok
    dialog = ChargerToolsDialog("CP-A", 1, central.commands, LONDON)
    qtbot.addWidget(dialog)
    dialog.read_schedule()
    qtbot.waitUntil(lambda: "period" in dialog.schedule_result.text())
    xs, ys = dialog.schedule_curve.getData()
    assert list(ys) == [7.4]
    assert xs[-1] - xs[0] == 6 * 3600
    assert "lowest 7.4 kW" in dialog.schedule_result.text()


def test_other_commands_are_answered(qtbot, central, box):
    dialog = ChargerToolsDialog("CP-A", 1, central.commands, LONDON)
    qtbot.addWidget(dialog)
    dialog.trigger_message.setCurrentText("Heartbeat")
    dialog.trigger()
    qtbot.waitUntil(lambda: "Accepted" in dialog.command_result.text())
    dialog.clear_cache()
    qtbot.waitUntil(lambda: dialog.command_result.text().startswith("ClearCache: Accepted"))
    dialog.data_transfer()
    assert "needs a vendorId" in dialog.command_result.text()
    dialog.vendor_id.setText("com.example")
    dialog.data_transfer()
    qtbot.waitUntil(lambda: "UnknownVendorId" in dialog.command_result.text())


@pytest.mark.parametrize(
    ("key", "old", "value", "refused"),
    [
        ("HeartbeatInterval", "300", "120", False),
        ("HeartbeatInterval", "300", "-5", True),
        ("AuthorizeRemoteTxRequests", "true", "false", False),
        ("AuthorizeRemoteTxRequests", "true", "yes", True),
        ("VendorLabel", "Bay 4", "Bay 5", False),
        ("VendorLabel", "Bay 4", "x" * 501, True),
    ],
)
def test_values_are_checked_before_they_are_sent(key, old, value, refused):
    assert (check_value(key, old, value) is not None) == refused


def test_the_chargers_tab_opens_the_tools_for_an_operator(
    qtbot, db, station, bus, central, box, credentials, service
):
    session = Session(credentials)
    window = MainWindow(service, bus, session, commands=central.commands)
    qtbot.addWidget(window)
    row = ChargerRow("CP-A", 1, None, pending=False, connected=True, status="Available")
    window.chargers.panel.set_row(row)
    assert window.chargers.panel.buttons["tools"].isEnabled()
    window.chargers.panel.buttons["tools"].click()
    assert type(window.actions.dialog).__name__ == "SignInDialog"  # attendant: sign in first
    window.actions.dialog.reject()
    session.set_role(Role.OPERATOR)
    window.chargers.panel.buttons["tools"].click()
    tools = window.actions.dialog
    assert isinstance(tools, ChargerToolsDialog)
    assert tools.ident == "CP-A" and tools.windowTitle() == "Charger CP-A"
    tools.reject()


def test_firmware_and_diagnostics_with_their_progress(qtbot, central, box, tmp_path):
    firmware = tmp_path / "outside" / "fw 2.1.bin"
    firmware.parent.mkdir()
    firmware.write_bytes(b"new firmware" * 1000)
    dialog = ChargerToolsDialog("CP-A", 1, central.commands, LONDON, transfers=central.transfers)
    qtbot.addWidget(dialog)
    assert not dialog.firmware_button.isEnabled()
    assert "No firmware file yet" in dialog.firmware_state.text()
    dialog.add_firmware(firmware)
    assert dialog.firmware_choice.currentText() == "fw_2.1.bin"
    assert dialog.firmware_button.isEnabled()
    dialog.update_firmware()
    qtbot.waitUntil(lambda: "Installed" in dialog.firmware_state.text(), timeout=20_000)
    assert dialog.firmware_state.text() == "Firmware fw_2.1.bin: Installed"
    assert box.firmware == firmware.read_bytes()
    shown = _cells(dialog.steps, 2)
    for status in ("Installed", "Installing", "Downloaded", "Downloading", "Requested"):
        assert status in shown
    assert shown[0] == "Installed"  # newest first
    dialog.get_diagnostics()
    qtbot.waitUntil(lambda: dialog.received.rowCount() == 1, timeout=20_000)
    qtbot.waitUntil(lambda: "Uploaded" in dialog.diagnostics_state.text(), timeout=20_000)
    assert "CP-A-diagnostics.log is coming" in dialog.transfer_result.text()
    assert dialog.received.item(0, 1).text() == "4096"
    dialog.received.selectRow(0)
    assert dialog.received_text.toPlainText().startswith("CP-A diagnostics at")


def test_firmware_and_diagnostics_without_a_server_say_so(qtbot):
    dialog = ChargerToolsDialog("CP-A", 1, None, LONDON)
    qtbot.addWidget(dialog)
    assert not dialog.firmware_button.isEnabled()
    assert not dialog.diagnostics_button.isEnabled()
    assert dialog.firmware_state.text() == (
        "Firmware and diagnostics are not served by this console."
    )


def test_reservations_are_made_shown_per_connector_and_cancelled(qtbot, central, box):
    dialog = ChargerToolsDialog("CP-A", 2, central.commands, LONDON)
    qtbot.addWidget(dialog)
    assert _cells(dialog.reservations, 0) == ["#1", "#2"]
    assert _cells(dialog.reservations, 2) == ["none", "none"]
    dialog.reserve_id_tag.setText("")
    dialog.reserve()
    assert "needs an idTag" in dialog.reservation_result.text()
    dialog.reserve_id_tag.setText("FLEET-7")
    dialog.reserve_minutes.setValue(30)
    dialog.reserve()
    qtbot.waitUntil(lambda: "ReserveNow #2" in dialog.reservation_result.text(), timeout=10_000)
    assert dialog.reservation_result.text() == "ReserveNow #2 for FLEET-7: Accepted, reserved"
    assert box.connectors[2].status == "Reserved"
    rid = box.connectors[2].reservation
    assert rid is not None and rid >= 1_000_000_000

    def shown() -> list[str]:
        dialog.load_reservations()  # the charger's StatusNotification reaches the store
        return _cells(dialog.reservations, 1)

    qtbot.waitUntil(lambda: shown()[1] == "Reserved", timeout=10_000)
    assert _cells(dialog.reservations, 2) == ["none", str(rid)]
    assert _cells(dialog.reservations, 3)[1] == "FLEET-7"
    dialog.cancel_reservation()
    assert "Select a connector" in dialog.reservation_result.text()  # nothing selected
    dialog.reservations.selectRow(1)
    dialog.cancel_reservation()
    qtbot.waitUntil(lambda: "CancelReservation" in dialog.reservation_result.text(), timeout=10_000)
    assert dialog.reservation_result.text() == f"CancelReservation {rid}: Accepted, cancelled"
    assert box.connectors[2].reservation is None
    qtbot.waitUntil(lambda: shown()[1] == "Available", timeout=10_000)
    assert _cells(dialog.reservations, 2) == ["none", "none"]
    # A charger with its connector in use answers Occupied, said in words.
    box.connectors[1].transaction = object()  # type: ignore[assignment]
    dialog.reserve_connector.setValue(1)
    dialog.reserve()
    qtbot.waitUntil(lambda: "ReserveNow #1" in dialog.reservation_result.text(), timeout=10_000)
    assert dialog.reservation_result.text() == (
        "ReserveNow #1 for FLEET-7: Occupied, the connector is in use"
    )
    box.connectors[1].transaction = None
