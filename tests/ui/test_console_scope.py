"""An attached console shows the sites of whoever is signed in now: an every-site operator
after an attendant of one site sees every site, and an attendant of one site after an
every-site operator sees and acts on that site only, on every page (two sites in one
database, the real windows)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from PySide6.QtWidgets import QApplication
from shiboken6 import isValid

from evcms_desktop.app.cli import build_parser, config_from_args
from evcms_desktop.app.console import StationScreens, _attached_sites, attached_screens
from evcms_desktop.csms.events import CsmsEvent, EventKind
from evcms_desktop.domain.plans import PlanKind
from evcms_desktop.domain.validation import PlanRequest
from evcms_desktop.store import operators
from evcms_desktop.store.bookings import BookingNotFoundError, BookingService
from evcms_desktop.store.models import ChargePoint, ChargingTransaction, Connector
from evcms_desktop.store.notices import BOOKING_CREATED, record_notice
from evcms_desktop.store.stations import add_station
from evcms_desktop.ui.dialogs.sign_in import SignInDialog
from evcms_desktop.ui.main_window import MainWindow
from evcms_desktop.ui.roles import Role, Session
from tests.conftest import NOW
from tests.ui.conftest import FakeCommands


@pytest.fixture
def two_sites(db, station):
    """Test Station (CP-A, CP-B) and Harbour (CP-H), each with a booking, a finished
    session and a notice; oli works at every site, ann at Test Station, hal at Harbour,
    and bea is an operator of Harbour only."""
    harbour = add_station("Harbour", timezone="Europe/Paris", currency="EUR")
    cp = ChargePoint.create(ident="CP-H", station=harbour)
    Connector.create(charge_point=cp, number=1)
    codes = {}
    for site, ident in ((station, "CP-A"), (harbour, "CP-H")):
        service = BookingService(db, site, clock=lambda: NOW)
        request = PlanRequest(NOW + timedelta(hours=2), timedelta(hours=1), Decimal(5))
        outcome = service.plan(request)
        codes[ident] = service.confirm(outcome, outcome.plan(PlanKind.DURATION)).code
        ChargingTransaction.create(
            charge_point=ChargePoint.get(ChargePoint.ident == ident), connector_number=1,
            id_tag=f"TAG-{ident}", meter_start_wh=0, meter_stop_wh=5000,
            started_at=NOW - timedelta(hours=2), stopped_at=NOW - timedelta(hours=1),
            state="finished", energy_kwh=Decimal(5), price_total=Decimal("2.50"),
        )  # fmt: skip
        record_notice(BOOKING_CREATED, f"{ident} booked", charge_point=ident)
    operators.add_operator("oli", "operator", "operator-pw")
    operators.add_operator("ann", "attendant", "attendant-pw", station)
    operators.add_operator("hal", "attendant", "attendant-pw", harbour)
    operators.add_operator("bea", "operator", "operator-pw", harbour)
    return station, harbour, codes


@pytest.fixture
def attached(qtbot, qloop, db, db_target, bus, credentials):
    """An attached console's windows, opened as serve_attached opens them once `name` has
    signed in to attach (`--site` and such in `args`); closed when the test ends."""
    made: list[StationScreens] = []

    def attach(name: str, role: Role, *args: str) -> StationScreens:
        config = config_from_args(build_parser().parse_args(["--db", db_target, *args]))
        session = Session(credentials)
        session.sign_in_as(name, role)
        home, sites = _attached_sites(config, name)
        service = BookingService(db, home, clock=lambda: NOW)
        screens = attached_screens(config, service, sites, session, bus, FakeCommands())
        made.append(screens)
        screens.show_console()  # signed out, as serve_attached opens it
        session.sign_in_as(name, role)
        return screens

    yield attach
    for screens in made:
        screens.close_all()


def _sign_in(qtbot, dialog: SignInDialog, name: str, password: str) -> None:
    dialog.name.setText(name)
    dialog.password.setText(password)
    with qtbot.waitSignal(dialog.accepted, timeout=10_000):
        dialog.ok.click()


def _shown(window: MainWindow) -> dict[str, set[str]]:
    """What each page of the window shows, by charger or booking."""
    sessions = window.sessions.model.records()
    notices = [n.message for n in window.notifications_model.notices()]
    window.settings.load_chargers()
    listed = window.settings.chargers
    return {
        "chargers": {row.ident for row in window.chargers_model.rows()},
        "bookings": {b.connector.charge_point.ident for b in window.bookings.model.records()},
        "sessions": {tx.charge_point.ident for tx in sessions},
        "notices": {m.split()[0] for m in notices if m.endswith(" booked")},
        "settings": {listed.item(i).text().split()[0] for i in range(listed.count())},
    }


def test_an_attached_consoles_sites_follow_whoever_signs_in(attached, qtbot, bus, two_sites):
    _station, _harbour, codes = two_sites
    screens = attached("hal", Role.ATTENDANT)
    harbour_only = {"CP-H"}
    everywhere = {"CP-A", "CP-B", "CP-H"}
    assert (
        _shown(screens.console)["chargers"] == _shown(screens.console)["settings"] == harbour_only
    )

    # An every-site operator after hal sees every site, on every page.
    screens.console.sign_out_action.trigger()
    _sign_in(qtbot, screens.console.sign_in(), "oli", "operator-pw")
    window = screens.console
    shown = _shown(window)
    assert shown["chargers"] == everywhere
    assert shown["settings"] == {"CP-A", "CP-B"}  # Settings are the first site's, as before
    assert shown["bookings"] == shown["sessions"] == shown["notices"] == {"CP-A", "CP-H"}
    assert not window.bookings.site_choice.isHidden()
    assert window.windowTitle() == "All sites – EVCMS Desktop"

    # An attendant of Test Station after oli sees and acts on Test Station only.
    window.sign_out_action.trigger()
    _sign_in(qtbot, window.sign_in(), "ann", "attendant-pw")
    window = screens.console
    assert window.isVisible() and window.role_label.text() == "ann (attendant)"
    shown = _shown(window)
    assert shown["chargers"] == shown["settings"] == {"CP-A", "CP-B"}
    assert shown["bookings"] == shown["sessions"] == shown["notices"] == {"CP-A"}
    assert window.bookings.site_choice.isHidden()
    with pytest.raises(BookingNotFoundError):
        window.service.find(codes["CP-H"])
    ocpp_before = window.ocpp_model.rowCount()
    bus.publish(CsmsEvent(EventKind.CHARGER_CONNECTED, "CP-H connected", "CP-H"))
    bus.publish(CsmsEvent(EventKind.OCPP_MESSAGE, "frame", "CP-H", data={"direction": "in"}))
    bus.publish(
        CsmsEvent(EventKind.METER_VALUES, "", "CP-H", data={"connector": 1, "power_kw": 7.0})
    )
    assert window.ocpp_model.rowCount() == ocpp_before
    assert "CP-H connected" not in [n.message for n in window.notifications_model.notices()]
    assert not window.chart.history.has(("CP-H", 1))
    assert window.windowTitle().startswith("Test Station")
    assert [
        w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()
    ] == [window]

    # Signed in as ann, an operator action asks for an operator: bea, of Harbour only,
    # gets Harbour's console, and ann's Reset of a Test Station charger is not sent.
    ran: list[str] = []
    window.actions.require_operator("Reset", lambda: ran.append("Reset CP-A"))
    dialog = window.actions.dialog
    assert isinstance(dialog, SignInDialog)
    _sign_in(qtbot, dialog, "bea", "operator-pw")
    assert screens.console is not window and (not isValid(window) or not window.isVisible())
    assert _shown(screens.console)["chargers"] == harbour_only
    assert ran == [] and screens.commands.calls == []


def test_with_site_an_attached_console_keeps_that_site_and_refuses_another_sites_people(
    attached, qtbot, two_sites
):
    """`--site Harbour`: every-site oli sees Harbour there, and ann of Test Station may not
    sign in at it."""
    screens = attached("oli", Role.OPERATOR, "--site", "Harbour")
    window = screens.console
    assert _shown(window)["chargers"] == {"CP-H"}
    window.sign_out_action.trigger()
    dialog = window.sign_in()
    dialog.name.setText("ann")
    dialog.password.setText("attendant-pw")
    dialog.ok.click()
    qtbot.waitUntil(lambda: "works at one site only" in dialog.error.text(), timeout=10_000)
    assert window.session.operator is None and screens.console is window
    _sign_in(qtbot, dialog, "hal", "attendant-pw")
    assert screens.console is window and _shown(window)["chargers"] == {"CP-H"}


def test_an_every_site_operators_action_is_not_in_the_next_attendants_notifications(
    attached, qtbot, two_sites
):
    """oli unlocks Harbour's CP-H and signs out; ann of Test Station does not see it among
    the notifications (oli, signing in again, does)."""
    screens = attached("oli", Role.OPERATOR)
    window = screens.console
    row = next(r for r in window.chargers_model.rows() if r.ident == "CP-H")
    window.actions.unlock(row)
    confirm = window.actions.dialog
    assert confirm is not None
    confirm.accept()
    said = "Unlock on CP-H #1: Accepted"

    def messages(window: MainWindow) -> list[str]:
        return [n.message for n in window.notifications_model.notices()]

    qtbot.waitUntil(lambda: said in messages(window), timeout=10_000)

    window.sign_out_action.trigger()
    _sign_in(qtbot, window.sign_in(), "ann", "attendant-pw")
    window = screens.console
    assert "CP-A booked" in messages(window)
    assert said not in messages(window)

    window.sign_out_action.trigger()
    _sign_in(qtbot, window.sign_in(), "oli", "operator-pw")
    assert said in messages(screens.console)
