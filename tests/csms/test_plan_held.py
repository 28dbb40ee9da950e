"""The booked plan held at the charger: a booked session on the simulator is limited to
the plan's power by a TxProfile and stopped at the booked energy, billed as quoted; with
the station setting to continue, the extra is billed and explained."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

from evcms_desktop.app.cli import main
from evcms_desktop.csms.events import EventKind
from evcms_desktop.csms.server import CentralSystem, CsmsConfig
from evcms_desktop.domain.plans import PlanKind
from evcms_desktop.simulator.chargebox import Battery, ChargeBox
from evcms_desktop.store.models import ChargingTransaction, TransactionState
from evcms_desktop.store.stations import add_station, set_continue_past_booked_energy
from tests.csms.helpers import FakeClock, Recorder, book, run, running, until, url


def _charge(cs: CentralSystem, clock: FakeClock, code: str, minutes: int) -> tuple[int, list]:
    """Start the booking on CP-A #1 and meter a minute at a time for `minutes`."""
    recorder = Recorder(cs)

    async def scenario() -> tuple[int, list]:
        async with running(cs):
            box = ChargeBox(
                "CP-A", url(cs), clock=clock, meter_interval=3600, battery=lambda: Battery(soc=10)
            )
            await box.connect()
            assert await box.boot() == "Accepted"
            tx_id, status = await box.charge(code, connector=1)
            assert status == "Accepted"
            await until(lambda: bool(box.connectors[1].profiles))  # after the start's answer
            powers = []
            for _ in range(minutes):
                if tx_id not in box.transactions:
                    break  # stopped by the central system
                charging = box.transactions[tx_id]
                clock.advance(minutes=1)
                await box.meter(tx_id, seconds=60)
                powers.append(charging.power_kw)
                await asyncio.sleep(0.05)  # the central system reads it
                reached = recorder.of(EventKind.BOOKED_ENERGY_REACHED)
                if reached and not reached[0].data["continues"]:
                    await until(lambda: tx_id not in box.transactions)  # stopped by us
                    break
            if tx_id in box.transactions:
                await box.stop_transaction(tx_id)
            await recorder.wait_for(EventKind.SESSION_STOPPED)
            await box.close()
            return tx_id, powers

    result = run(scenario(), timeout=60)
    cs.recorded = recorder  # type: ignore[attr-defined]
    return result


def test_a_booked_session_is_held_to_its_plan_and_billed_as_quoted(
    db, db_target, station, clock: FakeClock, config: CsmsConfig, capsys
):
    # Another site's sessions continue past their booked energy: not this one's.
    set_continue_past_booked_energy(add_station("Elsewhere"), True)
    # 5 kWh in 60 minutes: Plan 1 sets the power to what that needs.
    booking = book(db, station, clock, minutes=60, energy_kwh="5", kind=PlanKind.DURATION)
    plan_kw = float(booking.power_kw)
    assert plan_kw < 22
    cs = CentralSystem(config, db, clock=clock)
    tx_id, powers = _charge(cs, clock, booking.code, minutes=90)
    # Limited to the plan's power by the TxProfile, not the charger's 22 kW.
    assert powers and max(p for p in powers if p is not None) <= plan_kw + 1e-6
    tx = ChargingTransaction.get_by_id(tx_id)
    assert tx.state == TransactionState.FINISHED and tx.stop_reason == "Remote"
    assert tx.energy_kwh >= booking.energy_kwh  # delivered: a little past, within a minute
    assert tx.energy_kwh - booking.energy_kwh <= Decimal(plan_kw) / 60 + Decimal("0.001")
    assert tx.price_total == booking.price_total  # the quote is the bill
    reached = cs.recorded.of(EventKind.BOOKED_ENERGY_REACHED)  # type: ignore[attr-defined]
    assert len(reached) == 1 and "stopping" in reached[0].message
    stopped = cs.recorded.of(EventKind.SESSION_STOPPED)[0]  # type: ignore[attr-defined]
    assert stopped.data["quoted"] == stopped.data["cost"] == str(booking.price_total)
    assert main(["--db", db_target, "sessions"]) == 0
    line = capsys.readouterr().out.strip()
    price = f"£{booking.price_total}"
    why = (
        "as quoted"
        if tx.energy_kwh == booking.energy_kwh
        else "stopped at the booked energy; the last reading's extra not billed"
    )
    assert line.endswith(
        f"{tx.energy_kwh:.3f} kWh  {price}  (Remote)  booked 5.00 kWh {price}: {why}"
    )
    # `bookings` labels its price the quote and puts the bill beside it.
    assert main(["--db", db_target, "bookings", "--date", "2026-12-01"]) == 0
    assert (
        capsys.readouterr()
        .out.strip()
        .endswith(
            f"booked 5.00 kWh, quoted {price}; delivered {tx.energy_kwh:.2f} kWh, billed {price}:"
            f" {why}"
        )
    )


def test_with_the_setting_the_session_continues_and_the_extra_is_billed(
    db, db_target, station, clock: FakeClock, config: CsmsConfig, capsys
):
    set_continue_past_booked_energy(station, True)
    config.stop_grace = timedelta(hours=1)  # no stop at the booked end in this test
    booking = book(db, station, clock, minutes=60, energy_kwh="5", kind=PlanKind.DURATION)
    cs = CentralSystem(config, db, clock=clock)
    tx_id, _ = _charge(cs, clock, booking.code, minutes=80)
    tx = ChargingTransaction.get_by_id(tx_id)
    assert tx.stop_reason == "Local"  # the charger's own stop, not ours
    assert tx.energy_kwh > booking.energy_kwh + Decimal(1)
    extra = tx.energy_kwh - booking.energy_kwh
    # Eq. (8): the extra energy at Ec = 0.50, to the penny.
    assert abs(tx.price_total - booking.price_total - Decimal("0.50") * extra) <= Decimal("0.01")
    reached = cs.recorded.of(EventKind.BOOKED_ENERGY_REACHED)  # type: ignore[attr-defined]
    assert len(reached) == 1 and "continues" in reached[0].message
    stopped = cs.recorded.of(EventKind.SESSION_STOPPED)[0]  # type: ignore[attr-defined]
    assert "past the booked" in stopped.message
    assert main(["--db", db_target, "sessions"]) == 0
    assert (
        capsys.readouterr()
        .out.strip()
        .endswith(
            f"booked 5.00 kWh £{booking.price_total}: {extra:.3f} kWh past the booking billed"
        )
    )
    assert main(["--db", db_target, "bookings", "--date", "2026-12-01"]) == 0
    assert (
        capsys.readouterr()
        .out.strip()
        .endswith(
            f"booked 5.00 kWh, quoted £{booking.price_total}; delivered {tx.energy_kwh:.2f} kWh,"
            f" billed £{tx.price_total}: {extra:.3f} kWh past the booking billed"
        )
    )
