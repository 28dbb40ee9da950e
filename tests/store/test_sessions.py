"""Sessions in the store: one price for the stop and for the cost so far; the chart's
read-back of power and SoC decoded like the live path."""

from datetime import timedelta
from decimal import Decimal

from evcms_desktop.csms.sessions import SessionLedger
from evcms_desktop.csms.writer import BatchWriter
from evcms_desktop.store.models import ChargePoint, ChargingTransaction, MeterValue
from evcms_desktop.store.sessions import session_cost, stored_samples
from evcms_desktop.store.stations import station_calendar, station_tariff
from tests.conftest import NOW

# 18:00 local on a Tuesday in December: Peak On by default.
PEAK = NOW + timedelta(hours=12)


def _running_without_booking(station, started):
    cp = ChargePoint.get(ChargePoint.ident == "CP-A")
    return ChargingTransaction.create(
        charge_point=cp,
        connector_number=1,
        id_tag="OPERATOR",
        meter_start_wh=1000,
        started_at=started,
        last_energy_wh=12000,  # 11 kWh so far
    )


def test_a_running_session_without_booking_costs_so_far_what_its_stop_would_charge(db, station):
    tx = _running_without_booking(station, PEAK)
    now = PEAK + timedelta(minutes=30)
    tariff, calendar = station_tariff(station), station_calendar(station)
    so_far = session_cost(tx, tariff, calendar, now)
    assert so_far == Decimal("7.20")  # 0.5 * 11 + 0.5 * 3.00 (Peak On, free) + 0.20

    ledger = SessionLedger(db, BatchWriter(db))
    cp = ChargePoint.get(ChargePoint.ident == "CP-A")
    outcome = ledger.stop(cp, tx.id, 12000, now, "Remote", None)
    assert outcome.price is not None and outcome.price.total == so_far
    assert session_cost(ChargingTransaction.get_by_id(tx.id), tariff, calendar, now) == so_far


def test_chart_read_back_skips_per_phase_power_as_the_live_path_does(db, station):
    tx = _running_without_booking(station, NOW)
    at = NOW + timedelta(minutes=1)
    later = at + timedelta(seconds=10)
    for timestamp, measurand, value, unit, phase in [
        (at, "Power.Active.Import", "11000", "W", None),
        (at, "SoC", "40", "Percent", None),
        (at, "Power.Active.Import", "3667", "W", "L1"),
        (later, "Power.Active.Import", "3600", "W", "L2"),
        (later, "Power.Active.Import", "nan", "W", None),
    ]:
        MeterValue.create(
            charge_point=tx.charge_point,
            connector_number=1,
            transaction=tx,
            timestamp=timestamp,
            measurand=measurand,
            value=value,
            unit=unit,
            phase=phase,
        )
    samples = stored_samples("CP-A", 1, NOW)
    assert samples == [(at.timestamp(), 11.0, 40.0)]
