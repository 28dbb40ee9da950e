"""Two sites in one database: the attendant's console of one neither shows nor acts on the
other."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from evcms_desktop.csms.events import CsmsEvent, EventKind
from evcms_desktop.domain.plans import PlanKind
from evcms_desktop.domain.validation import PlanRequest
from evcms_desktop.store.bookings import BookingNotFoundError, BookingService
from evcms_desktop.store.models import ChargePoint, Connector
from evcms_desktop.store.notices import BOOKING_CREATED, record_notice
from evcms_desktop.store.stations import add_station
from evcms_desktop.ui.main_window import MainWindow
from evcms_desktop.ui.roles import Role, Session
from tests.conftest import NOW
from tests.ui.conftest import run


@pytest.fixture
def other_site(db, station):
    paris = add_station("Paris Nord", timezone="Europe/Paris", currency="EUR")
    cp = ChargePoint.create(ident="PAR-1", station=paris)
    Connector.create(charge_point=cp, number=1)
    service = BookingService(db, paris, clock=lambda: NOW)
    outcome = service.plan(PlanRequest(NOW + timedelta(hours=2), timedelta(hours=1), Decimal(5)))
    booking = service.confirm(outcome, outcome.plan(PlanKind.DURATION))
    return paris, booking


def test_the_console_of_one_site_shows_and_acts_on_that_site_only(
    qtbot, service, bus, credentials, other_site
):
    paris, paris_booking = other_site
    record_notice(BOOKING_CREATED, "Paris booked", charge_point="PAR-1")
    record_notice(BOOKING_CREATED, "London booked", charge_point="CP-A")
    window = MainWindow(service, bus, Session(credentials), clock=lambda: NOW)
    qtbot.addWidget(window)
    window.show()

    assert {r.label.split()[0] for r in window.chargers_model.rows()} == {"CP-A", "CP-B"}
    messages = [n.message for n in window.notifications_model.notices()]
    assert "London booked" in messages and "Paris booked" not in messages

    # Live events of the other site's chargers do not reach this console.
    ocpp_before = window.ocpp_model.rowCount()
    for ident in ("PAR-1", "CP-A"):
        bus.publish(CsmsEvent(EventKind.CHARGER_CONNECTED, f"{ident} connected", ident))
        bus.publish(CsmsEvent(EventKind.OCPP_MESSAGE, "frame", ident, data={"direction": "in"}))
    messages = [n.message for n in window.notifications_model.notices()]
    assert "CP-A connected" in messages and "PAR-1 connected" not in messages
    assert window.ocpp_model.rowCount() - ocpp_before <= 1
    assert {r.label.split()[0] for r in window.chargers_model.rows()} == {"CP-A", "CP-B"}

    # Nor can it look up the other site's booking, let alone check it in.
    with pytest.raises(BookingNotFoundError):
        window.service.check_in(paris_booking.code)
    assert BookingService(window.service.db, paris).find(paris_booking.code).state == "confirmed"


def test_the_settings_of_one_site_list_and_change_its_own_chargers_only(
    qtbot, qloop, window_factory, other_site
):
    window = window_factory()
    settings = window.settings
    window.session.set_role(Role.OPERATOR)
    settings.load_chargers()
    listed = {settings.chargers.item(i).text().split()[0] for i in range(settings.chargers.count())}
    assert listed == {"CP-A", "CP-B"}

    settings.charger_id.setText("PAR-1")
    settings.remove_charger()
    run(qtbot, settings.task)
    assert settings.charger_message.text() == "PAR-1 is not a charger of Test Station."
    assert ChargePoint.get(ChargePoint.ident == "PAR-1").state != "removed"
