"""Strings and numbers from a charger are text and ASCII numbers, checked once where the
frame is parsed: a lone UTF-16 surrogate and full-width digits are refused with a CALLERROR
that names the field, in one log line, never a traceback."""

from __future__ import annotations

import json
import logging

import pytest

from evcms_desktop.csms.server import CentralSystem, CsmsConfig
from tests.csms.helpers import running
from tests.hostile.helpers import RawCharger, meter_values, run

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
