"""StopTransaction as chargers send it: resent after a reconnect, and with an idTag whose
start was refused; and the dead-connection check that notices a charger gone silent."""

from __future__ import annotations

import json

from evcms_desktop.csms.events import EventKind
from evcms_desktop.csms.server import CentralSystem, CsmsConfig
from evcms_desktop.store.models import ChargingTransaction, MeterValue
from tests.csms.helpers import FakeClock, Recorder, book, exchange, raw_connect, run, running


def _call(uid: str, action: str, payload: dict) -> str:
    return json.dumps([2, uid, action, payload])


def _start(id_tag: str) -> str:
    return _call(
        "start",
        "StartTransaction",
        {"connectorId": 1, "idTag": id_tag, "meterStart": 0, "timestamp": "2026-12-01T06:01:00Z"},
    )


def _stop(tx_id: int, id_tag: str | None = None, uid: str = "stop") -> str:
    payload = {
        "meterStop": 2500,
        "timestamp": "2026-12-01T06:20:00Z",
        "transactionId": tx_id,
        "reason": "EVDisconnected",
        "transactionData": [
            {
                "timestamp": "2026-12-01T06:10:00Z",
                "sampledValue": [{"value": "1200", "context": "Sample.Periodic"}],
            },
            {
                "timestamp": "2026-12-01T06:20:00Z",
                "sampledValue": [{"value": "2500", "context": "Transaction.End"}],
            },
        ],
    }
    if id_tag is not None:
        payload["idTag"] = id_tag
    return _call(uid, "StopTransaction", payload)


def test_stop_resent_after_reconnect_stores_its_data_once(
    db, station, clock: FakeClock, config: CsmsConfig
):
    booking = book(db, station, clock)
    cs = CentralSystem(config, db, clock=clock)

    async def scenario() -> tuple[list, list]:
        async with running(cs):
            ws = await raw_connect(cs)
            started = await exchange(ws, _start(booking.code))
            tx_id = started[2]["transactionId"]
            clock.advance(minutes=20)  # the stop is stamped 06:20: it arrives then
            first = await exchange(ws, _stop(tx_id, booking.code))
            await ws.close()  # the answer was lost: the charger reconnects and resends
            ws = await raw_connect(cs)
            again = await exchange(ws, _stop(tx_id, booking.code, uid="stop-again"))
            await ws.close()
            return first, again

    first, again = run(scenario())
    assert first[2] == again[2] == {"idTagInfo": {"status": "Accepted"}}
    tx = ChargingTransaction.get()
    assert tx.meter_stop_wh == 2500
    stored = [(m.value, m.context) for m in MeterValue.select().order_by(MeterValue.id)]
    assert stored == [("1200", "Sample.Periodic"), ("2500", "Transaction.End")]


def test_stop_answers_for_the_tag_what_its_start_answered(
    db, station, clock: FakeClock, config: CsmsConfig
):
    """A tag refused at the start is not Accepted at the stop: a charger with an
    authorization cache would otherwise keep an unknown tag as valid."""
    booking = book(db, station, clock)
    cs = CentralSystem(config, db, clock=clock)

    async def scenario() -> dict[str, list]:
        async with running(cs):
            ws = await raw_connect(cs)
            refused = await exchange(ws, _start("UNKNOWNTAG"))
            refused_stop = await exchange(ws, _stop(refused[2]["transactionId"], "UNKNOWNTAG"))
            booked = await exchange(ws, _start(booking.code))
            other_tag = await exchange(ws, _stop(booked[2]["transactionId"], "SOMEONEELSE"))
            await ws.close()
            return {
                "start": refused,
                "stop": refused_stop,
                "booked": booked,
                "other": other_tag,
            }

    answers = run(scenario())
    assert answers["start"][2]["idTagInfo"]["status"] == "Invalid"
    assert answers["stop"][2] == {"idTagInfo": {"status": "Invalid"}}
    assert answers["booked"][2]["idTagInfo"]["status"] == "Accepted"
    assert answers["other"][2] == {"idTagInfo": {"status": "Invalid"}}


def test_a_charger_that_stops_answering_pings_is_disconnected(db, station, config: CsmsConfig):
    config.ping_interval = 0.2
    config.ping_timeout = 0.2
    cs = CentralSystem(config, db)
    recorder = Recorder(cs)

    async def scenario() -> None:
        async with running(cs):
            ws = await raw_connect(cs, ping_interval=None)
            assert (await exchange(ws, '[2,"hb","Heartbeat",{}]'))[0] == 3
            ws.transport.pause_reading()  # alive on TCP, but it reads (and pongs) nothing
            await recorder.wait_for(EventKind.CHARGER_DISCONNECTED, timeout=20)
            assert not cs.is_connected("CP-A")
            ws.transport.close()

    run(scenario())
