"""Many sites in one database: each its own tariff, time zone, chargers and bookings."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from evcms_desktop.app.cli import main
from evcms_desktop.domain.plans import PlanKind
from evcms_desktop.domain.validation import PlanRequest
from evcms_desktop.store.bookings import BookingNotFoundError, BookingService, bookings_between
from evcms_desktop.store.models import Booking, ChargePoint, Connector, Station
from evcms_desktop.store.notices import BOOKING_CREATED, recent_events, record_notice
from evcms_desktop.store.stations import (
    SiteError,
    add_station,
    charge_point_station,
    charge_point_with_station,
    connector_numbers,
    continues_past_booked_energy,
    find_station,
    record_boot,
)
from tests.conftest import NOW

# 17:00 UTC: 17:00 in London (Peak On, 16-22 on weekdays), 12:00 in New York (Peak Off).
EVENING_UTC = datetime(2026, 12, 1, 17, tzinfo=UTC)


def _chargers(station: Station, *idents: str) -> None:
    for ident in idents:
        cp = ChargePoint.create(ident=ident, station=station)
        Connector.create(charge_point=cp, number=1)


@pytest.fixture
def two_sites(db):
    london = Station.get()
    new_york = add_station(
        "Hudson Yard", timezone="America/New_York", currency="USD", energy_price="0.30"
    )
    _chargers(london, "LON-1")
    _chargers(new_york, "NYC-1")
    return london, new_york


def request(arrival=EVENING_UTC, minutes=60, energy="8") -> PlanRequest:
    return PlanRequest(arrival, timedelta(minutes=minutes), Decimal(energy), None, None)


def test_tariffs_and_time_zones_price_each_site_on_its_own(db, two_sites):
    london, new_york = two_sites
    at_london = BookingService(db, london, clock=lambda: NOW).plan(request()).cheapest
    at_new_york = BookingService(db, new_york, clock=lambda: NOW).plan(request()).cheapest
    # The same hour: Peak On in London, so the cheapest plan there moves to Peak Off
    # or pays the peak charge; midday in New York is Peak Off.
    requested_london = BookingService(db, london, clock=lambda: NOW).plan(request())
    assert requested_london.plan(PlanKind.DURATION).peak_on is True
    new_york_duration = BookingService(db, new_york, clock=lambda: NOW).plan(request())
    assert new_york_duration.plan(PlanKind.DURATION).peak_on is False
    # Eq. 8 with each site's own energy price: 8 kWh x 0.50 GBP against 8 kWh x 0.30 USD.
    assert at_london.price.energy == Decimal("4.00")
    assert at_new_york.price.energy == Decimal("2.40")
    assert {Connector.get_by_id(at_london.connector_id).charge_point.ident} == {"LON-1"}
    assert {Connector.get_by_id(at_new_york.connector_id).charge_point.ident} == {"NYC-1"}


def test_bookings_of_one_site_neither_block_nor_reach_the_other(db, two_sites):
    london, new_york = two_sites
    at_london = BookingService(db, london, clock=lambda: NOW)
    at_new_york = BookingService(db, new_york, clock=lambda: NOW)
    outcome = at_london.plan(request())
    taken = at_london.confirm(outcome, outcome.plan(PlanKind.DURATION))
    # London's only connector is taken at 17:00; New York's is still free then.
    assert at_london.plan(request()).plan(PlanKind.DURATION).start > EVENING_UTC
    assert at_new_york.plan(request()).plan(PlanKind.DURATION).start == EVENING_UTC
    # New York's attendant cannot look up, check in or cancel London's booking.
    for act in (at_new_york.find, at_new_york.check_in, at_new_york.cancel):
        with pytest.raises(BookingNotFoundError):
            act(taken.code)
    assert at_london.find(taken.code).state == "confirmed"
    day = (EVENING_UTC - timedelta(hours=12), EVENING_UTC + timedelta(hours=12))
    assert [b.code for b in bookings_between(london, *day)] == [taken.code]
    assert bookings_between(new_york, *day) == []


def test_notices_and_events_are_kept_per_site(db, two_sites):
    london, new_york = two_sites
    record_notice(BOOKING_CREATED, "at London", charge_point="LON-1")
    record_notice(BOOKING_CREATED, "at New York", charge_point="NYC-1")
    record_notice(BOOKING_CREATED, "site-wide")
    kinds = {BOOKING_CREATED}
    assert [e.message for e in recent_events(kinds, station=london)] == ["site-wide", "at London"]
    assert [e.message for e in recent_events(kinds, station=new_york)] == [
        "site-wide",
        "at New York",
    ]
    assert len(recent_events(kinds)) == 3
    assert charge_point_station("NYC-1") == new_york.id
    assert charge_point_station("NOPE") is None


def test_sites_are_found_by_name_and_made_only_when_sound(db, two_sites):
    london, new_york = two_sites
    assert find_station("hudson yard") == new_york
    assert find_station(str(london.id)) == london
    with pytest.raises(SiteError, match="No site is named 'Nowhere'; the sites are"):
        find_station("Nowhere")
    for kwargs, message in [
        ({"name": "HUDSON YARD"}, "exists already"),
        ({"name": ""}, "1 to 80 printable"),
        ({"name": "x" * 81}, "1 to 80 printable"),
        ({"name": "Tab\there"}, "1 to 80 printable"),
        ({"name": "Mars", "timezone": "Mars/Olympus"}, "not a time zone"),
        ({"name": "Mars", "currency": "gb"}, "not a currency code"),
        ({"name": "Mars", "currency": "GBP\n"}, "not a currency code"),
        ({"name": "Mars", "energy_price": "NaN"}, "between 0 and 100"),
        ({"name": "Mars", "energy_price": "-1"}, "between 0 and 100"),
        ({"name": "Mars", "energy_price": "lots"}, "not a number"),
        ({"name": "Mars", "site_power_limit_kw": "1e9"}, "between 0 and 100000"),
    ]:
        with pytest.raises(SiteError, match=message):
            add_station(**kwargs)
    assert Station.select().count() == 2


def test_the_command_line_adds_sites_and_works_on_the_one_it_is_given(db_target, db, capsys):
    def cli(*args: str) -> int:
        return main(["--db", db_target, "--log-level", "WARNING", *args])

    hudson = ["--site", "hudson yard"]
    assert cli("sites", "add", "Hudson Yard", "--timezone", "America/New_York",
               "--currency", "USD", "--energy-price", "0.30") == 0  # fmt: skip
    assert cli(*hudson, "chargers", "add", "NYC-1", "--connectors", "1") == 0
    tomorrow = (datetime.now(ZoneInfo("America/New_York")) + timedelta(days=1)).date()
    booked = [*hudson, "book", "--date", tomorrow.isoformat(), "--arrival", "12:00"]
    assert cli(*booked, "--duration", "60", "--energy", "8") == 0
    out = capsys.readouterr().out
    assert "NYC-1 #1" in out and "Price: $" in out
    code = re.search(r"Booking ID: (\w+)", out).group(1)
    assert Booking.get(Booking.code == code).station.name == "Hudson Yard"
    assert cli(*hudson, "bookings", "--date", tomorrow.isoformat()) == 0
    assert code in capsys.readouterr().out
    assert cli("bookings", "--date", tomorrow.isoformat()) == 0  # the first site's
    assert capsys.readouterr().out.strip() == "No bookings."
    assert cli("sites") == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in listed] == ["Test", "Hudson"]
    assert "America/New_York" in listed[1] and "1 charger(s)" in listed[1]

    assert cli("--site", "Nowhere", "bookings") == 1
    assert cli("sites", "add", "HUDSON YARD") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("evcms-desktop: No site is named 'Nowhere'; the sites are")
    assert err[1] == "evcms-desktop: A site named 'HUDSON YARD' exists already."


def test_continuing_past_the_booked_energy_is_each_sites_own(db_target, db, two_sites, capsys):
    london, new_york = two_sites

    def cli(*args: str) -> int:
        return main(["--db", db_target, "--log-level", "WARNING", *args])

    def booking_at(site: Station) -> Booking:
        service = BookingService(db, site, clock=lambda: NOW)
        outcome = service.plan(request())
        return service.confirm(outcome, outcome.cheapest)

    at_london, at_new_york = booking_at(london), booking_at(new_york)
    assert not continues_past_booked_energy(at_london.id)
    assert cli("sites", "set", "Hudson Yard", "--past-booked-energy", "continue") == 0
    assert capsys.readouterr().out.strip() == (
        "Hudson Yard: booked sessions continue past their booked energy, the extra billed."
    )
    assert continues_past_booked_energy(at_new_york.id)
    assert not continues_past_booked_energy(at_london.id)
    assert not continues_past_booked_energy(None)
    assert cli("sites") == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[1].endswith("continues past booked energy")
    assert "continues" not in listed[0]
    assert cli("sites", "set", "Hudson Yard", "--past-booked-energy", "stop") == 0
    assert not continues_past_booked_energy(at_new_york.id)
    assert cli("sites", "set", "Nowhere", "--past-booked-energy", "stop") == 1
    with pytest.raises(SystemExit):
        cli("sites", "set", "Hudson Yard", "--past-booked-energy", "maybe")
    assert len(capsys.readouterr().err.strip().splitlines()) == 2


def test_a_connecting_charger_is_read_with_its_site_and_its_boot_recorded(two_sites):
    """The handshake's compiled look-ups (by id, with the station) and a boot's record."""
    _, new_york = two_sites
    cp = charge_point_with_station("NYC-1")
    assert cp is not None and cp.station.id == new_york.id
    assert cp.station.timezone == "America/New_York"
    assert charge_point_with_station("NYC-404") is None
    assert connector_numbers(cp.id) == {1}
    Connector.create(charge_point=cp, number=2)
    assert connector_numbers(cp.id) == {1, 2}
    ChargePoint.update(state="pending").where(ChargePoint.id == cp.id).execute()  # meanwhile
    booted = record_boot(cp.id, "Vendor", "Model", None, "2.1", EVENING_UTC)
    assert (booted.vendor, booted.model, booted.serial_number) == ("Vendor", "Model", None)
    assert booted.firmware_version == "2.1" and booted.state == "pending"
    assert booted.station.name == new_york.name
    stored = ChargePoint.get_by_id(cp.id)
    assert stored.last_boot_at == stored.last_seen_at == EVENING_UTC
    assert ChargePoint.get(ChargePoint.ident == "LON-1").vendor is None  # only that row


def _site_names(listing: str) -> list[str]:
    """The names in `sites`' lines (id, name padded to 30, zone, ...)."""
    return [line[5:35].strip() for line in listing.splitlines()]


