"""The paper's charging flow end to end over real sockets on 127.0.0.1."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from evcms_desktop.csms.events import EventKind
from evcms_desktop.csms.server import CentralSystem, CsmsConfig
from evcms_desktop.simulator.chargebox import ChargeBox
from evcms_desktop.store.models import (
    Booking,
    BookingState,
    ChargingTransaction,
    Event,
    MeterValue,
    TransactionState,
)
from tests.csms.helpers import FakeClock, Recorder, book, run, running, url


def eq8(energy_kwh: Decimal, acm: Decimal) -> Decimal:
    """Eq. (8) with the default station constants: 0.50 * E + ACM * 3.00 + 0.20."""
    total = Decimal("0.50") * energy_kwh + acm * Decimal("3.00") + Decimal("0.20")
    return total.quantize(Decimal("0.01"), ROUND_HALF_UP)


def test_booked_session_is_recorded_and_priced(db, station, clock: FakeClock, config: CsmsConfig):
    booking = book(db, station, clock, minutes=30, energy_kwh="8.8")
    cs = CentralSystem(config, db, clock=clock)
    recorder = Recorder(cs)

    async def scenario() -> tuple[int, int]:
        async with running(cs):
            box = ChargeBox("CP-A", url(cs), clock=clock, meter_interval=3600)
            await box.connect()
            assert await box.boot() == "Accepted"
            tx_id, status = await box.charge(booking.code, connector=1)
            assert status == "Accepted"
            for _ in range(3):
                clock.advance(minutes=5)
                await box.meter(tx_id, seconds=300)
            meter_stop = int(box.connectors[1].meter_wh)
            clock.advance(minutes=1)
            assert await box.stop_transaction(tx_id) == "Accepted"
            await recorder.wait_for(EventKind.SESSION_STOPPED)
            await box.close()
            return tx_id, meter_stop

    tx_id, meter_stop = run(scenario())
    tx = ChargingTransaction.get_by_id(tx_id)
    assert tx.state == TransactionState.FINISHED
    assert tx.booking_id == booking.id
    assert tx.meter_start_wh == 0 and tx.meter_stop_wh == meter_stop
    assert tx.energy_kwh == Decimal(meter_stop) / 1000
    assert (tx.stopped_at - tx.started_at).total_seconds() == 16 * 60
    assert tx.price_total == eq8(tx.energy_kwh, booking.acm)
    assert tx.price_total > Decimal("0.20")
    # Held to the plan's power by its TxProfile (the charger could give 22 kW).
    assert tx.last_soc is not None and tx.last_soc > 20
    assert tx.last_power_kw == float(booking.power_kw) < 22
    # 3 periodic readings and the Transaction.End one, 3 measurands each.
    rows = MeterValue.select().where(MeterValue.transaction == tx_id)
    assert rows.count() == 12
    assert {r.measurand for r in rows} == {
        "Energy.Active.Import.Register",
        "Power.Active.Import",
        "SoC",
    }
    assert Booking.get_by_id(booking.id).state == BookingState.COMPLETED
    stopped = recorder.of(EventKind.SESSION_STOPPED)[0]
    assert stopped.data["cost"] == str(tx.price_total)
    assert EventKind.EV_CONNECTED in recorder.kinds()
    assert EventKind.CHARGING_STARTED in recorder.kinds()
    stored = {e.kind for e in Event.select()}
    assert {"charger_connected", "charging_started", "session_stopped"} <= stored
