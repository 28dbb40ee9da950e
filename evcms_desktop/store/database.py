"""Opening the store: an SQLite file or a PostgreSQL URL, first-time creation, upgrades.

Both engines get the same models and the same versioned migrations, applied at start-up.
Before an upgrade an SQLite file is copied next to itself; on PostgreSQL every step runs
in one transaction (its DDL is transactional), so a failed upgrade changes nothing, and
the log says how to take a pg_dump first. PostgreSQL also gets what only it can do: an
exclusion constraint that no two blocking bookings of one connector overlap, whichever
node writes them.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import peewee
import platformdirs
from playhouse.db_url import parse as parse_url
from playhouse.migrate import SchemaMigrator

from evcms_desktop.store.migrations import SCHEMA_VERSION, STEPS, guard_command_askers
from evcms_desktop.store.models import (
    ALL_MODELS,
    BLOCKING_STATES,
    SchemaVersion,
    Station,
    database_proxy,
)

log = logging.getLogger(__name__)

PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "synchronous": "normal",  # safe in WAL: a crash loses no committed transaction
    "busy_timeout": 10_000,
}
POSTGRES_SCHEMES = ("postgresql", "postgres")
# Taken while a PostgreSQL database is created or upgraded, so nodes starting together
# do it once (an arbitrary constant: "EVCM" in ASCII).
MIGRATION_LOCK = 0x4556434D
DEFAULT_SITE_NAME = "EVCMS Station"  # the first site of a new database, unless named
BOOKING_OVERLAP_CONSTRAINT = "booking_no_overlap"
_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]+):")


class DatabaseError(RuntimeError):
    """The store cannot be used: a bad --db, unreachable, newer than this program, foreign."""


Engine = Literal["sqlite", "postgresql"]


@dataclass(frozen=True)
class DatabaseTarget:
    """Where the store lives: an SQLite file or a PostgreSQL URL."""

    engine: Engine
    path: Path | None = None
    url: str | None = None

    def __str__(self) -> str:
        if self.path is not None:
            return str(self.path)
        parts = urlsplit(self.url or "")
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
            parts = parts._replace(netloc=netloc)
        return urlunsplit(parts)


def parse_target(text: str | Path | DatabaseTarget) -> DatabaseTarget:
    """A file path (SQLite), `sqlite:///path` or `postgresql://...`; anything else refused.

    Drive letters (C:\\...) are paths: a scheme has at least two letters.
    """
    if isinstance(text, DatabaseTarget):
        return text
    if isinstance(text, Path):
        return DatabaseTarget("sqlite", path=text)
    match = _URL.match(text)
    if match is None:
        if not text.strip():
            raise DatabaseError("--db: empty; give a file path or a postgresql:// URL")
        return DatabaseTarget("sqlite", path=Path(text))
    scheme = match["scheme"].lower()
    parts = urlsplit(text)
    if scheme == "sqlite" and text.startswith("sqlite:///") and len(text) > len("sqlite:///"):
        return DatabaseTarget("sqlite", path=Path(parts.path))
    if scheme in POSTGRES_SCHEMES and text[match.end() :].startswith("//"):
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError:
            raise DatabaseError(f"--db: {text!r} has a bad port") from None
        if not parts.path.strip("/"):
            raise DatabaseError(
                f"--db: {scheme}:// URL without a database name (postgresql://user@host/evcms)"
            )
        return DatabaseTarget("postgresql", url=text)
    raise DatabaseError(
        f"--db: {scheme}: is not supported; give a file path (SQLite), sqlite:///PATH"
        " or postgresql://user@host:5432/evcms"
    )


def default_database_path() -> Path:
    return platformdirs.user_data_path("evcms-desktop", appauthor=False) / "evcms.sqlite3"


class PostgresStore(peewee.PostgresqlDatabase):
    """PostgreSQL with the models' own column types and the session in UTC.

    Times are `timestamptz`, money and energy `numeric` (SQLite keeps them as text).
    The callers' `atomic("IMMEDIATE")` is SQLite's early write lock; PostgreSQL locks
    rows as they are written, and the constraints catch what a race would break.
    """

    field_types = {  # noqa: RUF012 - peewee's own class attribute
        **peewee.PostgresqlDatabase.field_types,
        "DATETIME": "TIMESTAMPTZ",
        "DECIMAL_TEXT": "NUMERIC",
    }

    def begin(self, lock_type: str | None = None) -> None:
        super().begin()


def unwritable_files(path: Path) -> list[Path]:
    """The SQLite file, its WAL and its shared-memory file, those that exist and cannot
    be written (read-only, immutable, on a read-only mount), and the folder when the WAL
    would have to be made there and cannot. SQLite maps the shared-memory file into
    memory: once that file is immutable, SQLite's next write into the mapping kills the
    process with SIGBUS, and any error is only an I/O error. So a writer asks first (one
    access() per file while all is well)."""
    name = str(path)
    wal = name + "-wal"
    unwritable = [
        Path(file)
        for file in (name, wal, name + "-shm")
        if not os.access(file, os.W_OK) and os.path.exists(file)
    ]
    if not os.path.exists(wal) and not os.access(path.parent, os.W_OK):  # made there
        unwritable.append(path.parent)
    return unwritable


def unwritable_message(files: list[Path]) -> str:
    names = ", ".join(str(file) for file in files)
    verb = "is" if len(files) == 1 else "are"
    return (
        f"{names} {verb} not writable (read-only or immutable): nothing is written until"
        " it is writable again (chattr -i, a read-write mount, or its permissions)"
    )


class SqliteStore(peewee.SqliteDatabase):
    """SQLite that refuses every statement once its files cannot be written, if it
    mapped the shared-memory file for writing: SQLite writes into that mapping even to
    read (a reader's mark), and a write into an immutable file is SIGBUS, not an error.
    A connection opened after the files became read-only maps it read-only and is left
    alone (it can read)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        peewee.SqliteDatabase.__init__(self, *args, **kwargs)
        self.mapped_writable = False

    def connect(self, reuse_if_open: bool = False) -> bool:
        opened = bool(peewee.SqliteDatabase.connect(self, reuse_if_open))
        if opened and not unwritable_files(Path(self.database)):
            self.mapped_writable = True
        return opened

    def cursor(self, named_cursor: Any = None) -> Any:
        if self.mapped_writable and (files := unwritable_files(Path(self.database))):
            raise peewee.OperationalError(unwritable_message(files))
        return peewee.SqliteDatabase.cursor(self, named_cursor)

    def close_safely(self) -> bool:
        """Close this thread's connection, unless SQLite's last close would checkpoint
        into a shared-memory file that cannot be written (SIGBUS): then it stays open,
        False, and the process should end without finalising it (`os._exit`)."""
        if self.mapped_writable and unwritable_files(Path(self.database)):
            return False
        return bool(peewee.SqliteDatabase.close(self))


def close_database(db: peewee.Database) -> bool:
    """Close the store; False when it must be left open (see SqliteStore.close_safely)."""
    if isinstance(db, SqliteStore):
        return db.close_safely()
    db.close()
    return True


def check_writable(db: peewee.Database) -> None:
    """DatabaseError, in one line naming the file, when the store cannot be written: a
    command that writes asks before it offers or prints anything."""
    if isinstance(db, peewee.SqliteDatabase):
        files = unwritable_files(Path(db.database))
        if files:
            raise DatabaseError(f"cannot write: {unwritable_message(files)}")
        return
    row = db.execute_sql("SHOW transaction_read_only").fetchone()
    if row and row[0] == "on":
        raise DatabaseError(f"cannot write: {db.database} is read-only for this connection")


def is_postgres(db: peewee.Database) -> bool:
    return isinstance(db, peewee.PostgresqlDatabase)


def read_version(db: peewee.Database) -> int | None:
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


def _apply_steps(db: peewee.Database, version: int) -> None:
    """Each step in its own transaction. On SQLite the foreign keys are off meanwhile
    (SQLite's way to rebuild a table: dropping the old one would otherwise delete the
    rows that refer to it), and each step is checked against them before it commits."""
    migrator = SchemaMigrator.from_database(db)
    sqlite = isinstance(db, peewee.SqliteDatabase)
    if sqlite:
        db.execute_sql("PRAGMA foreign_keys = OFF")
    try:
        for target in range(version + 1, SCHEMA_VERSION + 1):
            with db.atomic():
                STEPS[target](migrator)
                if sqlite and (broken := db.execute_sql("PRAGMA foreign_key_check").fetchall()):
                    raise DatabaseError(
                        f"schema {target} not applied: it would break {len(broken)}"
                        f" reference(s) in {', '.join(sorted({row[0] for row in broken}))}"
                    )
                SchemaVersion.create(version=target)
            log.info("Upgraded the database to schema %d", target)
    finally:
        if sqlite:
            db.execute_sql("PRAGMA foreign_keys = ON")


def _postgres_extras(db: peewee.Database) -> None:
    """What PostgreSQL adds to the models: no two blocking bookings of a connector overlap,
    and a console's database role queues commands as itself only."""
    states = ", ".join(f"'{state.value}'" for state in BLOCKING_STATES)
    db.execute_sql("CREATE EXTENSION IF NOT EXISTS btree_gist")
    db.execute_sql(
        f"ALTER TABLE booking ADD CONSTRAINT {BOOKING_OVERLAP_CONSTRAINT}"
        ' EXCLUDE USING gist (connector_id WITH =, tstzrange(start, "end") WITH &&)'
        f" WHERE (state IN ({states}))"
    )
    guard_command_askers(db)


def _create(db: peewee.Database, where: str) -> None:
    with db.atomic():
        db.create_tables(ALL_MODELS)
        if is_postgres(db):
            _postgres_extras(db)
        SchemaVersion.create(version=SCHEMA_VERSION)
    log.info("Created a new database at %s", where)


def _check_version(db: peewee.Database, where: str) -> int | None:
    version = read_version(db)
    if version is None and db.get_tables():
        raise DatabaseError(f"{where} is not an EVCMS Desktop database")
    if version is not None and version > SCHEMA_VERSION:
        raise DatabaseError(
            f"{where} has schema {version}, newer than this program's {SCHEMA_VERSION};"
            " update EVCMS Desktop"
        )
    return version


def _open_sqlite(path: Path, create: bool, new_folder: bool) -> peewee.SqliteDatabase:
    if path.exists() and path.is_dir():
        raise DatabaseError(f"--db: {path} is a folder, not a database file")
    if not create and not path.exists():
        raise DatabaseError(
            f"no database at {path}; check --db (the console or a command that writes creates one)"
        )
    if not create and path.stat().st_size == 0:
        # Opening it would write into it (the journal mode); a read-only command does not.
        raise DatabaseError(f"{path} is not an EVCMS Desktop database (it is empty); check --db")
    folder = path.parent
    if not folder.is_dir() and not new_folder and folder != default_database_path().parent:
        # A typo in --db would otherwise make a folder and an empty database, silently.
        raise DatabaseError(
            f"no folder {folder} for the database {path.name}; check --db, or create the"
            f" folder first (mkdir -p {folder}) to start a new database there"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseError(f"cannot create the folder for {path}: {exc.strerror}") from None
    db = SqliteStore(str(path), pragmas=PRAGMAS, timeout=10)
    database_proxy.initialize(db)
    try:
        db.connect(reuse_if_open=True)
        version = _check_version(db, str(path))
    except DatabaseError:
        db.close()
        raise
    except peewee.DatabaseError as exc:
        db.close()
        raise DatabaseError(_sqlite_trouble(path, exc)) from None
    if version is None and not create:
        db.close()
        raise DatabaseError(
            f"{path} is not an EVCMS Desktop database (it has no tables); check --db"
        )
    if version is None:
        _create(db, str(path))
    elif version < SCHEMA_VERSION:
        backup = backup_file(db, path, version)
        log.info("Backed up %s (schema %d) to %s before upgrading", path.name, version, backup)
        _apply_steps(db, version)
    return db


def _sqlite_trouble(path: Path, exc: peewee.DatabaseError) -> str:
    """One line saying what is wrong with an SQLite file and what to do about it."""
    reason = str(exc).strip() or type(exc).__name__
    if "not a database" in reason or "malformed" in reason:
        return f"{path} is not a readable database ({reason}); restore it from a backup"
    if "readonly" in reason or "read-only" in reason:
        return f"{path} is read-only ({reason}); give this user write access to it"
    if "locked" in reason:
        return f"{path} is locked by another program ({reason}); try again when it is done"
    return f"cannot open {path} ({reason}); check the path and its permissions"


def postgres_connect_arguments(url: str) -> dict[str, Any]:
    arguments: dict[str, Any] = parse_url(url, unquote_password=True, unquote_user=True)
    options = arguments.pop("options", "")
    arguments["options"] = f"{options} -c TimeZone=UTC".strip()
    arguments.setdefault("application_name", "evcms-desktop")
    arguments.setdefault("connect_timeout", 10)
    return arguments


def _ensure_station(name: str | None) -> None:
    """A database without a site gets one, named `name` (None: none, for a command that
    makes the first site itself)."""
    if name is not None and not Station.select().exists():
        Station.create(name=name)


def connect_failure(exc: Exception) -> str:
    """libpq's reason in one line: "Connection refused (is the server running ...?)", not
    its hint alone, tab and all."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    failed = [line for line in lines if "failed:" in line]
    first = failed[-1] if failed else lines[0]
    reason = first.rsplit("failed:", 1)[1].strip() if failed else first
    hint = lines[-1] if lines[-1] != first else ""
    said = f"{reason} ({hint[:1].lower()}{hint[1:]})" if hint else reason
    return " ".join(said.split())[:300]


def _open_postgres(target: DatabaseTarget, station_name: str | None, create: bool) -> PostgresStore:
    where = str(target)
    arguments = postgres_connect_arguments(target.url or "")
    db = PostgresStore(arguments.pop("database"), prefer_psycopg3=True, **arguments)
    database_proxy.initialize(db)
    try:
        db.connect(reuse_if_open=True)
    except peewee.OperationalError as exc:
        raise DatabaseError(f"cannot connect to {where}: {connect_failure(exc)}") from None
    try:
        with db.atomic():
            db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            version = _check_version(db, where)
            if version is None and not create:
                raise DatabaseError(
                    f"{where} has no EVCMS Desktop schema yet; the console, --headless or a"
                    " command that writes (such as `sites add NAME`) creates it"
                )
            if version is None:
                _create(db, where)
            elif version < SCHEMA_VERSION:
                log.warning(
                    "Upgrading %s from schema %d to %d in one transaction; to keep a copy,"
                    " stop every node and run: pg_dump --format=custom --file=evcms-v%d.dump %s",
                    where, version, SCHEMA_VERSION, version, where,
                )  # fmt: skip
                _apply_steps(db, version)
            if create:
                _ensure_station(station_name)
    except DatabaseError:
        db.close()
        raise
    except peewee.DatabaseError as exc:
        db.close()
        raise DatabaseError(f"cannot set up {where}: {str(exc).strip().splitlines()[0]}") from None
    return db


def open_database(
    target: str | Path | DatabaseTarget,
    *,
    station_name: str | None = DEFAULT_SITE_NAME,
    create: bool = True,
    new_folder: bool = True,
) -> peewee.Database:
    """Open (creating or upgrading) the store at `target` and bind the models to it.

    A database without a site gets one named `station_name`, the same on both engines
    (None: no site, for `sites add` making the first). With `create` false nothing is
    made: a missing SQLite file, or a PostgreSQL database without the schema, is refused,
    and no site is added. With `new_folder` false a file whose folder does not exist is
    refused (but for the default data folder) rather than made with its folder."""
    where = parse_target(target)
    if where.path is None:
        return _open_postgres(where, station_name, create)
    db = _open_sqlite(where.path, create, new_folder)
    if create:
        with db.atomic():
            _ensure_station(station_name)
    return db
