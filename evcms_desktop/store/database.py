"""Opening the database file: pragmas, first-time creation, upgrade with a backup."""

from __future__ import annotations

import logging
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import peewee
import platformdirs
from playhouse.migrate import SqliteMigrator

from evcms_desktop.store.migrations import SCHEMA_VERSION, STEPS
from evcms_desktop.store.models import ALL_MODELS, SchemaVersion, Station, database_proxy

log = logging.getLogger(__name__)

PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "synchronous": "normal",  # safe in WAL: a crash loses no committed transaction
    "busy_timeout": 10_000,
}


class DatabaseError(RuntimeError):
    """The file cannot be used: newer than this program, or not one of ours."""


def default_database_path() -> Path:
    return platformdirs.user_data_path("evcms-desktop", appauthor=False) / "evcms.sqlite3"


def read_version(db: peewee.SqliteDatabase) -> int | None:
    if not db.table_exists("schema_version"):
        return None
    row = db.execute_sql("SELECT MAX(version) FROM schema_version").fetchone()
    return row[0] if row else None


def backup_file(db: peewee.SqliteDatabase, path: Path, version: int) -> Path:
    """Copy the live database (WAL included) next to it, via SQLite's online backup."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.v{version}-{stamp}.bak")
    destination = sqlite3.connect(target)
    try:
        db.connection().backup(destination)
    finally:
        destination.close()
    return target


def _upgrade(db: peewee.SqliteDatabase, path: Path, version: int) -> None:
    backup = backup_file(db, path, version)
    log.info("Backed up %s (schema %d) to %s before upgrading", path.name, version, backup)
    migrator = SqliteMigrator(db)
    for target in range(version + 1, SCHEMA_VERSION + 1):
        with db.atomic():
            STEPS[target](migrator)
            SchemaVersion.create(version=target)
        log.info("Upgraded the database to schema %d", target)


def open_database(
    path: Path | str, *, station_name: str = "EVCMS Station"
) -> peewee.SqliteDatabase:
    """Open (creating or upgrading) the database at `path` and bind the models to it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    db = peewee.SqliteDatabase(str(path), pragmas=PRAGMAS, timeout=10)
    database_proxy.initialize(db)
    db.connect(reuse_if_open=True)
    version = read_version(db)
    if version is None:
        if db.get_tables():
            db.close()
            raise DatabaseError(f"{path} is not an EVCMS Desktop database")
        with db.atomic():
            db.create_tables(ALL_MODELS)
            SchemaVersion.create(version=SCHEMA_VERSION)
        log.info("Created a new database at %s", path)
    elif version > SCHEMA_VERSION:
        db.close()
        raise DatabaseError(
            f"{path} has schema {version}, newer than this program's {SCHEMA_VERSION};"
            " update EVCMS Desktop"
        )
    elif version < SCHEMA_VERSION:
        _upgrade(db, path, version)
    if not Station.select().exists():
        Station.create(name=station_name)
    return db
