import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from evcms_desktop.domain.booking_codes import ALPHABET, looks_like_code, new_booking_code
from evcms_desktop.domain.plans import PlanKind
from evcms_desktop.domain.validation import BookingRequestError, PlanRequest
from evcms_desktop.store.bookings import (
    BookingNotFoundError,
    BookingService,
    DriverDetails,
    SlotTakenError,
)
from evcms_desktop.store.database import open_database
from evcms_desktop.store.models import Booking, BookingState, ChargePoint, Connector, Station
from tests.conftest import NOW, other_connection_rows

NOON = datetime(2026, 12, 1, 12, tzinfo=UTC)


def request(arrival=NOON, minutes=60, energy="17.6", connector=None) -> PlanRequest:
    return PlanRequest(arrival, timedelta(minutes=minutes), Decimal(energy), None, connector)


@pytest.fixture
def service(db, station) -> BookingService:
    return BookingService(db, clock=lambda: NOW)


def test_confirmed_booking_is_committed_before_it_is_returned(service, db_target):
    outcome = service.plan(request())
    booking = service.confirm(outcome, outcome.cheapest, DriverDetails("Ada", "ada@example.org"))
    # Another connection to the same database sees it at once.
    (row,) = other_connection_rows(
        db_target,
        "SELECT code, price_total, driver_name, state FROM booking WHERE id = ?",
        (booking.id,),
    )
    assert row == (booking.code, Decimal("9.00"), "Ada", "confirmed")
    assert looks_like_code(booking.code) and len(booking.code) <= 20


def test_plans_see_existing_bookings_and_move_around_them(service):
    for _ in range(4):  # fill all four connectors at noon
        outcome = service.plan(request())
        assert outcome.cheapest.start == NOON
        service.confirm(outcome, outcome.plan(PlanKind.DURATION))
    outcome = service.plan(request())
    p1 = outcome.plan(PlanKind.DURATION)
    assert p1.start == NOON + timedelta(hours=1)
    assert p1.overlapped and p1.acm == Decimal("0.25")


def test_cancelled_and_finished_bookings_do_not_block(service):
    codes = []
    for _ in range(4):
        outcome = service.plan(request())
        codes.append(service.confirm(outcome, outcome.plan(PlanKind.DURATION)).code)
    service.cancel(codes[0])
    Booking.update(state=BookingState.COMPLETED.value).where(Booking.code == codes[1]).execute()
    outcome = service.plan(request())
    assert outcome.plan(PlanKind.DURATION).start == NOON
    assert not outcome.requested_overlapped


def test_taking_the_last_connector_is_atomic_across_threads(db_target, station):
    # Leave one free connector, then let two threads race to confirm the same plan. On
    # SQLite the write lock serialises them; on PostgreSQL both pass the check and the
    # exclusion constraint refuses the second.
    service = BookingService(station=Station.get(), db=open_database(db_target), clock=lambda: NOW)
    for _ in range(3):
        outcome = service.plan(request())
        service.confirm(outcome, outcome.plan(PlanKind.DURATION))
    outcome = service.plan(request())
    last = outcome.plan(PlanKind.DURATION)
    assert last.start == NOON

    barrier = threading.Barrier(2)
    results: list[str] = []

    def take() -> None:
        worker = BookingService(service.db, station=Station.get(), clock=lambda: NOW)
        barrier.wait()
        try:
            results.append(worker.confirm(outcome, last).code)
        except SlotTakenError:
            results.append("taken")
        finally:
            service.db.close()

    threads = [threading.Thread(target=take) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(r == "taken" for r in results) == [False, True]
    at_noon = Booking.select().where(Booking.start == NOON).count()
    assert at_noon == 4


def test_a_stale_plan_on_a_taken_connector_is_refused(service):
    outcome = service.plan(request(connector=Connector.select().first().id))
    service.confirm(outcome, outcome.cheapest)
    with pytest.raises(SlotTakenError, match="just been taken"):
        service.confirm(outcome, outcome.cheapest)


def test_invalid_request_is_explained(service):
    with pytest.raises(BookingRequestError) as caught:
        service.plan(request(minutes=0))
    assert caught.value.for_field("duration")


def test_removed_charge_points_are_not_bookable(service):
    ChargePoint.update(state="removed").execute()
    with pytest.raises(BookingRequestError) as caught:
        service.plan(request())
    assert "no connectors" in caught.value.for_field("connector")[0]


def test_check_in_cancel_and_find(service):
    outcome = service.plan(request())
    code = service.confirm(outcome, outcome.cheapest).code
    assert service.find(code.lower()).code == code
    assert service.check_in(code).state == BookingState.CHECKED_IN
    with pytest.raises(ValueError, match="checked in and cannot be checked in"):
        service.check_in(code)
    assert service.cancel(code).state == BookingState.CANCELLED
    with pytest.raises(BookingNotFoundError):
        service.find("NOPE")


def test_bookings_far_from_the_request_are_not_read(db_path):
    # A year of history: the planner's query walks the (station, start) index range only.
    db = open_database(db_path)
    plan = db.execute_sql(
        "EXPLAIN QUERY PLAN SELECT connector_id, start, end FROM booking "
        "WHERE station_id = 1 AND start >= ? AND start < ? AND end > ? AND state IN ('confirmed')",
        ("2026-11-29", "2026-12-03", "2026-11-30"),
    ).fetchall()
    assert any("COVERING INDEX booking_station_id_start_end" in str(row) for row in plan)
    db.close()


def test_booking_codes_avoid_look_alikes_and_do_not_repeat():
    codes = {new_booking_code() for _ in range(5000)}
    assert len(codes) == 5000
    assert not set("".join(codes)) - set(ALPHABET)
    assert not set("01OIL") & set(ALPHABET)
    with pytest.raises(ValueError):
        new_booking_code(21)


def test_tariff_and_connector_changes_apply_to_the_next_plan(service):
    assert service.plan(request()).cheapest.price.total == Decimal("9.00")
    Station.update(energy_price=Decimal("0.40")).execute()  # saved by another window
    assert service.plan(request()).cheapest.price.total == Decimal("7.24")
    Connector.update(max_power_kw=Decimal("7")).execute()
    with pytest.raises(BookingRequestError) as caught:
        service.plan(PlanRequest(NOON, timedelta(hours=1), None, Decimal("11")))
    assert "at most 5.6 kW" in caught.value.for_field("power")[0]
