"""An operator's console sees every site: its Chargers, Bookings and Sessions tabs offer
"All sites" and each site, and show each row with its site (in that site's currency). A
station PC's console, which sees its own site, shows no filter. On both engines."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from evcms_desktop.csms.events import CsmsEvent, EventKind
from evcms_desktop.domain.plans import PlanKind
from evcms_desktop.domain.validation import PlanRequest
from evcms_desktop.store.bookings import BookingService
from evcms_desktop.store.models import ChargePoint, ChargingTransaction, Connector
from evcms_desktop.store.stations import add_station, list_stations
from evcms_desktop.ui.main_window import MainWindow
from evcms_desktop.ui.roles import Session
from evcms_desktop.ui.sites import ALL_SITES
from tests.conftest import BOTH_ENGINES, NOW, engine_target


@pytest.fixture(params=BOTH_ENGINES)
def db_target(request: pytest.FixtureRequest, db_path: Path) -> str:
    return engine_target(request, db_path)


@pytest.fixture
def two_sites(db, station):
    paris = add_station("Paris Nord", timezone="Europe/Paris", currency="EUR")
    cp = ChargePoint.create(ident="PAR-1", station=paris)
    Connector.create(charge_point=cp, number=1)
    service = BookingService(db, paris, clock=lambda: NOW)
    outcome = service.plan(PlanRequest(NOW + timedelta(hours=2), timedelta(hours=1), Decimal(5)))
    booking = service.confirm(outcome, outcome.plan(PlanKind.DURATION))
    for ident in ("PAR-1", "CP-A"):
        ChargingTransaction.create(
            charge_point=ChargePoint.get(ChargePoint.ident == ident),
            connector_number=1,
            id_tag=f"TAG-{ident}",
            meter_start_wh=0,
            started_at=NOW - timedelta(hours=1),
        )
    return paris, booking


def _shown(view_table, column: str) -> set[str]:
    model = view_table.model()
    source = model.sourceModel()
    titles = [source.headerData(c, Qt.Orientation.Horizontal) for c in range(source.columnCount())]
    col = titles.index(column)
    return {model.index(row, col).data() for row in range(model.rowCount())}


def test_an_operators_console_filters_its_tabs_by_site(qtbot, service, bus, credentials, two_sites):
    paris, paris_booking = two_sites
    window = MainWindow(
        service, bus, Session(credentials), clock=lambda: NOW, sites=list_stations()
    )
    qtbot.addWidget(window)
    window.show()
    tabs = {
        "chargers": (window.chargers.site_choice, window.chargers.table, "Charger"),
        "bookings": (window.bookings.site_choice, window.bookings.table, "Booking ID"),
        "sessions": (window.sessions.site_choice, window.sessions.table, "Charger"),
    }
    for choice, _table, _column in tabs.values():
        assert not choice.isHidden()
        assert [choice.itemText(i) for i in range(choice.count())] == [
            ALL_SITES, "Test Station", "Paris Nord",
        ]  # fmt: skip

    chooser, table, column = tabs["chargers"]
    assert _shown(table, column) == {"CP-A", "CP-B", "PAR-1"}
    assert _shown(table, "Site") == {"Test Station", "Paris Nord"}
    chooser.choose(paris.id)
    assert _shown(table, column) == {"PAR-1"}
    chooser.choose(None)
    assert _shown(table, column) == {"CP-A", "CP-B", "PAR-1"}

    chooser, table, column = tabs["bookings"]
    assert _shown(table, column) == {paris_booking.code}
    assert _shown(table, "Quoted") == {f"€{paris_booking.price_total}"}
    chooser.choose(service.station.id)
    assert _shown(table, column) == set()

    chooser, table, column = tabs["sessions"]
    assert _shown(table, column) == {"CP-A", "PAR-1"}
    chooser.choose(paris.id)
    assert _shown(table, column) == {"PAR-1"}
    assert _shown(table, "Site") == {"Paris Nord"}

    # The other site's live events reach this console.
    bus.publish(CsmsEvent(EventKind.CHARGER_CONNECTED, "PAR-1 connected", "PAR-1"))
    qtbot.waitUntil(lambda: window.chargers_model.row_for("PAR-1", 1).connected, timeout=5000)

    # The Site column comes right after the id (or charger), in sight on a narrow screen
    # however wide the other columns grow.
    for view, first in ((window.bookings, "Booking ID"), (window.sessions, "Charger")):
        source = view.table.model().sourceModel()
        titles = [source.headerData(c, Qt.Orientation.Horizontal) for c in range(2)]
        assert titles == [first, "Site"]
        sorted_by = view.table.horizontalHeader().sortIndicatorSection()
        assert source.headerData(sorted_by, Qt.Orientation.Horizontal) == "Start"
    window.quit_confirmed = True
    window.close()


def test_a_station_pc_console_shows_its_own_site_and_no_filter(
    qtbot, service, bus, credentials, two_sites
):
    window = MainWindow(service, bus, Session(credentials), clock=lambda: NOW)
    qtbot.addWidget(window)
    window.show()
    for view in (window.chargers, window.bookings, window.sessions):
        assert view.site_choice.isHidden()
    assert _shown(window.chargers.table, "Charger") == {"CP-A", "CP-B"}
    assert _shown(window.bookings.table, "Booking ID") == set()
    assert _shown(window.sessions.table, "Charger") == {"CP-A"}
    with pytest.raises(ValueError):
        _shown(window.chargers.table, "Site")  # no Site column: one site
    window.quit_confirmed = True
    window.close()
