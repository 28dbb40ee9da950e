"""Shared fixtures: a real SQLite file per test and a small station."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import peewee
import pytest
from hypothesis import settings

from evcms_desktop.store.database import open_database
from evcms_desktop.store.models import ChargePoint, Connector, Station

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# CI replays the same examples every run; on a developer's machine hypothesis explores.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

# A Tuesday in December (GMT): 06:00 UTC is 06:00 in London.
NOW = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "evcms.sqlite3"


@pytest.fixture
def db(db_path: Path) -> Iterator[peewee.SqliteDatabase]:
    database = open_database(db_path, station_name="Test Station")
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
