"""The Sessions table prices running sessions so far and shows finished ones as final."""

from datetime import timedelta
from decimal import Decimal

from evcms_desktop.domain.validation import PlanRequest
from evcms_desktop.store.models import ChargePoint, ChargingTransaction
from evcms_desktop.ui.models.sessions import SessionsModel
from tests.conftest import NOW


def test_running_session_costs_so_far_and_finished_one_its_final_price(qtbot, service, station):
    outcome = service.plan(
        PlanRequest(NOW + timedelta(hours=6), timedelta(hours=1), Decimal("17.6"))
    )
    booking = service.confirm(outcome, outcome.cheapest)  # 12:00, Peak Off, ACM 0
    cp = ChargePoint.get(ChargePoint.ident == "CP-A")
    running = ChargingTransaction.create(
        charge_point=cp,
        connector_number=1,
        booking=booking,
        id_tag=booking.code,
        meter_start_wh=1000,
        started_at=NOW + timedelta(hours=6),
        last_energy_wh=9800,  # 8.8 kWh so far
    )
    finished = ChargingTransaction.create(
        charge_point=cp,
        connector_number=2,
        id_tag="OTHER",
        meter_start_wh=0,
        meter_stop_wh=5000,
        started_at=NOW,
        stopped_at=NOW + timedelta(minutes=20),
        state="finished",
        energy_kwh=Decimal("5"),
        price_total=Decimal("2.70"),
    )
    model = SessionsModel(station, clock=lambda: NOW + timedelta(hours=7))
    model.load(NOW - timedelta(days=1), NOW + timedelta(days=1))
    texts = {tx.id: model.cost_text(tx) for tx in model.records()}
    assert texts[running.id] == "£4.60 so far"  # 0.5 * 8.8 + 0 + 0.2
    assert texts[finished.id] == "£2.70"
    column = [c.title for c in model.columns].index("Cost")
    shown = {model.data(model.index(row, column)) for row in range(model.rowCount())}
    assert shown == {"£4.60 so far", "£2.70"}
