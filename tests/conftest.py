"""Shared fixtures: a real SQLite file per test and a small station."""

from __future__ import annotations

import gc
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import peewee
import psycopg
import pytest
from hypothesis import settings

from evcms_desktop.store.database import open_database
from evcms_desktop.store.models import ChargePoint, Connector, Station
from tests.postgres import PostgresServer, find_bindir

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# CI replays the same examples every run; on a developer's machine hypothesis explores.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

# A Tuesday in December (GMT): 06:00 UTC is 06:00 in London.
NOW = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _qt_garbage_on_the_gui_thread(request: pytest.FixtureRequest) -> Iterator[None]:
    """A Qt test's garbage is collected on the GUI thread when it ends, never later.

    Widgets and QObjects in reference cycles (a window's tasks, a closed qasync loop's
    timer) are destroyed only by Python's collector, on whichever thread it happens to
    run: on a worker thread their destructors cannot stop their timers, and the next
    processEvents() touches freed memory (the SIGSEGV that once needed a rerun in CI).
    """
    if "qapp" not in request.fixturenames:
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.collect()
        gc.enable()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "evcms.sqlite3"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole run, started on first use."""
    bindir = find_bindir()
    if bindir is None:
        if os.environ.get("EVCMS_REQUIRE_POSTGRES"):
            pytest.fail("PostgreSQL's binaries are missing (.ci/run installs postgresql-15)")
        pytest.skip("PostgreSQL's binaries are not installed")
    server = PostgresServer(bindir)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def postgresql_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database on the test server."""
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url)


@pytest.fixture
def db_target(db_path: Path) -> str:
    """What `--db` says for this test: an SQLite file here; the store's and the central
    system's tests run on PostgreSQL too (their conftest parametrises this)."""
    return str(db_path)


def engine_target(request: pytest.FixtureRequest, db_path: Path) -> str:
    if request.param == "sqlite":
        return str(db_path)
    return str(request.getfixturevalue("postgresql_url"))


BOTH_ENGINES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]


def other_connection_rows(target: str, sql: str, params: tuple = ()) -> list[tuple]:
    """Rows read through a connection of their own (not the models'); `?` marks values.
    Decimals come back as Decimal on both engines."""
    if target.startswith("postgresql://"):
        with psycopg.connect(target) as conn:
            return conn.execute(sql.replace("?", "%s"), params).fetchall()
    with sqlite3.connect(target) as conn:
        rows = conn.execute(sql, params).fetchall()
    return [tuple(_sqlite_value(v) for v in row) for row in rows]


def _sqlite_value(value: object) -> object:
    if isinstance(value, str) and value.replace(".", "", 1).lstrip("-").isdigit() and "." in value:
        return Decimal(value)
    return value


@pytest.fixture
def db(db_target: str) -> Iterator[peewee.Database]:
    database = open_database(db_target, station_name="Test Station")
    yield database
    database.close()


@pytest.fixture
def station(db: peewee.SqliteDatabase) -> Station:
    """The default station with two charge points of two 22 kW connectors each."""
    station = Station.get()
    for ident in ("CP-A", "CP-B"):
        cp = ChargePoint.create(ident=ident, station=station)
        for number in (1, 2):
            Connector.create(charge_point=cp, number=number)
    return station


def chattr(flag: str, *files: Path, check: bool = True) -> None:
    """`chattr +i` / `-i`: files that not even root can write (see can_make_immutable)."""
    subprocess.run(["chattr", flag, *map(str, files)], check=check, capture_output=True)


@pytest.fixture
def can_make_immutable(tmp_path: Path) -> None:
    """chattr +i needs root and a filesystem that supports it (ext4, xfs, btrfs)."""
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed")
    probe = tmp_path / "immutable-probe"
    probe.touch()
    tried = subprocess.run(["chattr", "+i", str(probe)], capture_output=True, text=True)
    if tried.returncode != 0:
        pytest.skip(f"cannot make a file immutable here: {tried.stderr.strip()}")
    chattr("-i", probe)
