"""Malformed frames, unknown actions, schema violations, oversized frames and retries:
each gets the exact OCPP-J 1.6 answer, and the connection keeps working. The schema
cases are read strictly; test_quirky_frames has what the tolerant reading accepts."""

from __future__ import annotations

import json

import pytest
from websockets.exceptions import ConnectionClosed

from evcms_desktop.csms.events import EventKind
from evcms_desktop.csms.server import CentralSystem, CsmsConfig
from evcms_desktop.store.models import ChargingTransaction
from tests.csms.helpers import FakeClock, Recorder, book, exchange, raw_connect, run, running

HEARTBEAT = '[2,"hb","Heartbeat",{}]'
STATUS = '"connectorId":1,"errorCode":"NoError","status":"Available"'
LONG_TAG = "A" * 21

CASES = [
    ("not-json", "this is not json", "-1", "FormationViolation"),
    ("truncated-json", '[2,"x1","Heartbeat",{', "-1", "FormationViolation"),
    ("not-an-array", '{"action":"Heartbeat"}', "-1", "FormationViolation"),
    ("empty-array", "[]", "-1", "FormationViolation"),
    ("no-unique-id", "[2]", "-1", "FormationViolation"),
    ("numeric-unique-id", '[2,17,"Heartbeat",{}]', "-1", "FormationViolation"),
    ("call-without-payload", '[2,"c1","Heartbeat"]', "c1", "FormationViolation"),
    ("payload-not-object", '[2,"c2","Heartbeat",[]]', "c2", "FormationViolation"),
    ("unknown-message-type", '[7,"c3","Heartbeat",{}]', "c3", "FormationViolation"),
    ("unknown-action", '[2,"a1","MakeCoffee",{}]', "a1", "NotImplemented"),
    ("action-not-for-csms", '[2,"a2","Reset",{"type":"Hard"}]', "a2", "NotSupported"),
    (
        "missing-required",
        '[2,"s1","BootNotification",{"chargePointVendor":"V"}]',
        "s1",
        "ProtocolError",
    ),
    (
        "wrong-type",
        '[2,"s2","StatusNotification",{"connectorId":"1","errorCode":"NoError","status":"Available"}]',
        "s2",
        "TypeConstraintViolation",
    ),
    (
        "bad-enum",
        '[2,"s3","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Asleep"}]',
        "s3",
        "PropertyConstraintViolation",
    ),
    ("unknown-field", '[2,"s4","Heartbeat",{"extra":1}]', "s4", "FormationViolation"),
    (
        "empty-meter-values",
        '[2,"s5","MeterValues",{"connectorId":1,"meterValue":[]}]',
        "s5",
        "OccurenceConstraintViolation",
    ),
    (
        "meter-value-not-string",
        '[2,"s6","MeterValues",{"connectorId":1,"meterValue":'
        '[{"timestamp":"2026-12-01T06:00:00Z","sampledValue":[{"value":12}]}]}]',
        "s6",
        "TypeConstraintViolation",
    ),
    (
        "meter-value-unit-not-string",
        '[2,"s10","MeterValues",{"connectorId":1,"meterValue":'
        '[{"timestamp":"2026-12-01T06:00:00Z","sampledValue":[{"value":"1","unit":[]}]}]}]',
        "s10",
        "TypeConstraintViolation",
    ),
    (
        "meter-value-bad-unit",
        '[2,"s7","MeterValues",{"connectorId":1,"meterValue":'
        '[{"timestamp":"2026-12-01T06:00:00Z","sampledValue":[{"value":"1","unit":"J"}]}]}]',
        "s7",
        "PropertyConstraintViolation",
    ),
    (
        "id-tag-too-long",
        f'[2,"s8","Authorize",{{"idTag":"{LONG_TAG}"}}]',
        "s8",
        "TypeConstraintViolation",
    ),
    (
        "bad-timestamp",
        '[2,"s9","StartTransaction",{"connectorId":1,"idTag":"X","meterStart":0,'
        '"timestamp":"yesterday"}]',
        "s9",
        "TypeConstraintViolation",
    ),
]


