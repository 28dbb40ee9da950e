"""Strings and numbers from a charger are text and ASCII numbers, checked once where the
frame is parsed: a lone UTF-16 surrogate and full-width digits are refused with a CALLERROR
that names the field, in one log line, never a traceback."""

from __future__ import annotations

import json
import logging

import pytest

from evcms_desktop.csms.server import CentralSystem, CsmsConfig
from evcms_desktop.store.models import ChargePoint, ChargingTransaction, Event, MeterValue
from tests.conftest import BOTH_ENGINES
from tests.csms.helpers import running
from tests.hostile.helpers import STAMP, RawCharger, meter_values, run

LONE = "\udfff\ud800"

SURROGATE_CALLS = [
    ("Authorize", {"idTag": LONE}, "idTag"),
    ("BootNotification", {"chargePointVendor": LONE, "chargePointModel": "T"}, "chargePointVendor"),
    ("DataTransfer", {"vendorId": "\ud800"}, "vendorId"),
    (
        "StatusNotification",
        {"connectorId": 1, "errorCode": "NoError", "status": "Available", "info": LONE},
        "info",
    ),
    ("MeterValues", meter_values(None, "1\ud800"), "meterValue/0/sampledValue/0/value"),
    ("Heartbeat", {LONE: 1}, "(a key)"),
]


@pytest.mark.parametrize(
    ("action", "payload", "field"), SURROGATE_CALLS, ids=[c[0] for c in SURROGATE_CALLS]
)
def test_a_lone_surrogate_gets_a_callerror_naming_the_field(
    db, station, config: CsmsConfig, action, payload, field, caplog: pytest.LogCaptureFixture
):
    """Authorize with idTag "\\udfff\\ud800" gave InternalError and a 40-line traceback."""
    cs = CentralSystem(config, db)
    caplog.set_level(logging.INFO)

    async def scenario() -> tuple[list, list]:
        async with running(cs):
            charger = await RawCharger.connect(cs, "CP-A")
            await charger.boot()
            caplog.clear()
            answer = await charger.send_raw(json.dumps([2, "s1", action, payload]))
            after = await charger.call("Heartbeat", {})
            await charger.close()
            return answer, after

    answer, after = run(scenario())
    assert answer[:3] == [4, "s1", "PropertyConstraintViolation"], answer
    assert field in answer[3] and "surrogate" in answer[3], answer
    assert after[0] == 3
    assert not any(r.exc_info for r in caplog.records)
    about = [r for r in caplog.records if "s1" in r.getMessage() or "surrogate" in r.getMessage()]
    assert len(about) <= 1, [r.getMessage() for r in about]


def test_a_lone_surrogate_in_the_unique_id_is_answered_as_unknown(db, station, config):
    cs = CentralSystem(config, db)

    async def scenario() -> list:
        async with running(cs):
            charger = await RawCharger.connect(cs, "CP-A")
            await charger.boot()
            return await charger.send_raw(json.dumps([2, "\ud800", "Heartbeat", {}]))

    answer = run(scenario())
    assert answer[:3] == [4, "-1", "PropertyConstraintViolation"], answer


NUL_CALLS = [
    (
        "BootNotification",
        {"chargePointVendor": "V\u0000\u001b[31mX\n2026-12-01 FAKE LOG", "chargePointModel": "T"},
        "chargePointVendor",
    ),
    (
        "StartTransaction",
        {"connectorId": 1, "idTag": "AB\u0000", "meterStart": 0, "timestamp": STAMP},
        "idTag",
    ),
    ("Authorize", {"idTag": "X\u0000Y"}, "idTag"),
    (
        "MeterValues",
        meter_values(None, "1", measurand="Foo\u0000"),
        "meterValue/0/sampledValue/0/measurand",
    ),
]


@pytest.mark.parametrize("db_target", BOTH_ENGINES, indirect=True)
@pytest.mark.parametrize(("action", "payload", "field"), NUL_CALLS, ids=[c[0] for c in NUL_CALLS])
def test_a_nul_gets_a_callerror_naming_the_field_on_both_stores(
    db, station, config: CsmsConfig, action, payload, field, caplog: pytest.LogCaptureFixture
):
    """On PostgreSQL these gave InternalError and a traceback (text cannot contain NUL);
    on SQLite the vendor reached the store and the log; the measurand's row was set aside
    after an empty answer."""
    cs = CentralSystem(config, db)
    caplog.set_level(logging.INFO)

    async def scenario() -> list:
        async with running(cs):
            charger = await RawCharger.connect(cs, "CP-A")
            await charger.boot()
            answer = await charger.send_raw(json.dumps([2, "n1", action, payload]))
            await charger.close()
            return answer

    answer = run(scenario())
    assert answer[:3] == [4, "n1", "PropertyConstraintViolation"], answer
    assert field in answer[3] and "NUL" in answer[3], answer
    assert not any(r.exc_info for r in caplog.records)
    assert not any("\x00" in r.getMessage() for r in caplog.records)
    assert not ChargingTransaction.select().exists() and not MeterValue.select().exists()
    assert ChargePoint.get(ChargePoint.ident == "CP-A").vendor == "Hostile"


def test_control_characters_of_a_charger_reach_no_log_line_or_event(
    db, station, config: CsmsConfig, caplog: pytest.LogCaptureFixture
):
    """A vendor "V\\x1b[31mX\\nFAKE LOG" forged a second log line and coloured the first."""
    cs = CentralSystem(config, db)
    caplog.set_level(logging.INFO)
    vendor = "V\u001b[31mX\nFAKE LOG"

    async def scenario() -> list:
        async with running(cs):
            charger = await RawCharger.connect(cs, "CP-A")
            answer = await charger.call(
                "BootNotification", {"chargePointVendor": vendor, "chargePointModel": "T\r"}
            )
            await charger.close()
            return answer

    assert run(scenario())[0] == 3
    lines = [r.getMessage() for r in caplog.records]
    assert not any(any(c in line for c in "\n\r\x1b") for line in lines), lines
    messages = [e.message for e in Event.select()]
    assert any("V\\x1b[31mX\\x0aFAKE LOG" in m for m in messages), messages
    assert not any(any(c in m for c in "\n\r\x1b") for m in messages), messages


def test_a_number_of_thousands_of_digits_is_too_long_not_bad_json(db, station, config):
    """A connectorId of 5,000 digits was answered "Frame is not valid JSON"."""
    cs = CentralSystem(config, db)
    frame = (
        '[2,"d1","StatusNotification",{"connectorId":' + "9" * 5000 + ',"errorCode":"NoError",'
        '"status":"Available"}]'
    )

    async def scenario() -> list:
        async with running(cs):
            charger = await RawCharger.connect(cs, "CP-A")
            await charger.boot()
            answer = await charger.send_raw(frame)
            await charger.close()
            return answer

    answer = run(scenario())
    assert answer[:3] == [4, "d1", "TypeConstraintViolation"], answer
    assert "connectorId" in answer[3] and "too long" in answer[3], answer