def test_a_new_database_gets_the_sites_its_first_start_names_and_no_other(db_target, capsys):
    """A new database's first site is the one the first command names, the same on either
    engine: `sites add` makes only that one (no "EVCMS Station" beside it)."""

    def cli(*args: str) -> int:
        return main(["--db", db_target, "--log-level", "WARNING", *args])

    assert cli("sites", "add", "North Yard") == 0
    assert cli("sites", "add", "South Yard") == 0
    capsys.readouterr()
    assert cli("sites") == 0
    assert _site_names(capsys.readouterr().out) == ["North Yard", "South Yard"]


@pytest.mark.parametrize(
    ("first", "names"),
    [(["--site", "Quay Street"], ["Quay Street"]), ([], ["EVCMS Station"])],
)
def test_the_first_start_of_a_new_database_names_its_one_site(db_target, first, names, capsys):
    """`--site NAME` on a new database makes NAME its site; without it the one site is
    "EVCMS Station" (a station PC's file). A database with sites makes no more."""

    def cli(*args: str) -> int:
        return main(["--db", db_target, "--log-level", "WARNING", *args])

    assert cli(*first, "chargers", "add", "CP-1", "--connectors", "1") == 0
    assert cli("--site", "Elsewhere", "chargers", "add", "CP-2") == 1
    assert "No site is named 'Elsewhere'" in capsys.readouterr().err
    assert cli("sites") == 0
    listed = capsys.readouterr().out
    assert _site_names(listed) == names
    assert "1 charger(s)" in listed
