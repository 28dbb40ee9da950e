"""A corpus of frames that field chargers really send outside the letter of OCPP 1.6.

Each is accepted by the tolerant reading (the default) with its data stored and its
deviation recorded for the charger, and refused with the right CALLERROR when the
charger is read strictly. Where a case was seen is said next to it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from evcms_desktop.csms import charger_admin
from evcms_desktop.csms.events import EventKind
from evcms_desktop.csms.server import CentralSystem, CsmsConfig
from evcms_desktop.store.deviations import deviations_of, summarize
from evcms_desktop.store.models import ChargePoint, ChargingTransaction, Connector, MeterValue
from tests.csms.helpers import FakeClock, Recorder, book, exchange, raw_connect, run, running

HEARTBEAT = '[2,"hb","Heartbeat",{}]'
SERIAL_33 = "EVB1A22P2RI3N182341200100350795E5"
FIRMWARE_64 = "V1.5@25238bf+100,F8.gl,ws,ESP32,RN8213@V31-build-2025-04-17-0001"


def _cp() -> ChargePoint:
    return ChargePoint.get(ChargePoint.ident == "CP-A")


def _meter_values(*samples: dict[str, Any]) -> dict[str, Any]:
    return {
        "connectorId": 1,
        "meterValue": [{"timestamp": "2026-12-01T06:00:00Z", "sampledValue": list(samples)}],
    }


def _values() -> list[tuple[str, str, str | None]]:
    return [(m.measurand, m.value, m.unit) for m in MeterValue.select().order_by(MeterValue.id)]


@dataclass(frozen=True)
class Quirk:
    name: str
    seen: str  # where it was seen
    action: str
    payload: dict[str, Any]
    kind: str  # the deviation recorded
    strict_code: str  # the CALLERROR under strict reading
    stored: Callable[[], bool]  # the data is in the store


CORPUS = [
    Quirk(
        "boot-vendor-fields",
        "vendor additions to BootNotification (issue 11; lbbrhzn/ocpp#2008 shows the error)",
        "BootNotification",
        {
            "chargePointVendor": "Acme",
            "chargePointModel": "Wallbox 7",
            "firmwareVersion": "1.2.3",
            "vendorSpecificInfo": {"wifi": "on"},
            "macAddress": "00:11:22:33:44:55",
        },
        "extra_field",
        "FormationViolation",
        lambda: (
            (_cp().vendor, _cp().model, _cp().firmware_version) == ("Acme", "Wallbox 7", "1.2.3")
        ),
    ),
    Quirk(
        "boot-serial-33-characters",
        "Schneider EVlink Smart Wallbox (lbbrhzn/ocpp#213)",
        "BootNotification",
        {
            "chargeBoxSerialNumber": SERIAL_33,
            "chargePointModel": "EVlink Smart Wallbox",
            "chargePointVendor": "Schneider Electric",
            "firmwareVersion": "3.4.0.2",
        },
        "string_truncated",
        "TypeConstraintViolation",
        lambda: _cp().serial_number == SERIAL_33[:25],
    ),
    Quirk(
        "boot-firmware-64-characters",
        "a 64-character firmwareVersion (issue 11; TEISON firmware strings, lbbrhzn/ocpp#1617)",
        "BootNotification",
        {
            "chargePointVendor": "TEISON",
            "chargePointModel": "TeisonMe@7KW",
            "firmwareVersion": FIRMWARE_64,
        },
        "string_truncated",
        "TypeConstraintViolation",
        lambda: _cp().firmware_version == FIRMWARE_64[:50],
    ),
    Quirk(
        "meter-values-as-numbers",
        "OpenEVSE (OpenEVSE/openevse_esp32_firmware#335, lbbrhzn/ocpp#210)",
        "MeterValues",
        _meter_values(
            {"value": 604.213, "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
            {"value": 0, "measurand": "Power.Active.Import", "unit": "W"},
        ),
        "number_as_string",
        "TypeConstraintViolation",
        lambda: (
            _values()
            == [
                ("Energy.Active.Import.Register", "604.213", "Wh"),
                ("Power.Active.Import", "0", "W"),
            ]
        ),
    ),
    Quirk(
        "measurand-outside-the-list",
        "a charger sending Request.Energy (mobilityhouse/ocpp#54)",
        "MeterValues",
        _meter_values({"value": "7400", "measurand": "Request.Energy", "unit": "Wh"}),
        "unknown_enum_value",
        "PropertyConstraintViolation",
        lambda: _values() == [("Request.Energy", "7400", "Wh")],
    ),
    Quirk(
        "vendor-error-code",
        "Legrand GreenUp sending errorCode Error (lbbrhzn/ocpp#1248)",
        "StatusNotification",
        {
            "connectorId": 1,
            "errorCode": "Error",
            "status": "Faulted",
            "timestamp": "2026-12-01T05:59:00Z",
        },
        "unknown_enum_value",
        "PropertyConstraintViolation",
        lambda: (
            Connector.select(Connector.status, Connector.error_code)
            .where((Connector.charge_point == _cp()) & (Connector.number == 1))
            .tuples()
            .get()
            == ("Faulted", "Error")
        ),
    ),
    Quirk(
        "status-time-without-offset",
        "a charger on local time (issue 11)",
        "StatusNotification",
        {
            "connectorId": 1,
            "errorCode": "NoError",
            "status": "Available",
            "timestamp": "2026-12-01T07:00:00",
        },
        "timestamp_without_offset",
        "TypeConstraintViolation",
        # The charger's zone is Europe/Paris (UTC+1 in December): 07:00 there is 06:00 UTC.
        lambda: (
            str(
                Connector.get((Connector.charge_point == _cp()) & (Connector.number == 1)).status_at
            )
            == "2026-12-01 06:00:00+00:00"
        ),
    ),
]


def _frame(quirk: Quirk) -> str:
    return json.dumps([2, "q1", quirk.action, quirk.payload])


def _exchange(cs: CentralSystem, frame: str) -> tuple[list, list]:
    async def scenario() -> tuple[list, list]:
        async with running(cs):
            ws = await raw_connect(cs)
            answer = await exchange(ws, frame)
            after = await exchange(ws, HEARTBEAT)
            await ws.close()
        return answer, after

    return run(scenario())


@pytest.mark.parametrize("quirk", CORPUS, ids=[q.name for q in CORPUS])
def test_quirk_is_tolerated_stored_and_recorded(db, station, config: CsmsConfig, quirk):
    charger_admin.set_timezone("CP-A", "Europe/Paris")
    cs = CentralSystem(config, db)
    recorder = Recorder(cs)
    answer, after = _exchange(cs, _frame(quirk))
    assert answer[:2] == [3, "q1"], answer
    assert after[:2] == [3, "hb"]
    assert quirk.stored()
    recorded = {d.kind: d for d in deviations_of("CP-A")}
    assert list(recorded) == [quirk.kind]
    assert recorded[quirk.kind].count >= 1
    assert quirk.action in recorded[quirk.kind].example
    assert [e.data["kind"] for e in recorder.of(EventKind.CHARGER_DEVIATION)] == [quirk.kind]
    assert not recorder.of(EventKind.PROTOCOL_ERROR)


@pytest.mark.parametrize("quirk", CORPUS, ids=[q.name for q in CORPUS])
def test_quirk_is_refused_under_strict(db, station, config: CsmsConfig, quirk):
    config.strict = True
    cs = CentralSystem(config, db)
    answer, after = _exchange(cs, _frame(quirk))
    assert answer[:3] == [4, "q1", quirk.strict_code], answer
    assert after[:2] == [3, "hb"]
    assert not quirk.stored()
    assert deviations_of("CP-A") == []


def test_strictness_per_charger_wins_over_the_system(db, station, config: CsmsConfig):
    frame = _frame(CORPUS[0])
    charger_admin.set_strict("CP-A", True)
    answer, _ = _exchange(CentralSystem(config, db), frame)
    assert answer[:3] == [4, "q1", "FormationViolation"]
    charger_admin.set_strict("CP-A", False)
    config.strict = True
    answer, _ = _exchange(CentralSystem(config, db), frame)
    assert answer[:2] == [3, "q1"]


def test_counts_add_up_across_frames_and_restarts(db, station, config: CsmsConfig):
    quirk = CORPUS[3]  # meter values as numbers

    async def scenario(cs: CentralSystem, frames: int) -> None:
        async with running(cs):
            ws = await raw_connect(cs)
            for _ in range(frames):
                assert (await exchange(ws, _frame(quirk)))[0] == 3
            await ws.close()

    run(scenario(CentralSystem(config, db), 3))
    run(scenario(CentralSystem(config, db), 2))
    (recorded,) = deviations_of("CP-A")
    # Two numbers per frame, five frames.
    assert (recorded.kind, recorded.count) == ("number_as_string", 10)
    assert "0 read as '0'" in recorded.example
    info = next(c for c in charger_admin.list_chargers() if c.ident == "CP-A")
    assert summarize(info.deviations) == "number_as_string x10"


def test_no_subprotocol_is_taken_as_ocpp16(db, station, config: CsmsConfig):
    cs = CentralSystem(config, db)

    async def scenario() -> list:
        async with running(cs):
            ws = await raw_connect(cs, subprotocols=None)
            after = await exchange(ws, HEARTBEAT)
            await ws.close()
            return after

    assert run(scenario())[:2] == [3, "hb"]
    assert [d.kind for d in deviations_of("CP-A")] == ["no_subprotocol"]


def test_start_on_local_time_is_read_in_the_chargers_zone(
    db, station, clock: FakeClock, config: CsmsConfig
):
    """A charger on UTC+1 starts a valid booking at 07:01 local (06:01 UTC): Accepted.
    Read as UTC it was an hour late, Expired, and left an orphan transaction."""
    booking = book(db, station, clock)  # 06:00-06:30 UTC
    charger_admin.set_timezone("CP-A", "Europe/Paris")
    cs = CentralSystem(config, db, clock=clock)
    start = {
        "connectorId": 1,
        "idTag": booking.code,
        "meterStart": 0,
        "timestamp": "2026-12-01T07:01:00",
    }
    answer, _ = _exchange(cs, json.dumps([2, "q1", "StartTransaction", start]))
    assert answer[2]["idTagInfo"]["status"] == "Accepted"
    tx = ChargingTransaction.get()
    assert tx.started_at.isoformat() == "2026-12-01T06:01:00+00:00"
    assert tx.booking_id == booking.id
