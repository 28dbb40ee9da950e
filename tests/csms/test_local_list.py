"""Bookings on the charger's local list, and a booked session started offline from it,
reconciled and priced when the charger reconnects."""

from __future__ import annotations

import asyncio

from evcms_desktop.csms.events import EventKind
from evcms_desktop.csms.protocol import format_timestamp
from evcms_desktop.csms.server import CentralSystem, CsmsConfig
from evcms_desktop.simulator.chargebox import ChargeBox
from evcms_desktop.store.models import (
    Booking,
    BookingState,
    ChargingTransaction,
    TransactionState,
)
from tests.csms.helpers import FakeClock, Recorder, book, run, running, until, url


def test_the_local_list_follows_the_bookings(db, station, clock: FakeClock, config: CsmsConfig):
    first = book(db, station, clock, minutes=30, number=1)
    other = book(db, station, clock, minutes=30, ident="CP-B")
    cs = CentralSystem(config, db, clock=clock)

    async def scenario() -> tuple[dict, dict]:
        async with running(cs):
            box = ChargeBox("CP-A", url(cs), clock=clock)
            await box.connect()
            await box.boot()
            await until(lambda: bool(box.local_list))
            listed = dict(box.local_list)
            Booking.update(state=BookingState.CANCELLED.value).where(
                Booking.id == first.id
            ).execute()
            await until(lambda: not box.local_list)
            await box.close()
            return listed, dict(box.local_list)

    listed, after_cancel = run(scenario())
    assert listed == {
        first.code: {"status": "Accepted", "expiry_date": format_timestamp(first.end)}
    }
    assert other.code not in listed  # another charger's booking
    assert after_cancel == {}


def test_an_offline_start_from_the_local_list_is_reconciled_and_priced(
    db, station, clock: FakeClock, config: CsmsConfig
):
    booking = book(db, station, clock, minutes=60, energy_kwh="5")
    cs = CentralSystem(config, db, clock=clock)
    recorder = Recorder(cs)

    async def scenario() -> int:
        async with running(cs):
            box = ChargeBox("CP-A", url(cs), clock=clock, meter_interval=3600)
            await box.connect()
            await box.boot()
            await until(lambda: booking.code in box.local_list)
            # No tick from here on: one after the clock moves past the grace would mark the
            # booking a no-show before the queued start arrives (a race that failed the test
            # about one run in two on a loaded machine).
            cs.config.tick_seconds = 3600
            await asyncio.sleep(0.2)  # the last short tick has run
            await box.disconnect()  # the link drops before the driver arrives
            clock.advance(minutes=2)
            provisional, status = await box.start_transaction(1, booking.code)
            assert status == "Accepted" and provisional < 0
            clock.advance(minutes=20)
            await box.meter(provisional, seconds=20 * 60)  # queued
            clock.advance(minutes=1)
            assert await box.stop_transaction(provisional, "EVDisconnected") is None  # queued
            assert not ChargingTransaction.select().exists()
            await box.connect()
            await box.boot()  # the queue goes out: start, meter values, stop
            stopped = await recorder.wait_for(EventKind.SESSION_STOPPED)
            await box.close()
            return stopped.data["transaction_id"]

    tx = ChargingTransaction.get_by_id(run(scenario()))
    assert tx.booking_id == booking.id
    assert tx.state == TransactionState.FINISHED and tx.stop_reason == "EVDisconnected"
    assert tx.started_at == booking.start.replace(minute=2)  # when it really started
    assert tx.energy_kwh > 0 and tx.price_total is not None
    assert Booking.get_by_id(booking.id).state == BookingState.COMPLETED


def test_an_offline_start_is_reconciled_even_after_its_booking_was_called_a_no_show(
    db, station, clock: FakeClock, config: CsmsConfig
):
    """The central system cannot see a start made offline: it calls the no-show at the
    grace, and the start that arrives later, made in time, still counts."""
    booking = book(db, station, clock, minutes=60, energy_kwh="5")
    cs = CentralSystem(config, db, clock=clock)
    recorder = Recorder(cs)

    async def scenario() -> int:
        async with running(cs):
            box = ChargeBox("CP-A", url(cs), clock=clock, meter_interval=3600)
            await box.connect()
            await box.boot()
            await until(lambda: booking.code in box.local_list)
            await box.disconnect()
            clock.advance(minutes=2)
            provisional, _ = await box.start_transaction(1, booking.code)
            clock.advance(minutes=20)  # past the grace: the central system calls a no-show
            await recorder.wait_for(EventKind.BOOKING_NO_SHOW)
            assert Booking.get_by_id(booking.id).state == BookingState.NO_SHOW
            await box.meter(provisional, seconds=20 * 60)
            assert await box.stop_transaction(provisional, "EVDisconnected") is None
            await box.connect()
            await box.boot()
            stopped = await recorder.wait_for(EventKind.SESSION_STOPPED, timeout=20)
            await box.close()
            return stopped.data["transaction_id"]

    tx = ChargingTransaction.get_by_id(run(scenario()))
    assert tx.booking_id == booking.id and tx.state == TransactionState.FINISHED
    assert tx.price_total is not None
    assert Booking.get_by_id(booking.id).state == BookingState.COMPLETED
