"""A hostile charger's transactions: backdated starts, future stops, resent starts. Each
test failed on the code before it."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from evcms_desktop.csms.protocol import format_timestamp
from evcms_desktop.csms.server import CentralSystem, CsmsConfig
from evcms_desktop.store.models import ChargingTransaction, Event, TransactionState
from tests.conftest import BOTH_ENGINES, NOW
from tests.csms.helpers import FakeClock, book, running
from tests.hostile.helpers import RawCharger, run


def _stamp(at: datetime) -> str:
    return format_timestamp(at)


async def _start_stop(
    charger: RawCharger, clock: FakeClock, code: str, start: datetime, stop: datetime
) -> ChargingTransaction:
    """StartTransaction stamped `start` (meterStart 1000), 2 s later StopTransaction
    stamped `stop` (meterStop 5500); the stored transaction."""
    started = await charger.call(
        "StartTransaction",
        {"connectorId": 1, "idTag": code, "meterStart": 1000, "timestamp": _stamp(start)},
    )
    assert started[0] == 3 and started[2]["idTagInfo"]["status"] == "Accepted", started
    tx_id = started[2]["transactionId"]
    clock.advance(seconds=2)
    stopped = await charger.call(
        "StopTransaction", {"meterStop": 5500, "timestamp": _stamp(stop), "transactionId": tx_id}
    )
    assert stopped[0] == 3, stopped
    return ChargingTransaction.get_by_id(tx_id)


@pytest.mark.parametrize("db_target", BOTH_ENGINES, indirect=True)
def test_a_backdated_start_buys_no_energy(db, station, config: CsmsConfig):
    """A live charger claimed a start 13 min before it sent it and a stop 299 s ahead:
    4.500 kWh was billed for 2 s, unflagged, from the claimed 682 s."""
    clock = FakeClock(NOW)
    booking = book(db, station, clock, minutes=120, energy_kwh="20")
    cs = CentralSystem(config, db, clock=clock)

    async def scenario() -> ChargingTransaction:
        async with running(cs):
            charger = await RawCharger.connect(cs, "CP-A")
            await charger.boot()
            clock.advance(minutes=20)  # connected and heard all along
            now = clock()
            tx = await _start_stop(
                charger,
                clock,
                booking.code,
                now - timedelta(minutes=13),
                now + timedelta(seconds=299),
            )
            await charger.close()
            return tx

    tx = run(scenario())
    assert tx.state == TransactionState.FINISHED
    assert tx.energy_kwh < Decimal("0.6")  # 22 kW for the minute the server allows, at most
    assert tx.review is not None and "ahead of the server's receipt" in tx.review


@pytest.mark.parametrize("db_target", BOTH_ENGINES, indirect=True)
def test_an_offline_transaction_sent_after_reconnecting_is_billed(db, station, config: CsmsConfig):
    """A charger that started and stopped while offline sends both when it is back: the
    claimed 20 minutes are billed as they are."""
    clock = FakeClock(NOW)
    booking = book(db, station, clock, minutes=120, energy_kwh="20")
    cs = CentralSystem(config, db, clock=clock)

    async def scenario() -> ChargingTransaction:
        async with running(cs):
            charger = await RawCharger.connect(cs, "CP-A")
            await charger.boot()
            await charger.close()
            await asyncio.sleep(0.3)  # the connection registry records when it went
            clock.advance(minutes=40)
            charger = await RawCharger.connect(cs, "CP-A")
            await charger.boot()
            tx = await _start_stop(
                charger,
                clock,
                booking.code,
                NOW + timedelta(minutes=5),
                NOW + timedelta(minutes=25),
            )
            await charger.close()
            return tx

    tx = run(scenario())
    assert tx.state == TransactionState.FINISHED
    assert tx.energy_kwh == Decimal("4.500")
    assert tx.review is None


@pytest.mark.parametrize("db_target", BOTH_ENGINES, indirect=True)
@pytest.mark.parametrize("back_to_back", [False, True], ids=["after-answer", "back-to-back"])
def test_an_identical_resent_start_gets_its_transaction_id(
    db, station, config: CsmsConfig, back_to_back
):
    """A charger that lost the CALLRESULT resent its StartTransaction: it got a new
    transactionId with ConcurrentTx, and a refused session row."""
    clock = FakeClock(NOW)
    booking = book(db, station, clock, minutes=120, energy_kwh="20")
    cs = CentralSystem(config, db, clock=clock)
    payload = {
        "connectorId": 1,
        "idTag": booking.code,
        "meterStart": 1000,
        "timestamp": (NOW + timedelta(seconds=1, microseconds=123456)).isoformat(),
    }

    async def scenario() -> list:
        async with running(cs):
            charger = await RawCharger.connect(cs, "CP-A")
            await charger.boot()
            clock.advance(seconds=2)
            if back_to_back:
                for unique_id in ("s1", "s2"):
                    await charger.ws.send(json.dumps([2, unique_id, "StartTransaction", payload]))
                answers = []
                while len(answers) < 2:
                    message = json.loads(await asyncio.wait_for(charger.ws.recv(), 10))
                    if message[0] != 2:
                        answers.append(message)
            else:
                first = await charger.call("StartTransaction", payload)
                clock.advance(seconds=30)
                answers = [first, await charger.call("StartTransaction", payload)]
            await charger.close()
            return answers

    answers = run(scenario())
    assert [a[0] for a in answers] == [3, 3], answers
    assert [a[2]["idTagInfo"]["status"] for a in answers] == ["Accepted", "Accepted"]
    assert answers[0][2] == answers[1][2]  # the same transactionId and expiryDate
    assert ChargingTransaction.select().count() == 1


def test_a_stop_stamped_1996_ends_at_its_receipt_and_is_reviewed(db, station, config):
    """A stop stamped 1996 was stored as the session's end (22:43-1996-12-08 22:43)."""
    clock = FakeClock(NOW)
    booking = book(db, station, clock, minutes=120, energy_kwh="20")
    cs = CentralSystem(config, db, clock=clock)

    async def scenario() -> tuple[ChargingTransaction, datetime]:
        async with running(cs):
            charger = await RawCharger.connect(cs, "CP-A")
            await charger.boot()
            clock.advance(minutes=1)
            tx = await _start_stop(
                charger, clock, booking.code, clock(), datetime(1996, 12, 8, 22, 43, tzinfo=UTC)
            )
            await charger.close()
            return tx, clock()

    tx, received = run(scenario())
    assert tx.stopped_at == received
    assert tx.review is not None and "1996-12-08 22:43" in tx.review


def test_a_start_stamped_2099_is_a_clock_skew_event(db, station, config):
    clock = FakeClock(NOW)
    booking = book(db, station, clock, minutes=120, energy_kwh="20")
    cs = CentralSystem(config, db, clock=clock)

    async def scenario() -> list:
        async with running(cs):
            charger = await RawCharger.connect(cs, "CP-A")
            await charger.boot()
            answer = await charger.call(
                "StartTransaction",
                {
                    "connectorId": 1,
                    "idTag": booking.code,
                    "meterStart": 0,
                    "timestamp": "2099-01-01T00:00:00Z",
                },
            )
            await asyncio.sleep(0.2)  # the event's row
            await charger.close()
            return answer

    answer = run(scenario())
    assert answer[0] == 3, answer
    assert ChargingTransaction.get_by_id(answer[2]["transactionId"]).started_at == NOW
    assert Event.select().where(Event.kind == "clock_skew").count() == 1
