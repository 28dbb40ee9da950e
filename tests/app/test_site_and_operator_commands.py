"""The command line's gaps filled: `operators remove`, `sites rename` and `sites remove`
(refused in one line while a site has chargers, bookings to come, people or sessions), and
the kiosk PIN set from the command line, hashed as the console does. Each run is the real
program in a subprocess: one line on stderr and status 1 when refused."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from evcms_desktop.store.database import open_database
from evcms_desktop.store.kiosk_pin import kiosk_pin_key
from evcms_desktop.store.models import (
    Booking,
    BookingState,
    Operator,
    QueuedCommand,
    Setting,
    Station,
    utcnow,
)

ENV = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}


def _cli(db: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "evcms_desktop", "--db", str(db), "--log-level", "WARNING", *args],
        capture_output=True, text=True, input=stdin, env=ENV, check=False, timeout=120,
    )  # fmt: skip


def _refused(result: subprocess.CompletedProcess[str], *words: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert lines[0].startswith("evcms-desktop: ") and "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "evcms.sqlite3"
    assert _cli(path, "sites", "add", "Harbour").returncode == 0
    assert _cli(path, "sites", "add", "Depot").returncode == 0
    return path


def _rows(db: Path, read):  # type: ignore[no-untyped-def]
    database = open_database(str(db))
    try:
        return read()
    finally:
        database.close()


def test_operators_remove(db: Path):
    add = ("operators", "add", "olga", "--role", "operator", "--password", "pw-12345")
    assert _cli(db, *add).returncode == 0
    _refused(_cli(db, "operators", "remove", "nobody"), "No operator is named 'nobody'")

    def queue(state: str) -> None:
        QueuedCommand.create(
            charge_point="CP-1", action="Reset", payload={}, operator="olga", state=state
        )

    _rows(db, lambda: queue("queued"))
    _refused(_cli(db, "operators", "remove", "olga"), "1 command(s) still waiting")
    _rows(db, lambda: QueuedCommand.update(state="done").execute())
    result = _cli(db, "operators", "remove", "olga")
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.strip() == "Removed olga; they can no longer sign in."
    kept = _rows(db, lambda: [(c.operator_id, c.requested_by) for c in QueuedCommand.select()])
    assert kept == [(None, "olga")]  # the command stays, with who asked it
    assert _rows(db, lambda: Operator.select().count()) == 0
    assert "olga" not in _cli(db, "operators", "list").stdout


def test_sites_rename(db: Path):
    result = _cli(db, "sites", "rename", "harbour", "Harbour Yard")
    assert result.returncode == 0, result.stderr
    assert "Harbour Yard" in _cli(db, "sites").stdout
    _refused(_cli(db, "sites", "rename", "Harbour Yard", "depot"), "exists already")
    _refused(_cli(db, "sites", "rename", "Nowhere", "X"), "No site is named 'Nowhere'")
    _refused(_cli(db, "sites", "rename", "Depot", " "), "1 to 80 printable characters")


def test_sites_remove_is_refused_while_the_site_is_in_use(db: Path):
    assert _cli(db, "--site", "Depot", "chargers", "add", "CP-9").returncode == 0
    tomorrow = (utcnow() + timedelta(days=1)).date().isoformat()
    book = ("book", "--date", tomorrow, "--arrival", "12:00", "--duration", "60", "--energy", "10")
    assert _cli(db, "--site", "Depot", *book).returncode == 0
    _refused(_cli(db, "sites", "remove", "Depot"), "still has 1 charger(s)")
    assert _cli(db, "chargers", "remove", "CP-9").returncode == 0
    _refused(_cli(db, "sites", "remove", "Depot"), "1 booking(s) to come")
    _rows(db, lambda: Booking.update(state=BookingState.CANCELLED).execute())
    add = ("operators", "add", "ann", "--role", "attendant", "--site", "Depot")
    assert _cli(db, *add, "--password", "pw-12345").returncode == 0
    _refused(_cli(db, "sites", "remove", "Depot"), "1 operator(s) work at 'Depot'")
    assert _cli(db, "operators", "set", "ann", "--site", "Harbour").returncode == 0

    result = _cli(db, "sites", "remove", "Depot")
    assert result.returncode == 0, result.stderr
    assert "Depot" not in _cli(db, "sites").stdout
    _refused(_cli(db, "sites", "remove", "Depot"), "No site is named 'Depot'")


def test_the_last_site_stays(db: Path):
    assert _cli(db, "sites", "remove", "Depot").returncode == 0
    _refused(_cli(db, "sites", "remove", "Harbour"), "the only site")


def test_the_kiosk_pin_is_set_from_the_command_line(db: Path):
    result = _cli(db, "sites", "set", "Depot", "--kiosk-pin", "-", stdin="2468\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Kiosk PIN of Depot set."
    depot, harbour = _rows(
        db, lambda: [Station.get(Station.name == n).id for n in ("Depot", "Harbour")]
    )
    digest = _rows(db, lambda: Setting.get(Setting.key == kiosk_pin_key(depot)).value)
    assert digest.startswith("$argon2id$") and PasswordHasher().verify(digest, "2468")
    assert _rows(db, lambda: Setting.get_or_none(Setting.key == kiosk_pin_key(harbour))) is None
    for pin in ("12", "abcd", "1234567890123", "١٢٣٤"):
        _refused(_cli(db, "sites", "set", "Depot", "--kiosk-pin", pin), "4 to 12 digits")
    _refused(_cli(db, "sites", "set", "Depot", "--kiosk-pin", "prompt"), "needs a terminal")
    _refused(_cli(db, "sites", "set", "Depot"), "--past-booked-energy or --kiosk-pin")


def test_a_read_only_command_seeds_nothing_on_a_new_postgresql_database(postgresql_url):
    """`sites` on a new, empty database made "EVCMS Station", so `sites add` left two."""
    for command in (["sites"], ["bookings"], ["sessions"], ["chargers", "list"]):
        result = _cli(postgresql_url, *command)
        lines = result.stderr.strip().splitlines()
        assert result.returncode != 0 and len(lines) == 1, result.stderr
        assert "has no EVCMS Desktop schema yet" in lines[0] and "sites add" in lines[0]
    assert _cli(postgresql_url, "sites", "add", "Only Yard").returncode == 0
    listed = _cli(postgresql_url, "sites")
    assert listed.returncode == 0, listed.stderr
    assert "Only Yard" in listed.stdout and "EVCMS Station" not in listed.stdout
