"""The simulator stamps its readings with its simulated clock, so that the energy it reports
between two readings (and over a session) fits the connector's power times the time its
timestamps say: a central system that checks that bills the simulator as measured."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from evcms_desktop.csms.protocol import parse_timestamp
from evcms_desktop.domain.plausibility import check_register_step, session_energy
from evcms_desktop.simulator.chargebox import FULL_POWER_KW, Battery, ChargeBox, SimTransaction
from tests.csms.helpers import FakeClock

T0 = datetime(2026, 12, 1, 10, tzinfo=UTC)


def _offline_box(clock: FakeClock, **kwargs: float) -> tuple[ChargeBox, SimTransaction]:
    """A charger that is not connected: what it would send waits in its queue."""
    box = ChargeBox("CP-X", "ws://127.0.0.1:1/ocpp", clock=clock, connectors=1, **kwargs)
    tx = SimTransaction(1, 1, "TAG", Battery(soc=10, capacity_kwh=100), started_at=T0)
    box.transactions[tx.id] = tx
    box.connectors[1].transaction = tx
    return box, tx


def _readings(box: ChargeBox) -> list[tuple[datetime, float]]:
    """(timestamp, energy register) of every queued MeterValues and of the stop."""
    out = []
    for payload in box.queue:
        values = getattr(payload, "meter_value", None) or payload.transaction_data
        for item in values:
            energy = next(
                float(s["value"])
                for s in item["sampledValue"]
                if s["measurand"] == "Energy.Active.Import.Register"
            )
            out.append((parse_timestamp(item["timestamp"]), energy))
        if hasattr(payload, "meter_stop"):  # its end sample is stamped as the stop
            assert values[-1]["timestamp"] == payload.timestamp
    return out


def _fits_the_power(box: ChargeBox, start: datetime) -> None:
    previous_at, previous_wh = start, 0.0
    for at, wh in _readings(box):
        check_register_step(previous_wh, wh, FULL_POWER_KW, at - previous_at)
        previous_at, previous_wh = at, wh
    stop = box.queue[-1]
    billed = session_energy(0, stop.meter_stop, start, parse_timestamp(stop.timestamp), None, 22)
    assert billed.review is None and billed.energy_wh == stop.meter_stop > 0


def test_charging_faster_than_the_clock_moves_the_timestamps_ahead():
    clock = FakeClock(T0)
    box, tx = _offline_box(clock)

    async def scenario() -> None:
        await box.meter(tx.id, seconds=600)
        await box.meter(tx.id, seconds=600)
        await box.stop_transaction(tx.id)

    asyncio.run(scenario())
    stamps = [at for at, _ in _readings(box)]
    assert stamps == [T0 + timedelta(seconds=s) for s in (600, 1200, 1200)]
    _fits_the_power(box, T0)


def test_the_simulated_clock_keeps_up_with_the_real_one_and_never_runs_back():
    clock = FakeClock(T0)
    box, tx = _offline_box(clock)

    async def scenario() -> None:
        clock.advance(minutes=10)
        await box.meter(tx.id, seconds=600)  # the ten minutes that passed
        await box.meter(tx.id, seconds=600)  # ten more, ahead of the clock
        clock.advance(minutes=40)
        await box.meter(tx.id, seconds=60)  # the clock has passed the simulation
        await box.stop_transaction(tx.id)

    asyncio.run(scenario())
    stamps = [at for at, _ in _readings(box)]
    assert stamps == [
        T0 + timedelta(minutes=10),
        T0 + timedelta(minutes=20),
        T0 + timedelta(minutes=50),
        T0 + timedelta(minutes=50),
    ]
    assert box.now() == T0 + timedelta(minutes=50)
    _fits_the_power(box, T0)


def test_a_time_scale_stamps_each_interval_with_its_simulated_length():
    clock = FakeClock(T0)
    box, tx = _offline_box(clock, meter_interval=10, time_scale=60)

    async def scenario() -> None:
        for _ in range(3):
            clock.advance(seconds=10)  # one real interval: ten simulated minutes
            await box.meter(tx.id)
        await box.stop_transaction(tx.id)

    asyncio.run(scenario())
    stamps = [at for at, _ in _readings(box)]
    assert stamps[:3] == [T0 + timedelta(minutes=10 * k) for k in (1, 2, 3)]
    assert stamps[3] == T0 + timedelta(minutes=30)
    _fits_the_power(box, T0)
