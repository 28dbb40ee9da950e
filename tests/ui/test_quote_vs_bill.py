"""The quote beside the bill wherever a booking is shown: the Bookings tab (its price
labelled the quote, the bill beside it), the Chargers tab (a running session against its
booking) and the kiosk's "My booking"."""

from datetime import timedelta
from decimal import Decimal

from evcms_desktop.domain.validation import PlanRequest
from evcms_desktop.store.models import ChargePoint, ChargingTransaction
from evcms_desktop.ui.kiosk import booking_status
from evcms_desktop.ui.models.bookings import BookingsModel
from evcms_desktop.ui.models.chargers import ChargersModel
from tests.conftest import NOW


def _booking(service, hours: int = 6):
    outcome = service.plan(
        PlanRequest(NOW + timedelta(hours=hours), timedelta(hours=1), Decimal("17.6"))
    )
    return service.confirm(outcome, outcome.cheapest)  # Peak Off, ACM 0: £9.00


def _session(booking, number: int, kwh: str | None, price: Decimal | None, last_wh=0):
    return ChargingTransaction.create(
        charge_point=ChargePoint.get(ChargePoint.ident == "CP-A"),
        connector_number=number,
        booking=booking,
        id_tag=booking.code,
        meter_start_wh=0,
        last_energy_wh=last_wh,
        started_at=booking.start,
        stopped_at=None if kwh is None else booking.end,
        state="active" if kwh is None else "finished",
        energy_kwh=None if kwh is None else Decimal(kwh),
        price_total=price,
    )


def _column(model, title: str) -> dict[str, str]:
    column = [c.title for c in model.columns].index(title)
    return {
        model.records()[r].code: model.data(model.index(r, column)) for r in range(model.rowCount())
    }


def test_the_bookings_tab_labels_the_quote_and_shows_the_bill_beside_it(qtbot, service, station):
    billed_more = _booking(service, 6)
    as_quoted = _booking(service, 8)
    not_yet = _booking(service, 10)
    _session(billed_more, 1, "20.0", billed_more.price_total + Decimal("1.20"))
    _session(as_quoted, 2, "17.6", as_quoted.price_total)
    model = BookingsModel(station)
    model.load(NOW.date(), NOW.date() + timedelta(days=1))
    titles = [c.title for c in model.columns]
    assert "Price" not in titles
    assert titles.index("Quoted") + 1 == titles.index("Delivered")
    quoted = f"£{billed_more.price_total:.2f}"
    assert _column(model, "Quoted")[billed_more.code] == quoted
    assert _column(model, "Delivered") == {
        billed_more.code: "20.00 kWh",
        as_quoted.code: "17.60 kWh",
        not_yet.code: "–",
    }
    billed = billed_more.price_total + Decimal("1.20")
    assert _column(model, "Billed")[billed_more.code] == f"£{billed:.2f}"
    assert _column(model, "Quote vs bill") == {
        billed_more.code: "2.400 kWh past the booking billed",
        as_quoted.code: "as quoted",
        not_yet.code: "quote (not billed yet)",
    }


def test_the_chargers_tab_shows_a_running_session_against_its_booking(qtbot, service, station):
    booking = _booking(service, 6)
    _session(booking, 1, None, None, last_wh=8800)
    model = ChargersModel(station, clock=lambda: booking.start + timedelta(minutes=30))
    row = model.row_index("CP-A", 1)
    column = model.column("Booked vs delivered")
    assert model.data(model.index(row, column)) == (
        f"8.80 of 17.60 kWh, £4.60 of £{booking.price_total:.2f} quoted"
    )
    other = model.row_index("CP-A", 2)
    assert model.data(model.index(other, column)) == "–"


def test_my_booking_shows_the_quote_and_the_bill(qtbot, service, station):
    booking = _booking(service, 6)
    assert "Price when charged as booked" in booking_status(service, booking.code)
    tx = _session(booking, 1, None, None, last_wh=17_900)
    running = booking_status(service, booking.code)
    assert "Charging: 17.90 of 17.60 kWh" in running
    assert running.endswith("quoted; booked energy reached")
    tx.state, tx.energy_kwh, tx.price_total = "finished", Decimal("10.0"), Decimal("5.20")
    tx.stopped_at = booking.end
    tx.save()
    assert booking_status(service, booking.code).endswith(
        f"Booked 17.60 kWh, quoted £{booking.price_total:.2f}; delivered 10.00 kWh, billed"
        " £5.20: 7.600 kWh of the booking not delivered"
    )
