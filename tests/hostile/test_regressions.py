"""One test per defect of the hostile-input review: each failed on the code before it."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from ocpp.v16 import call

from evcms_desktop.csms.protocol import format_timestamp
from evcms_desktop.csms.server import CentralSystem, CsmsConfig
from evcms_desktop.simulator.chargebox import ChargeBox
from evcms_desktop.store.models import (
    ChargingTransaction,
    Connector,
    Event,
    MeterValue,
    TransactionState,
)
from evcms_desktop.store.notices import prune_events
from evcms_desktop.store.stations import set_continue_past_booked_energy
from tests.conftest import NOW
from tests.csms.helpers import FakeClock, book, running
from tests.csms.helpers import url as csms_url
from tests.hostile.helpers import STAMP, RawCharger, meter_values, run


@pytest.mark.parametrize(
    "poison",
    [
        '[2,"p1","DataTransfer",{"vendorId":"\\ud800"}]',
        '[2,"p2","MeterValues",{"connectorId":9223372036854775808,"meterValue":'
        '[{"timestamp":"' + STAMP + '","sampledValue":[{"value":"1"}]}]}]',
    ],
    ids=["lone-surrogate", "int-2-63"],
)
def test_one_poisoned_frame_does_not_stop_the_writer(db, station, config: CsmsConfig, poison):
    """A frame SQLite cannot store once killed the writer: every later sample was
    acknowledged and never stored."""
    cs = CentralSystem(config, db)

    async def scenario() -> list[list]:
        async with running(cs):
            charger = await RawCharger.connect(cs, "CP-A")
            await charger.boot()
            poisoned = await charger.send_raw(poison)
            answers = []
            for i in range(5):
                answers.append(await charger.call("MeterValues", meter_values(None, str(100 + i))))
                await asyncio.sleep(0.02)
            await charger.close()
            return [poisoned, *answers]

    poisoned, *answers = run(scenario())
    assert poisoned[0] in (3, 4)  # answered either way
    assert all(a[0] == 3 for a in answers), answers
    assert sorted(v.value for v in MeterValue.select()) == ["100", "101", "102", "103", "104"]


def test_status_for_a_connector_the_charger_lacks_creates_none(db, station, config):
    """StatusNotification with connectorId 77 on a 2-connector charger created #77."""
    cs = CentralSystem(config, db)

    async def scenario() -> list:
        async with running(cs):
            charger = await RawCharger.connect(cs, "CP-A")
            await charger.boot()
            answer = await charger.call(
                "StatusNotification",
                {"connectorId": 77, "errorCode": "NoError", "status": "Available"},
            )
            await charger.close()
            return answer

    assert run(scenario())[0] == 3  # answered, so the charger does not retry it
    numbers = [
        c.number
        for c in Connector.select()
        .join_from(Connector, Connector.charge_point.rel_model)
        .where(Connector.charge_point.rel_model.ident == "CP-A")
    ]
    assert sorted(numbers) == [1, 2]
    assert Event.select().where(Event.message.contains("77")).exists()


async def _start_at_cp_a(cs: CentralSystem, id_tag: str, timestamp: str) -> list:
    """CP-A boots and starts a transaction on connector 1; the central system's answer."""
    async with running(cs):
        charger = await RawCharger.connect(cs, "CP-A")
        await charger.boot()
        answer = await charger.call(
            "StartTransaction",
            {"connectorId": 1, "idTag": id_tag, "meterStart": 0, "timestamp": timestamp},
        )
        await charger.close()
        return answer


def _booked_session(db, station, clock: FakeClock, config, steps) -> ChargingTransaction:
    """Start a booked transaction on CP-A #1, run `steps(charger, tx_id)`, return it."""
    booking = book(db, station, clock, minutes=120, energy_kwh="20")
    cs = CentralSystem(config, db, clock=clock)

    async def scenario() -> int:
        async with running(cs):
            charger = await RawCharger.connect(cs, "CP-A")
            await charger.boot()
            tx_id = await charger.start(booking.code, **steps.get("start", {}))
            await steps["then"](charger, tx_id)
            await charger.close()
            return tx_id

    return ChargingTransaction.get_by_id(run(scenario()))


