"""Commands, booking rules, auto-stop, no-shows, reservations, reconnects and restarts."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

from evcms_desktop.csms.events import EventKind
from evcms_desktop.csms.server import CentralSystem, CsmsConfig
from evcms_desktop.simulator.chargebox import ChargeBox
from evcms_desktop.store.bookings import BookingService
from evcms_desktop.store.database import open_database
from evcms_desktop.store.models import (
    Booking,
    BookingState,
    ChargePoint,
    ChargingTransaction,
    MeterValue,
    TransactionState,
)
from evcms_desktop.store.stations import set_continue_past_booked_energy
from tests.csms.helpers import FakeClock, Recorder, book, raw_connect, run, running, until, url


async def booted(cs: CentralSystem, clock: FakeClock, ident: str = "CP-A") -> ChargeBox:
    box = ChargeBox(ident, url(cs), clock=clock, meter_interval=3600)
    await box.connect()
    assert await box.boot() == "Accepted"
    return box


def test_remote_start_and_stop(db, station, clock: FakeClock, config: CsmsConfig):
    booking = book(db, station, clock)
    cs = CentralSystem(config, db, clock=clock)
    recorder = Recorder(cs)

    async def scenario() -> int:
        async with running(cs):
            box = await booted(cs, clock)
            result = await cs.commands.remote_start("CP-A", booking.code, connector_id=1)
            assert (result.status, result.ok) == ("Accepted", True)
            started = await recorder.wait_for(EventKind.CHARGING_STARTED)
            tx_id = started.data["transaction_id"]
            assert started.data["booking_code"] == booking.code
            # The event comes before the charger has read the answer to its start.
            await until(lambda: tx_id in box.transactions)
            clock.advance(seconds=600)
            await box.meter(tx_id, seconds=600)
            result = await cs.commands.remote_stop("CP-A", tx_id)
            assert result.ok
            await recorder.wait_for(EventKind.SESSION_STOPPED)
            rejected = await cs.commands.remote_stop("CP-A", tx_id)
            assert (rejected.status, rejected.ok) == ("Rejected", False)
            await box.close()
            return tx_id

    tx = ChargingTransaction.get_by_id(run(scenario()))
    assert tx.stop_reason == "Remote" and tx.state == TransactionState.FINISHED
    # Ten simulated minutes at 22 kW, stamped so: billed as measured, nothing to review.
    assert tx.energy_kwh == Decimal(tx.meter_stop_wh - tx.meter_start_wh) / 1000 > 0
    assert not recorder.of(EventKind.SESSION_REVIEW)


def test_commands_offline_and_timed_out(db, station, config: CsmsConfig):
    cs = CentralSystem(config, db)

    async def scenario() -> None:
        async with running(cs):
            offline = await cs.commands.reset("CP-B")
            assert (offline.status, offline.ok) == ("Offline", False)
            ws = await raw_connect(cs, "CP-A")  # connected, but never answers
            await until(lambda: cs.is_connected("CP-A"))
            cs.commands.timeout = 0.2
            silent = await cs.commands.clear_cache("CP-A")
            assert (silent.status, silent.ok) == ("TimedOut", False)
            await ws.close()

    run(scenario())


def test_every_command_answered_by_simulator(db, station, clock: FakeClock, config):
    cs = CentralSystem(config, db, clock=clock)
    profile = {
        "chargingProfileId": 7,
        "stackLevel": 0,
        "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": {
            "chargingRateUnit": "W",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 11000.0}],
        },
    }

    async def scenario() -> dict[str, tuple[str, bool]]:
        async with running(cs):
            box = await booted(cs, clock)
            c = cs.commands
            results = {
                "reset": await c.reset("CP-A", "Soft"),
                "unlock": await c.unlock_connector("CP-A", 1),
                "availability": await c.change_availability("CP-A", 2, "Inoperative"),
                "get_configuration": await c.get_configuration("CP-A", ["HeartbeatInterval"]),
                "change_configuration": await c.change_configuration(
                    "CP-A", "HeartbeatInterval", "60"
                ),
                "read_only": await c.change_configuration("CP-A", "NumberOfConnectors", "3"),
                "clear_cache": await c.clear_cache("CP-A"),
                "trigger": await c.trigger_message("CP-A", "StatusNotification", 1),
                "reserve": await c.reserve_now(
                    "CP-A", 1, clock() + timedelta(minutes=30), "TAG", 41
                ),
                "cancel": await c.cancel_reservation("CP-A", 41),
                "set_profile": await c.set_charging_profile("CP-A", 1, profile),
                "clear_profile": await c.clear_charging_profile("CP-A", profile_id=7),
                "schedule": await c.get_composite_schedule("CP-A", 1, 3600, "W"),
                "data_transfer": await c.data_transfer("CP-A", "com.example", "ping", "x"),
            }
            assert results["get_configuration"].payload["configurationKey"][0]["value"] == "300"
            assert box.configuration["HeartbeatInterval"][0] == "60"
            assert results["schedule"].payload["chargingSchedule"]["chargingRateUnit"] == "W"
            await box.close()
            return {k: (r.status, r.ok) for k, r in results.items()}

    assert run(scenario()) == {
        "reset": ("Accepted", True),
        "unlock": ("Unlocked", True),
        "availability": ("Accepted", True),
        "get_configuration": ("Accepted", True),
        "change_configuration": ("Accepted", True),
        "read_only": ("Rejected", False),
        "clear_cache": ("Accepted", True),
        "trigger": ("Accepted", True),
        "reserve": ("Accepted", True),
        "cancel": ("Accepted", True),
        "set_profile": ("Accepted", True),
        "clear_profile": ("Accepted", True),
        "schedule": ("Accepted", True),
        "data_transfer": ("UnknownVendorId", False),
    }


def test_authorize_follows_the_booking(db, station, clock: FakeClock, config: CsmsConfig):
    now = clock()
    current = book(db, station, clock)  # CP-A #1 now
    elsewhere = book(db, station, clock, ident="CP-B", number=1)
    later = book(db, station, clock, arrival=now + timedelta(hours=2), number=2)
    cancelled = book(db, station, clock, arrival=now + timedelta(hours=4), number=2)
    BookingService(db, station, clock=clock).cancel(cancelled.code)
    cs = CentralSystem(config, db, clock=clock)

    async def scenario() -> dict[str, str]:
        async with running(cs):
            box = await booted(cs, clock)
            seen = {
                "current": await box.authorize(current.code),
                "lowercase": await box.authorize(current.code.lower()),
                "other_charger": await box.authorize(elsewhere.code),
                "too_early": await box.authorize(later.code),
                "cancelled": await box.authorize(cancelled.code),
                "unknown": await box.authorize("NOSUCHCODE"),
            }
            _tx_id, status = await box.charge(current.code)
            seen["start"] = status
            seen["concurrent"] = await box.authorize(current.code)
            # StartTransaction on the wrong connector is rejected, yet recorded.
            _wrong_tx, seen["wrong_connector"] = await box.start_transaction(2, later.code)
            clock.advance(minutes=31)
            seen["after_end"] = await box.authorize(current.code)
            await box.close()
            return seen

    assert run(scenario()) == {
        "current": "Accepted",
        "lowercase": "Accepted",
        "other_charger": "Invalid",
        "too_early": "Invalid",
        "cancelled": "Blocked",
        "unknown": "Invalid",
        "start": "Accepted",
        "concurrent": "ConcurrentTx",
        "wrong_connector": "Invalid",
        "after_end": "Expired",
    }


def test_auto_stop_at_booked_end(db, station, clock: FakeClock, config: CsmsConfig):
    booking = book(db, station, clock, minutes=30)
    cs = CentralSystem(config, db, clock=clock)
    recorder = Recorder(cs)

    async def scenario() -> int:
        async with running(cs):
            box = await booted(cs, clock)
            tx_id, _ = await box.charge(booking.code)
            clock.advance(minutes=29)
            await box.meter(tx_id, seconds=29 * 60)
            await asyncio.sleep(0.2)  # several ticks before the end: nothing happens
            assert tx_id in box.transactions
            clock.advance(minutes=1)
            await recorder.wait_for(EventKind.SESSION_STOPPED)
            await box.close()
            return tx_id

    tx = ChargingTransaction.get_by_id(run(scenario()))
    assert tx.stop_reason == "Remote"
    assert tx.stopped_at == booking.end
    assert Booking.get_by_id(booking.id).state == BookingState.COMPLETED


def test_no_show(db, station, clock: FakeClock, config: CsmsConfig):
    booking = book(db, station, clock)
    cs = CentralSystem(config, db, clock=clock)
    recorder = Recorder(cs)

    async def scenario() -> str:
        async with running(cs):
            box = await booted(cs, clock)
            clock.advance(minutes=15)
            await asyncio.sleep(0.2)
            assert not recorder.of(EventKind.BOOKING_NO_SHOW)  # still inside the grace
            clock.advance(minutes=1)
            event = await recorder.wait_for(EventKind.BOOKING_NO_SHOW)
            assert event.data["booking_code"] == booking.code
            status = await box.authorize(booking.code)
            await box.close()
            return status

    assert run(scenario()) == "Expired"
    assert Booking.get_by_id(booking.id).state == BookingState.NO_SHOW


def test_reservations_mirrored(db, station, clock: FakeClock, config: CsmsConfig):
    config.probe_features = True
    cs = CentralSystem(config, db, clock=clock)
    recorder = Recorder(cs)

    async def scenario() -> None:
        async with running(cs):
            box = await booted(cs, clock)
            await until(lambda: ChargePoint.get(ChargePoint.ident == "CP-A").supports_reservation)
            # Booked by another process (the command line) while the system runs.
            booking = book(db, station, clock, arrival=clock() + timedelta(minutes=30))
            await recorder.wait_for(EventKind.BOOKINGS_CHANGED)
            await asyncio.sleep(0.2)
            assert box.connectors[1].reservation is None  # 30 min ahead: not yet
            clock.advance(minutes=16)
            await until(lambda: box.connectors[1].reservation == booking.id)
            await until(lambda: Booking.get_by_id(booking.id).reservation_sent)
            BookingService(db, station, clock=clock).cancel(booking.code)
            await until(lambda: box.connectors[1].reservation is None)
            await until(lambda: not Booking.get_by_id(booking.id).reservation_sent)
            await box.close()

    run(scenario())


def test_reconnect_applies_queued_stop(db, station, clock: FakeClock, config: CsmsConfig):
    booking = book(db, station, clock)
    cs = CentralSystem(config, db, clock=clock)
    recorder = Recorder(cs)

    async def scenario() -> tuple[int, int, object]:
        async with running(cs):
            box = await booted(cs, clock)
            tx_id, _ = await box.charge(booking.code)
            clock.advance(minutes=5)
            await box.meter(tx_id, seconds=300)
            await box.disconnect()
            await recorder.wait_for(EventKind.CHARGER_DISCONNECTED)
            assert ChargingTransaction.get_by_id(tx_id).state == TransactionState.ACTIVE
            clock.advance(minutes=5)
            await box.meter(tx_id, seconds=300)  # queued
            stopped_at = clock.advance(minutes=1)
            assert await box.stop_transaction(tx_id) is None  # queued while offline
            meter_stop = int(box.connectors[1].meter_wh)
            clock.advance(minutes=10)  # it comes back later
            await box.connect()
            assert await box.boot() == "Accepted"
            await recorder.wait_for(EventKind.SESSION_STOPPED)
            await box.close()
            return tx_id, meter_stop, stopped_at

    tx_id, meter_stop, stopped_at = run(scenario())
    tx = ChargingTransaction.get_by_id(tx_id)
    assert tx.state == TransactionState.FINISHED
    assert tx.stopped_at == stopped_at
    assert tx.meter_stop_wh == meter_stop
    assert MeterValue.select().where(MeterValue.transaction == tx_id).count() == 9


def test_restart_mid_session_loses_nothing(db_target, station, clock: FakeClock, config):
    booking = book(station._meta.database, station, clock)

    async def first_half() -> tuple[ChargeBox, int]:
        cs = CentralSystem(config, station._meta.database, clock=clock)
        async with running(cs):
            box = await booted(cs, clock)
            tx_id, _ = await box.charge(booking.code)
            for _ in range(2):
                clock.advance(minutes=5)
                await box.meter(tx_id, seconds=300)
        await asyncio.wait_for(box._reader, 5)  # the stop closed the charger's link
        return box, tx_id

    async def second_half(box: ChargeBox, tx_id: int, db) -> None:
        cs = CentralSystem(config, db, clock=clock)
        recorder = Recorder(cs)
        async with running(cs):
            assert tx_id in cs.ledger.open  # read back at start-up
            box.url = f"{url(cs)}/CP-A"
            await box.connect()
            assert await box.boot() == "Accepted"
            clock.advance(minutes=5)
            await box.meter(tx_id, seconds=300)
            assert await box.stop_transaction(tx_id) == "Accepted"
            await recorder.wait_for(EventKind.SESSION_STOPPED)
            await box.close()

    async def both() -> int:
        box, tx_id = await first_half()
        station._meta.database.close()
        db = open_database(db_target)  # the console restarted
        assert ChargingTransaction.get_by_id(tx_id).state == TransactionState.ACTIVE
        assert not ChargePoint.get(ChargePoint.ident == "CP-A").connected
        await second_half(box, tx_id, db)
        return tx_id

    tx_id = run(both())
    tx = ChargingTransaction.get_by_id(tx_id)
    assert tx.state == TransactionState.FINISHED and tx.booking_id == booking.id
    assert tx.meter_start_wh == 0 and tx.energy_kwh * 1000 == tx.meter_stop_wh
    # 3 periodic readings (2 before, 1 after the restart) and the closing one.
    assert MeterValue.select().where(MeterValue.transaction == tx_id).count() == 12
    assert tx.price_total is not None


def test_fully_charged_notification(db, station, clock: FakeClock, config):
    from evcms_desktop.simulator.chargebox import Battery

    # Its end lies past the test's 62 minutes: the auto-stop at a booked end raced the last reading.
    booking = book(db, station, clock, minutes=120)
    cs = CentralSystem(config, db, clock=clock)
    recorder = Recorder(cs)

    async def scenario() -> None:
        async with running(cs):
            box = ChargeBox(
                "CP-A",
                url(cs),
                clock=clock,
                meter_interval=3600,
                battery=lambda: Battery(soc=95.0, capacity_kwh=10),
            )
            await box.connect()
            await box.boot()
            tx_id, _ = await box.charge(booking.code)
            clock.advance(seconds=60)
            await box.meter(tx_id, seconds=60)
            assert not recorder.of(EventKind.FULLY_CHARGED)
            clock.advance(seconds=3600)
            await box.meter(tx_id, seconds=3600)
            event = await recorder.wait_for(EventKind.FULLY_CHARGED)
            assert event.data["transaction_id"] == tx_id
            clock.advance(seconds=60)
            await box.meter(tx_id, seconds=60)
            await box.close()

    run(scenario())
    assert len(recorder.of(EventKind.FULLY_CHARGED)) == 1


def test_transaction_lost_by_charger_is_closed_at_booked_end(db, station, clock, config):
    """A charger that rebooted offline no longer knows its transaction: at the booked end
    RemoteStop is Rejected, and the central system closes it with the last reading."""
    booking = book(db, station, clock, minutes=30)
    cs = CentralSystem(config, db, clock=clock)
    recorder = Recorder(cs)

    async def scenario() -> tuple[int, int]:
        async with running(cs):
            box = await booted(cs, clock)
            tx_id, _ = await box.charge(booking.code)
            clock.advance(minutes=10)
            await box.meter(tx_id, seconds=600)
            last = int(box.connectors[1].meter_wh)
            await box.close()
            fresh = await booted(cs, clock)  # same id, no memory of the transaction
            clock.advance(minutes=21)
            await recorder.wait_for(EventKind.SESSION_STOPPED)
            await fresh.close()
            return tx_id, last

    tx_id, last = run(scenario())
    tx = ChargingTransaction.get_by_id(tx_id)
    assert tx.state == TransactionState.FINISHED and tx.stop_reason == "Other"
    assert tx.meter_stop_wh == last and tx.price_total is not None


def test_fully_charged_when_target_met_and_ev_suspends(db, station, clock, config):
    set_continue_past_booked_energy(station, True)  # not stopped at the booked energy
    booking = book(db, station, clock, minutes=30, energy_kwh="8.8")
    cs = CentralSystem(config, db, clock=clock)
    recorder = Recorder(cs)

    async def scenario() -> None:
        async with running(cs):
            box = await booted(cs, clock)
            tx_id, _ = await box.charge(booking.code)
            await until(lambda: bool(box.connectors[1].profiles))  # held to 17.6 kW
            clock.advance(seconds=600)
            await box.meter(tx_id, seconds=600)  # 2.9 kWh of 8.8
            await box.status(1, "SuspendedEV")
            await box.status(1, "Charging")
            assert not recorder.of(EventKind.FULLY_CHARGED)
            # At the held 17.6 kW the booked 8.8 kWh take the booking's 30 minutes: the
            # charger's clock may run up to 5 minutes ahead, so it reports them at 27 min.
            clock.advance(seconds=1000)
            await box.meter(tx_id, seconds=1250)  # 9.0 kWh
            await box.status(1, "SuspendedEV")
            event = await recorder.wait_for(EventKind.FULLY_CHARGED)
            assert event.data["booking_code"] == booking.code
            await box.close()

    run(scenario())


def test_reservation_id_counts_only_with_its_booking_id(db, station, clock, config):
    booking = book(db, station, clock)
    cs = CentralSystem(config, db, clock=clock)

    async def scenario() -> tuple[str, str]:
        async with running(cs):
            box = await booted(cs, clock)
            _, stranger = await box.start_transaction(1, "SOMEONEELSE", reservation_id=booking.id)
            _, owner = await box.start_transaction(
                1, booking.code, reservation_id=booking.id, timestamp=clock.advance(seconds=1)
            )
            await box.close()
            return stranger, owner

    assert run(scenario()) == ("Invalid", "Accepted")
    assert ChargingTransaction.get(ChargingTransaction.id_tag == booking.code).booking_id == (
        booking.id
    )
