"""The Sessions table prices running sessions so far and shows finished ones as final."""

from datetime import timedelta
from decimal import Decimal

from evcms_desktop.domain.validation import PlanRequest
from evcms_desktop.store.models import ChargePoint, ChargingTransaction
from evcms_desktop.ui.formatting import DASH
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


def test_the_quote_is_shown_beside_the_bill_with_why_they_differ(qtbot, service, station):
    outcome = service.plan(
        PlanRequest(NOW + timedelta(hours=6), timedelta(hours=1), Decimal("17.6"))
    )
    booking = service.confirm(outcome, outcome.cheapest)
    cp = ChargePoint.get(ChargePoint.ident == "CP-A")

    def finished(number: int, kwh: str, price: Decimal) -> ChargingTransaction:
        return ChargingTransaction.create(
            charge_point=cp,
            connector_number=number,
            booking=booking,
            id_tag=booking.code,
            meter_start_wh=0,
            started_at=NOW + timedelta(hours=6, minutes=number),
            stopped_at=NOW + timedelta(hours=7),
            state="finished",
            energy_kwh=Decimal(kwh),
            price_total=price,
        )

    quoted = booking.price_total
    rows = {
        "as quoted": finished(1, "17.6", quoted),
        "stopped at the booked energy; the last reading's extra not billed": finished(
            2, "17.9", quoted
        ),
        "2.400 kWh past the booking billed": finished(3, "20.0", quoted + Decimal("1.20")),
        "7.600 kWh of the booking not delivered": finished(4, "10.0", quoted - Decimal("3.80")),
    }
    model = SessionsModel(station, clock=lambda: NOW + timedelta(hours=8))
    model.load(NOW - timedelta(days=1), NOW + timedelta(days=1))
    titles = [c.title for c in model.columns]
    booked, quote, why = (titles.index(t) for t in ("Booked", "Quoted", "Quote vs bill"))
    shown = {
        model.data(model.index(r, why)): (
            model.data(model.index(r, booked)),
            model.data(model.index(r, quote)),
        )
        for r in range(model.rowCount())
    }
    assert set(shown) == set(rows)
    assert set(shown.values()) == {("17.60 kWh", f"£{quoted}")}


def test_a_session_flagged_for_review_says_why(qtbot, station):
    """The Sessions table showed nothing of a review (it is the session row's, which
    outlives the pruned events)."""
    cp = ChargePoint.get(ChargePoint.ident == "CP-A")
    why = "stop before the start; no energy billed"
    flagged, plain = (
        ChargingTransaction.create(
            charge_point=cp, connector_number=number, id_tag="TAG", meter_start_wh=0,
            started_at=NOW, stopped_at=NOW + timedelta(minutes=20), state="finished",
            energy_kwh=Decimal("0"), price_total=Decimal("1.70"), review=review,
        )
        for number, review in ((1, why), (2, None))
    )  # fmt: skip
    model = SessionsModel(station, clock=lambda: NOW + timedelta(hours=1))
    model.load(NOW - timedelta(days=1), NOW + timedelta(days=1))
    column = [c.title for c in model.columns].index("Review")
    shown = {tx.id: model.data(model.index(row, column)) for row, tx in enumerate(model.records())}
    assert shown[flagged.id] == "stop before the start; no energy billed"
    assert shown[plain.id] == DASH