def test_meter_start_far_below_zero_is_not_billed(db, station, config):
    """meterStart -2^31 then a stop billed 2,147,483 kWh."""
    clock = FakeClock(NOW)

    async def then(charger: RawCharger, tx_id: int) -> None:
        clock.advance(hours=1)
        stop = (NOW + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        answer = await charger.call(
            "StopTransaction", {"meterStop": 5000, "timestamp": stop, "transactionId": tx_id}
        )
        assert answer[0] == 3, answer

    tx = _booked_session(
        db, station, clock, config, {"start": {"meter_start": -(2**31)}, "then": then}
    )
    assert tx.state == TransactionState.FINISHED
    assert tx.energy_kwh <= Decimal(22)  # what one hour at 22 kW can be, at most
    assert tx.price_total < Decimal(20)
    assert Event.select().where(Event.kind == "session_review").exists()


async def _stop_three_hours_early(charger: RawCharger, tx_id: int) -> None:
    """A StopTransaction stamped three hours before the session's start."""
    before = (NOW - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    answer = await charger.call(
        "StopTransaction", {"meterStop": 90000, "timestamp": before, "transactionId": tx_id}
    )
    assert answer[0] == 3, answer


def test_stop_before_start_is_flagged_not_billed(db, station, config):
    clock = FakeClock(NOW)

    tx = _booked_session(db, station, clock, config, {"then": _stop_three_hours_early})
    assert tx.energy_kwh == 0
    review = Event.get(Event.kind == "session_review")
    assert "before the start" in review.message


def test_a_review_flag_outlives_the_events(db, db_path, station, config, capsys):
    """The review flag lived in an Event row only: once the events were pruned (after the
    retention period) `sessions` no longer said REVIEW beside the bill."""
    from evcms_desktop.app.cli import main

    clock = FakeClock(NOW)

    tx = _booked_session(db, station, clock, config, {"then": _stop_three_hours_early})
    assert prune_events(NOW + timedelta(days=3650)) and not Event.select().exists()
    assert "before the start" in ChargingTransaction.get_by_id(tx.id).review
    assert main(["--db", str(db_path), "sessions"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "REVIEW: " in lines[f"#{tx.id}"] and "before the start" in lines[f"#{tx.id}"]


@pytest.mark.parametrize(
    "value",
    ["NaN", "Infinity", "-inf", "abc", "1e400", "9" * 30000, "５", "٣", "5\n"],
)
def test_implausible_readings_are_not_stored(db, station, config, value):
    """'NaN' broke the next StatusNotification; 'Infinity', 'abc' and 30,000-character
    values were stored as readings, and so were full-width digits ("１１００")."""
    clock = FakeClock(NOW)
    answers: list = []

    async def then(charger: RawCharger, tx_id: int) -> None:
        answers.append(await charger.call("MeterValues", meter_values(tx_id, value)))
        answers.append(
            await charger.call(
                "MeterValues", meter_values(tx_id, value, measurand="SoC", unit="Percent")
            )
        )
        answers.append(
            await charger.call(
                "StatusNotification",
                {"connectorId": 1, "errorCode": "NoError", "status": "SuspendedEV"},
            )
        )

    tx = _booked_session(db, station, clock, config, {"then": then})
    assert [a[0] for a in answers] == [3, 3, 3], answers
    assert not MeterValue.select().where(MeterValue.transaction == tx.id).exists()
    assert not Event.select().where(Event.kind == "fully_charged").exists()


def test_register_running_backwards_is_not_stored(db, station, config):
    clock = FakeClock(NOW)

    async def then(charger: RawCharger, tx_id: int) -> None:
        start = datetime.fromisoformat(STAMP)
        for hour, value in enumerate(("1000", "2000", "500", "2500"), start=1):
            stamp = (start + timedelta(hours=hour)).strftime("%Y-%m-%dT%H:%M:%SZ")
            clock.advance(hours=1)  # sent when stamped: a future reading counts from receipt
            answer = await charger.call("MeterValues", meter_values(tx_id, value, stamp=stamp))
            assert answer[0] == 3, answer

    tx = _booked_session(db, station, clock, config, {"then": then})
    stored = [
        v.value
        for v in MeterValue.select().where(MeterValue.transaction == tx.id).order_by(MeterValue.id)
    ]
    assert stored == ["1000", "2000", "2500"]


def test_refused_start_is_not_left_open(db, station, config):
    """Each StartTransaction refused for another charger's booking stayed active."""
    clock = FakeClock(NOW)
    other = book(db, station, clock, ident="CP-B")
    cs = CentralSystem(config, db, clock=clock)

    answer = run(_start_at_cp_a(cs, other.code, STAMP))
    assert answer[2]["idTagInfo"]["status"] == "Invalid"
    tx = ChargingTransaction.get_by_id(answer[2]["transactionId"])
    assert tx.state != TransactionState.ACTIVE


def test_a_refused_start_says_why(db, db_path, station, config, capsys):
    """A start refused for another charger's booking was listed as "(no booking)"."""
    from evcms_desktop.app.cli import main

    clock = FakeClock(NOW)
    other = book(db, station, clock, ident="CP-B")
    cs = CentralSystem(config, db, clock=clock)

    async def scenario() -> list[int]:
        async with running(cs):
            charger = await RawCharger.connect(cs, "CP-A")
            await charger.boot()
            ids = []
            for tag in (other.code, "NOSUCHTAG"):
                payload = {"connectorId": 1, "idTag": tag, "meterStart": 0, "timestamp": STAMP}
                ids.append((await charger.call("StartTransaction", payload))[2]["transactionId"])
            await charger.close()
            await cs.writer.flush()
            return ids

    wrong, unknown = run(scenario())
    prune_events(NOW + timedelta(days=3650))  # the reason outlives the events
    assert not Event.select().exists()
    assert main(["--db", str(db_path), "sessions", "--refused"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert f"refused: booking {other.code} is for another charger" in lines[f"#{wrong}"]
    assert "refused: no such booking" in lines[f"#{unknown}"]
    assert "(no booking)" not in lines[f"#{wrong}"]


def test_deep_json_gets_a_callerror_and_the_connection_lives(db, station, config):
    """JSON nested a few thousand deep closed the connection 1011."""
    cs = CentralSystem(config, db)
    deep = '[2,"d1","DataTransfer",{"vendorId":"V","data":' + "[" * 5000 + "]" * 5000 + "}]"

    async def scenario() -> tuple[list, list]:
        async with running(cs):
            charger = await RawCharger.connect(cs, "CP-A")
            answer = await charger.send_raw(deep)
            after = await charger.call("Heartbeat", {})
            await charger.close()
            return answer, after

    answer, after = run(scenario())
    assert answer[0] == 4
    assert after[0] == 3


def test_a_newline_in_a_malformed_frame_forges_no_log_line(db, station, config, caplog):
    cs = CentralSystem(config, db)
    forged = "not json\n2026-12-01 06:00:00 INFO evcms_desktop: operator signed in"

    async def scenario() -> list:
        async with running(cs):
            charger = await RawCharger.connect(cs, "CP-A")
            answer = await charger.send_raw(forged)
            await charger.close()
            return answer

    with caplog.at_level(logging.DEBUG):
        assert run(scenario())[0] == 4
    for record in caplog.records:
        assert "\n" not in record.getMessage(), record.getMessage()


def _at(seconds: int) -> str:
    return (datetime.fromisoformat(STAMP) + timedelta(seconds=seconds)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def test_a_stop_of_9_million_kwh_is_flagged_not_billed(db, station, config):
    """The outsider's case: meterStop 9,000,000 kWh 30 s after meterStart 0 on a 22 kW
    connector, with "continue past booked energy" on, was billed £4,500,001.70 with no
    review."""
    set_continue_past_booked_energy(station, True)
    clock = FakeClock(NOW)

    async def then(charger: RawCharger, tx_id: int) -> None:
        answer = await charger.call("MeterValues", meter_values(tx_id, "150", stamp=_at(10)))
        assert answer[0] == 3, answer
        clock.advance(seconds=30)
        answer = await charger.call(
            "StopTransaction",
            {"meterStop": 9_000_000_000, "timestamp": _at(30), "transactionId": tx_id},
        )
        assert answer[0] == 3, answer

    tx = _booked_session(db, station, clock, config, {"start": {"meter_start": 0}, "then": then})
    assert tx.state == TransactionState.FINISHED
    assert tx.energy_kwh == Decimal("0.150")  # the last plausible reading
    assert tx.price_total < Decimal(5)
    review = Event.get(Event.kind == "session_review")
    assert "22 kW connector" in review.message


def test_a_reading_beyond_the_connectors_power_is_not_stored(db, station, config):
    """0 -> 400 kWh in 10 s on a 22 kW connector was stored and billed £201.95."""
    clock = FakeClock(NOW)

    async def then(charger: RawCharger, tx_id: int) -> None:
        for seconds, value in ((10, "150"), (20, "400000"), (3600, "20000")):
            clock.now = NOW + timedelta(seconds=seconds)
            answer = await charger.call(
                "MeterValues", meter_values(tx_id, value, stamp=_at(seconds))
            )
            assert answer[0] == 3, answer
        clock.advance(hours=1)
        answer = await charger.call(
            "StopTransaction", {"meterStop": 20_100, "timestamp": _at(3610), "transactionId": tx_id}
        )
        assert answer[0] == 3, answer

    tx = _booked_session(db, station, clock, config, {"start": {"meter_start": 0}, "then": then})
    stored = [v.value for v in MeterValue.select().where(MeterValue.transaction == tx.id)]
    assert stored == ["150", "20000"]  # the step to 20 kWh in an hour is plausible
    assert Event.select().where(Event.message.contains("22 kW connector")).exists()
    assert tx.energy_kwh == Decimal("20.100")  # billed as measured: the stop is plausible
    assert not Event.select().where(Event.kind == "session_review").exists()


def test_readings_after_an_absurd_meter_start_are_stored_and_checked(db, station, config):
    """With meterStart -2^31, every later reading was refused as rising faster than the
    connector allows (measured from -2^31); steps count from the first reading instead."""
    clock = FakeClock(NOW)

    async def then(charger: RawCharger, tx_id: int) -> None:
        for seconds, value in ((600, "1000"), (1200, "3000"), (1210, "400000")):
            clock.now = NOW + timedelta(seconds=seconds)
            answer = await charger.call(
                "MeterValues", meter_values(tx_id, value, stamp=_at(seconds))
            )
            assert answer[0] == 3, answer

    tx = _booked_session(
        db, station, clock, config, {"start": {"meter_start": -(2**31)}, "then": then}
    )
    stored = [v.value for v in MeterValue.select().where(MeterValue.transaction == tx.id)]
    assert stored == ["1000", "3000"]  # 2 kWh in 10 min fits 22 kW; 397 kWh in 10 s not


A_YEAR_AT_22_KW = 22_000 * 8760  # Wh


def _future_stop(tx_id: int, meter_stop: int, ahead: timedelta) -> dict:
    stop = (NOW + ahead).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"meterStop": meter_stop, "timestamp": stop, "transactionId": tx_id}


@pytest.mark.parametrize("continue_past", [True, False], ids=["continue", "stop"])
def test_a_stop_stamped_a_year_ahead_bills_no_year_of_energy(db, station, config, continue_past):
    """StartTransaction now, then at once a stop a year ahead with a year of 22 kW: billed
    192,720 kWh (£96,361.70 with "continue"; recorded as delivered under "stop"), stored as
    stopped a year later, no review, no clock_skew event."""
    set_continue_past_booked_energy(station, continue_past)
    clock = FakeClock(NOW)

    async def then(charger: RawCharger, tx_id: int) -> None:
        stop = _future_stop(tx_id, 1000 + A_YEAR_AT_22_KW, timedelta(days=365))
        answer = await charger.call("StopTransaction", stop)
        assert answer[0] == 3, answer

    tx = _booked_session(db, station, clock, config, {"start": {"meter_start": 1000}, "then": then})
    assert tx.state == TransactionState.FINISHED
    assert tx.stopped_at == NOW  # when the server received the stop
    assert tx.energy_kwh == Decimal(0)
    assert tx.last_energy_wh is None  # never the raw meterStop
    assert tx.price_total < Decimal(5)
    review = Event.get(Event.kind == "session_review")
    assert "after the server received it" in review.message
    assert Event.select().where(Event.kind == "clock_skew").exists()


def test_a_stop_stamped_five_hours_ahead_is_bounded_by_the_receipt_time(db, station, config):
    """A stop 5 h ahead with 110 kWh, 10 minutes after the start, was billed £56.70."""
    set_continue_past_booked_energy(station, True)
    clock = FakeClock(NOW)

    async def then(charger: RawCharger, tx_id: int) -> None:
        clock.advance(minutes=10)
        answer = await charger.call(
            "StopTransaction", _future_stop(tx_id, 1000 + 110_000, timedelta(hours=5))
        )
        assert answer[0] == 3, answer

    tx = _booked_session(db, station, clock, config, {"start": {"meter_start": 1000}, "then": then})
    assert tx.stopped_at == NOW + timedelta(minutes=10)
    assert tx.energy_kwh <= Decimal("4.1")  # 10 minutes at 22 kW, with the meters' tolerance
    assert Event.select().where(Event.kind == "session_review").exists()


def test_readings_stamped_hours_ahead_but_sent_in_seconds_are_not_stored(db, station, config):
    """40 MeterValues each stamped 1 h later and 22 kWh higher, sent within 40 s: 880 kWh
    billed (£441.70), one clock_skew event and the bill unchanged."""
    set_continue_past_booked_energy(station, True)
    clock = FakeClock(NOW)

    async def then(charger: RawCharger, tx_id: int) -> None:
        for hour in range(1, 41):
            clock.advance(seconds=1)
            stamp = (NOW + timedelta(hours=hour)).strftime("%Y-%m-%dT%H:%M:%SZ")
            answer = await charger.call(
                "MeterValues", meter_values(tx_id, str(1000 + 22_000 * hour), stamp=stamp)
            )
            assert answer[0] == 3, answer
        answer = await charger.call(
            "StopTransaction", _future_stop(tx_id, 1000 + 22_000 * 40, timedelta(hours=40))
        )
        assert answer[0] == 3, answer

    tx = _booked_session(db, station, clock, config, {"start": {"meter_start": 1000}, "then": then})
    assert not MeterValue.select().where(MeterValue.transaction == tx.id).exists()
    assert tx.energy_kwh == Decimal(0)
    assert tx.price_total < Decimal(5)
    assert Event.select().where(Event.kind == "session_review").exists()


def test_a_start_stamped_in_the_future_is_stored_at_its_receipt(db, station, config):
    """A start stamped a day ahead was stored (and judged) at the charger's time."""
    clock = FakeClock(NOW)
    booking = book(db, station, clock, minutes=120, energy_kwh="20")
    cs = CentralSystem(config, db, clock=clock)
    ahead = (NOW + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")

    answer = run(_start_at_cp_a(cs, booking.code, ahead))
    assert answer[2]["idTagInfo"]["status"] == "Accepted"
    assert ChargingTransaction.get_by_id(answer[2]["transactionId"]).started_at == NOW
    assert Event.select().where(Event.kind == "clock_skew").exists()


@pytest.mark.parametrize("ahead", [timedelta(0), timedelta(hours=3)], ids=["on-time", "future"])
def test_a_resent_start_gets_its_transaction_again(db, station, config, ahead):
    """A charger that lost the answer resends the same StartTransaction after
    reconnecting: it gets the same transactionId and no second row is made, also when its
    clock ran ahead (the start is stored at its receipt time and flagged for the skew)."""
    clock = FakeClock(NOW)
    booking = book(db, station, clock)
    cs = CentralSystem(config, db, clock=clock)
    payload = call.StartTransaction(
        connector_id=1,
        id_tag=booking.code,
        meter_start=1000,
        timestamp=format_timestamp(NOW + timedelta(minutes=1) + ahead),
    )

    async def scenario() -> list[tuple[int, str]]:
        answers = []
        async with running(cs):
            for _ in range(2):
                box = ChargeBox("CP-A", csms_url(cs), clock=clock)
                await box.connect()
                assert await box.boot() == "Accepted"
                answer = await box.call(payload)
                answers.append((answer.transaction_id, answer.id_tag_info["status"]))
                await box.close()  # the answer was lost: the charger reconnects and resends
                clock.advance(seconds=40)
        return answers

    first, again = run(scenario())
    assert first[1] == "Accepted" and again == first
    assert [tx.id for tx in ChargingTransaction.select()] == [first[0]]
    if ahead:
        assert Event.select().where(Event.kind == "clock_skew").count() >= 1
