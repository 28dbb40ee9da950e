"""Screenshots of a charger's tools (what its frames needed tolerated, its configuration
editor, its charging profiles drawn as the composite schedule) and of the Sessions tab
with each booked session's quote beside its bill.

A real central system on a throw-away database; a charger first sends a few quirky
frames of the kinds seen in the field, then the simulated charger connects under the same
id and answers the commands. Saves PNGs into docs/. Needs a display; on a server:

    xvfb-run -a -s "-screen 0 1366x768x24" .venv/bin/python tools/charger_screenshots.py
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import tempfile
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import peewee
import qasync
from PySide6.QtWidgets import QApplication
from websockets.asyncio.client import connect

from evcms_desktop.csms import charger_admin
from evcms_desktop.csms.protocol import format_timestamp
from evcms_desktop.csms.server import CentralSystem, CsmsConfig
from evcms_desktop.domain.plans import PlanKind
from evcms_desktop.domain.validation import PlanRequest
from evcms_desktop.simulator.chargebox import ChargeBox
from evcms_desktop.store.bookings import BookingService
from evcms_desktop.store.database import open_database
from evcms_desktop.store.models import (
    ChargePoint,
    ChargingTransaction,
    Connector,
    Station,
    TransactionState,
    utcnow,
)
from evcms_desktop.store.stations import set_continue_past_booked_energy, station_calendar
from evcms_desktop.ui.dialogs.charger_tools import ChargerToolsDialog
from evcms_desktop.ui.theme import CONSOLE_STYLE
from evcms_desktop.ui.views.sessions import SessionsView

log = logging.getLogger("charger_screenshots")

ROOT = Path(__file__).resolve().parents[1]
IDENT = "CP-07"
LOCAL = ZoneInfo("Europe/London")  # the demo station's zone, where this charger's clock runs
QUIRKY = [
    (
        "BootNotification",
        {
            "chargeBoxSerialNumber": "EVB1A22P2RI3N182341200100350795E5",
            "chargePointModel": "EVlink Smart Wallbox",
            "chargePointVendor": "Schneider Electric",
            "firmwareVersion": "3.4.0.2",
            "vendorSpecificInfo": {"wifi": "on"},
        },
    ),
    (
        "StatusNotification",
        {"connectorId": 1, "errorCode": "Error", "status": "Available", "timestamp": "{local}"},
    ),
    (
        "MeterValues",
        {
            "connectorId": 1,
            "meterValue": [
                {
                    "timestamp": "{utc}",
                    "sampledValue": [
                        {"value": 604.213, "measurand": "Energy.Active.Import.Register"},
                        {"value": "7400", "measurand": "Request.Energy", "unit": "Wh"},
                    ],
                }
            ],
        },
    ),
]
PROFILE = {
    "chargingProfileId": 7,
    "stackLevel": 1,
    "chargingProfilePurpose": "TxDefaultProfile",
    "chargingProfileKind": "Absolute",
    "chargingSchedule": {
        "chargingRateUnit": "W",
        "startSchedule": "{start}",
        "chargingSchedulePeriod": [
            {"startPeriod": 0, "limit": 11000},
            {"startPeriod": 5400, "limit": 7400},
            {"startPeriod": 10800, "limit": 3700},
            {"startPeriod": 16200, "limit": 11000},
        ],
    },
}


async def quirky_frames(url: str) -> None:
    now = utcnow()
    fill = {
        "{utc}": now.isoformat().replace("+00:00", "Z"),
        "{local}": now.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    async with connect(f"{url}/{IDENT}") as ws:  # no subprotocol offered
        for repeat in range(3):
            for action, payload in QUIRKY:
                text = json.dumps([2, f"{action}-{repeat}", action, payload])
                for key, value in fill.items():
                    text = text.replace(key, value)
                await ws.send(text)
                await ws.recv()


async def until(predicate, timeout: float = 10) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError("the screenshot's data did not arrive")
        await asyncio.sleep(0.05)


async def shoot(out: Path, data_dir: Path) -> None:
    db = open_database(data_dir / "evcms.sqlite3", station_name="Riverside Car Park")
    charger_admin.add_charger(IDENT, connectors=2)
    cs = CentralSystem(
        CsmsConfig(data_dir=data_dir, port=0, tick_seconds=0.2, probe_features=False), db
    )
    await cs.start()
    box = ChargeBox(IDENT, f"ws://127.0.0.1:{cs.port}/ocpp")
    try:
        await quirky_frames(f"ws://127.0.0.1:{cs.port}/ocpp")
        await box.connect()
        await box.boot("Schneider Electric", "EVlink Smart Wallbox")
        start = format_timestamp(utcnow().replace(second=0, microsecond=0))
        profile = json.loads(json.dumps(PROFILE).replace("{start}", start))
        await cs.commands.set_charging_profile(IDENT, 1, profile)
        cs.tick()  # the deviation counts into the store
        tz = station_calendar(Station.get()).tz
        (data_dir / "firmware").mkdir(exist_ok=True)
        (data_dir / "firmware" / "evlink-3.4.2.bin").write_bytes(bytes(range(256)) * 4096)
        dialog = ChargerToolsDialog(IDENT, 1, cs.commands, tz, transfers=cs.transfers)
        dialog.resize(1100, 520)
        dialog.show()
        await asyncio.sleep(0.3)
        dialog.load_deviations()
        await asyncio.sleep(0.3)
        dialog.grab().save(str(out / "charger-tolerated.png"))
        dialog.tabs.setCurrentIndex(1)
        dialog.read_configuration()
        await until(lambda: dialog.config_table.rowCount() > 0)
        dialog.config_table.selectRow(2)
        dialog.config_value.setText("not-a-number")
        dialog.change_configuration()
        await asyncio.sleep(0.3)
        dialog.grab().save(str(out / "charger-configuration.png"))
        dialog.tabs.setCurrentIndex(2)
        dialog.read_schedule()
        await until(lambda: "period" in dialog.schedule_result.text())
        await asyncio.sleep(0.3)
        dialog.grab().save(str(out / "charger-profiles.png"))
        dialog.tabs.setCurrentIndex(3)
        dialog.update_firmware()
        await until(lambda: "Installed" in dialog.firmware_state.text())
        dialog.get_diagnostics()
        await until(lambda: "Uploaded" in dialog.diagnostics_state.text())
        await until(lambda: dialog.received.rowCount() > 0)
        dialog.received.selectRow(0)
        await asyncio.sleep(0.3)
        dialog.grab().save(str(out / "charger-firmware.png"))
        dialog.tabs.setCurrentIndex(4)
        dialog.reserve_connector.setValue(2)
        dialog.reserve_id_tag.setText("FLEET-7")
        dialog.reserve()
        await until(lambda: "ReserveNow" in dialog.reservation_result.text())
        await asyncio.sleep(0.3)
        dialog.load_reservations()
        dialog.grab().save(str(out / "charger-reservations.png"))
        dialog.close()
        await booked_sessions(box, db)
        view = SessionsView(Station.get())
        view.resize(1360, 300)
        view.show()
        view.refresh()
        await asyncio.sleep(0.3)
        view.grab().save(str(out / "sessions-quote-vs-bill.png"))
        view.close()
    finally:
        await box.close()
        await cs.stop()
        db.close()


async def booked_sessions(box: ChargeBox, db: peewee.SqliteDatabase) -> None:
    """Three booked sessions: stopped at the booked energy, continued past it with the
    station's setting, and unplugged early."""
    for connector, kwh, seconds, continues, unplug in (
        (1, "5", 3700, False, False),
        (2, "5", 4700, True, True),
        (1, "8", 1800, False, True),
    ):
        set_continue_past_booked_energy(Station.get(), continues)
        service = BookingService(db, Station.get())
        outcome = service.plan(
            PlanRequest(
                arrival=utcnow(),
                duration=timedelta(hours=1),
                energy_kwh=Decimal(kwh),
                connector_id=connector_id(IDENT, connector),
            )
        )
        plan = outcome.plan(PlanKind.DURATION)
        assert plan is not None, outcome.unavailable
        booking = service.confirm(outcome, plan)
        tx_id, _ = await box.charge(booking.code, connector)
        await until(lambda c=connector: bool(box.connectors[c].profiles))
        await box.meter(tx_id, seconds=seconds)
        if unplug:
            await box.stop_transaction(tx_id, "EVDisconnected")
        await until(
            lambda t=tx_id: ChargingTransaction.get_by_id(t).state == TransactionState.FINISHED
        )
        box.connectors[connector].profiles.clear()
    set_continue_past_booked_energy(Station.get(), False)


def connector_id(ident: str, number: int) -> int:
    return (
        Connector.select(Connector.id)
        .join(ChargePoint)
        .where((ChargePoint.ident == ident) & (Connector.number == number))
        .scalar()
    )


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    app = QApplication(sys.argv)
    app.setQuitOnLastWindowClosed(False)
    app.setStyleSheet(CONSOLE_STYLE)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    out = ROOT / "docs"
    with tempfile.TemporaryDirectory() as tmp, loop:
        loop.run_until_complete(shoot(out, Path(tmp)))
    log.warning("Saved the charger screenshots into %s", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