@pytest.mark.parametrize(
    ("frame", "unique_id", "code"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_frame_gets_callerror_and_connection_lives(
    db, station, config: CsmsConfig, frame, unique_id, code
):
    config.strict = True
    cs = CentralSystem(config, db)
    recorder = Recorder(cs)

    async def scenario() -> tuple[list, list]:
        async with running(cs):
            ws = await raw_connect(cs)
            answer = await exchange(ws, frame)
            after = await exchange(ws, HEARTBEAT)
            await ws.close()
            return answer, after

    answer, after = run(scenario())
    assert answer[:3] == [4, unique_id, code]
    assert isinstance(answer[3], str) and isinstance(answer[4], dict)
    assert len(answer) == 5
    assert after[0] == 3 and after[1] == "hb" and "currentTime" in after[2]
    errors = recorder.of(EventKind.PROTOCOL_ERROR)
    assert [e.data["code"] for e in errors] == [code]


def test_stray_callresult_is_not_answered(db, station, config: CsmsConfig):
    cs = CentralSystem(config, db)

    async def scenario() -> list:
        async with running(cs):
            ws = await raw_connect(cs)
            await ws.send('[3,"nobody-asked",{}]')
            await ws.send('[4,"nobody-asked","GenericError","",{}]')
            answer = await exchange(ws, HEARTBEAT)  # the first answer is the heartbeat's
            await ws.close()
            return answer

    assert run(scenario())[:2] == [3, "hb"]


def test_oversized_frame(db, station, config: CsmsConfig):
    config.max_frame_bytes = 10_000
    config.max_websocket_message = 50_000
    cs = CentralSystem(config, db)
    big = json.dumps([2, "big", "DataTransfer", {"vendorId": "V", "data": "x" * 20_000}])
    huge = json.dumps([2, "huge", "DataTransfer", {"vendorId": "V", "data": "x" * 60_000}])

    async def scenario() -> tuple[list, list, int | None]:
        async with running(cs):
            ws = await raw_connect(cs)
            answer = await exchange(ws, big)
            after = await exchange(ws, HEARTBEAT)
            # Beyond the WebSocket limit the frame is not even read: close 1009.
            await ws.send(huge)
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            return answer, after, ws.close_code

    answer, after, close_code = run(scenario())
    assert answer[:3] == [4, "big", "FormationViolation"]
    assert answer[4] == {"frameBytes": len(big), "limit": 10_000}
    assert after[:2] == [3, "hb"]
    assert close_code == 1009


def test_retried_start_transaction_gets_same_id(db, station, clock: FakeClock, config):
    booking = book(db, station, clock)
    cs = CentralSystem(config, db, clock=clock)
    start = json.dumps(
        [
            2,
            "{uid}",
            "StartTransaction",
            {
                "connectorId": 1,
                "idTag": booking.code,
                "meterStart": 1000,
                "timestamp": "2026-12-01T06:01:00.000Z",
            },
        ]
    )

    async def scenario() -> tuple[list, list, list]:
        async with running(cs):
            ws = await raw_connect(cs)
            first = await exchange(ws, start.replace("{uid}", "try-1"))
            second = await exchange(ws, start.replace("{uid}", "try-2"))
            after = await exchange(ws, HEARTBEAT)
            await ws.close()
            return first, second, after

    first, second, after = run(scenario())
    assert first[2]["idTagInfo"]["status"] == "Accepted"
    assert second[:2] == [3, "try-2"]
    assert second[2]["transactionId"] == first[2]["transactionId"]
    assert second[2]["idTagInfo"]["status"] == "Accepted"
    assert ChargingTransaction.select().count() == 1
    assert after[:2] == [3, "hb"]


@pytest.mark.parametrize(
    ("id_tag", "expected"), [(None, {}), ("ABC", {"idTagInfo": {"status": "Invalid"}})]
)
def test_stop_for_unknown_transaction_is_answered(db, station, config, id_tag, expected):
    cs = CentralSystem(config, db)
    recorder = Recorder(cs)
    payload = {"meterStop": 500, "timestamp": "2026-12-01T07:00:00Z", "transactionId": 999}
    if id_tag:
        payload["idTag"] = id_tag

    async def scenario() -> list:
        async with running(cs):
            ws = await raw_connect(cs)
            answer = await exchange(ws, json.dumps([2, "stop", "StopTransaction", payload]))
            await ws.close()
            return answer

    assert run(scenario()) == [3, "stop", expected]
    assert "999" in recorder.of(EventKind.PROTOCOL_ERROR)[0].message
