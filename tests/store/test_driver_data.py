"""Drivers' personal data: kept only as long as the station says, erased and exported on
request, and the booking's energy and price survive both."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal

import pytest

from evcms_desktop.domain.validation import PlanRequest
from evcms_desktop.store import driver_data
from evcms_desktop.store.bookings import BookingService, DriverDetails
from evcms_desktop.store.models import Booking, Event
from evcms_desktop.store.notices import DRIVER_DATA_ERASED
from tests.conftest import NOW


@pytest.fixture
def service(db, station) -> BookingService:
    return BookingService(db, station, clock=lambda: NOW)


def _book(service, days_ahead: int, name: str | None, contact: str | None) -> Booking:
    outcome = service.plan(
        PlanRequest(
            arrival=NOW + timedelta(days=days_ahead, hours=10),
            duration=timedelta(hours=1),
            energy_kwh=10,
        )
    )
    return service.confirm(outcome, outcome.plans[0], DriverDetails(name, contact))


def _fresh(booking: Booking) -> Booking:
    return Booking.get_by_id(booking.id)


def test_details_are_blanked_after_the_retention_keeping_energy_and_price(service, caplog):
    booking = _book(service, 0, "Ada Driver", "ada@example.org")
    assert driver_data.retention_days() == 90
    ended = booking.end
    with caplog.at_level(logging.INFO):
        assert driver_data.blank_expired(ended + timedelta(days=89, hours=23)) == 0
        assert _fresh(booking).driver_name == "Ada Driver"
        assert driver_data.blank_expired(ended + timedelta(days=90, minutes=1)) == 1
    kept = _fresh(booking)
    assert (kept.driver_name, kept.driver_contact) == (None, None)
    assert kept.energy_kwh == booking.energy_kwh and kept.price_total == booking.price_total
    assert "Ada" not in caplog.text and "example.org" not in caplog.text
    notice = Event.get(Event.kind == DRIVER_DATA_ERASED)
    assert "1 booking that ended over 90 days ago" in notice.message
    assert driver_data.blank_expired(ended + timedelta(days=200)) == 0  # nothing left


def test_the_retention_is_a_station_setting_checked_on_the_way_in(service):
    booking = _book(service, 0, "Ada Driver", None)
    driver_data.set_retention_days(7)
    assert driver_data.blank_expired(booking.end + timedelta(days=8)) == 1
    for bad in (0, -1, 3651, 2.5, True, "30"):
        with pytest.raises(driver_data.DriverDataError):
            driver_data.set_retention_days(bad)  # type: ignore[arg-type]
    assert driver_data.retention_days() == 7


def test_erase_on_request_blanks_the_drivers_bookings_only(service):
    first = _book(service, 1, "Ada Driver", "ada@example.org")
    second = _book(service, 2, "A. Driver", "ada@example.org")
    other = _book(service, 3, "Bob", "bob@example.org")
    assert driver_data.erase_driver(second.code.lower()) == 2
    assert _fresh(first).driver_contact is None and _fresh(second).driver_name is None
    assert _fresh(other).driver_name == "Bob"
    assert _fresh(first).price_total == first.price_total
    notice = Event.get(Event.kind == DRIVER_DATA_ERASED)
    assert "from 2 bookings" in notice.message and "ada" not in notice.message.lower()
    with pytest.raises(driver_data.DriverDataError, match="No booking has the ID 'NOPE'"):
        driver_data.erase_driver("nope")


def test_export_on_request_lists_what_is_kept(service):
    first = _book(service, 1, "Ada Driver", "ada@example.org")
    _book(service, 3, "Bob", "bob@example.org")
    data = driver_data.export_driver(first.code)
    assert data["driver"] == {"name": "Ada Driver", "contact": "ada@example.org"}
    assert [b["booking_id"] for b in data["bookings"]] == [first.code]
    assert Decimal(data["bookings"][0]["energy_kwh"]) == first.energy_kwh


def _cli(db_target, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "evcms_desktop", "--db", str(db_target), "driver-data", *args],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip


def test_the_command_line_exports_and_erases(service, db_target, tmp_path):
    booking = _book(service, 1, "Ada Driver", "ada@example.org")
    out = tmp_path / "ada.json"
    exported = _cli(db_target, "export", booking.code, "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    assert json.loads(out.read_text())["driver"]["contact"] == "ada@example.org"
    again = _cli(db_target, "export", booking.code, "--out", str(out))
    assert again.stderr == f"evcms-desktop: cannot write: File exists ({out})\n"
    assert again.returncode == 1
    missing = tmp_path / "missing" / "ada.json"
    nowhere = _cli(db_target, "export", booking.code, "--out", str(missing))
    assert nowhere.returncode == 1
    assert nowhere.stderr == (
        f"evcms-desktop: cannot write: No such file or directory ({missing})\n"
    )

    erased = _cli(db_target, "erase", booking.code)
    assert erased.returncode == 0, erased.stderr
    assert erased.stdout.strip() == "Erased the driver's details from 1 booking."
    assert _fresh(booking).driver_name is None
    unknown = _cli(db_target, "erase", "NOSUCHID")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == "evcms-desktop: No booking has the ID 'NOSUCHID'."

    assert _cli(db_target, "retention", "30").stdout.strip() == (
        "Drivers' details are kept 30 days after a booking ends."
    )
    refused = _cli(db_target, "retention", "0")
    assert refused.returncode == 1 and "from 1 to 3650 days" in refused.stderr
