import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from evcms_desktop.store.database import DatabaseError, open_database, read_version
from evcms_desktop.store.migrations import SCHEMA_VERSION
from evcms_desktop.store.models import (
    Booking,
    ChargePoint,
    ChargingTransaction,
    Event,
    Setting,
    Station,
)

V1_SQL = (Path(__file__).parent / "schema_v1.sql").read_text()


def schema(path: Path) -> tuple[dict[str, list[tuple]], set[tuple]]:
    """Columns of every table, and every index as (table, columns, unique)."""
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        columns = {
            t: sorted(r[1:] for r in conn.execute(f'PRAGMA table_info("{t}")')) for t in tables
        }
        indexes = {
            (t, tuple(c[2] for c in conn.execute(f'PRAGMA index_info("{name}")')), unique)
            for t in tables
            for _, name, unique, *_ in conn.execute(f'PRAGMA index_list("{t}")')
        }
        return columns, indexes


def test_new_file_gets_the_current_schema_wal_and_foreign_keys(db_path):
    db = open_database(db_path, station_name="North Yard")
    assert read_version(db) == SCHEMA_VERSION
    assert db.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute_sql("PRAGMA foreign_keys").fetchone()[0] == 1
    assert Station.get().name == "North Yard"
    db.close()


def test_an_older_file_is_backed_up_and_upgraded_without_losing_rows(tmp_path):
    old = tmp_path / "old.sqlite3"
    with sqlite3.connect(old) as conn:
        conn.executescript(V1_SQL)
    fresh = tmp_path / "fresh.sqlite3"
    open_database(fresh).close()

    db = open_database(old)
    assert read_version(db) == SCHEMA_VERSION
    booking = Booking.get(Booking.code == "K7QX4M9ZTP")
    assert booking.price_total == Decimal("8.12")
    assert booking.checked_in_at is None
    assert ChargePoint.get().ident == "OLD-1"
    assert Event.get().acknowledged is False
    assert Station.get().energy_price == Decimal("0.45")
    db.close()
    assert schema(old) == schema(fresh)

    backups = list(tmp_path.glob("old.sqlite3.v1-*.bak"))
    assert len(backups) == 1
    with sqlite3.connect(backups[0]) as conn:
        assert conn.execute("SELECT MAX(version) FROM schema_version").fetchone() == (1,)
        assert conn.execute("SELECT code FROM booking").fetchone() == ("K7QX4M9ZTP",)


def test_reopening_a_current_file_neither_backs_up_nor_changes_it(db_path):
    open_database(db_path).close()
    open_database(db_path).close()
    assert list(db_path.parent.glob("*.bak")) == []


def test_a_newer_schema_is_refused(db_path):
    db = open_database(db_path)
    db.execute_sql("INSERT INTO schema_version (version, applied_at) VALUES (999, 'x')")
    db.close()
    with pytest.raises(DatabaseError, match="newer than this program"):
        open_database(db_path)


def test_a_foreign_sqlite_file_is_refused(tmp_path):
    other = tmp_path / "other.sqlite3"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE notes (x)")
    with pytest.raises(DatabaseError, match="not an EVCMS Desktop database"):
        open_database(other)


@pytest.mark.parametrize("before", [True, False, None])
def test_continuing_past_the_booked_energy_becomes_each_sites_setting(tmp_path, before):
    """Schema 6: the application-wide setting of before becomes every site's."""
    old = tmp_path / "old.sqlite3"
    with sqlite3.connect(old) as conn:
        conn.executescript(V1_SQL)
        copied = (
            "timezone, currency, energy_price, max_power_kw, efficiency, peak_demand_charge,"
            " service_charge, step_minutes, horizon_hours, authorize_grace_minutes"
        )
        conn.execute(
            f"INSERT INTO station (name, {copied}) SELECT 'Second Yard', {copied}"
            " FROM station WHERE id = 1"
        )
        if before is not None:
            value = '{"continue_past_booked_energy": %s}' % ("true" if before else "false")
            conn.execute("INSERT INTO setting VALUES ('sessions', ?)", (value,))
    db = open_database(old)
    sites = list(Station.select().order_by(Station.id))
    assert len(sites) == 2
    assert [s.continue_past_booked_energy for s in sites] == [bool(before)] * 2
    assert Setting.get_or_none(Setting.key == "sessions") is None
    db.close()


_FLAGGED_EVENTS = [
    ("session_review", 1, '{"review": "stop before the start; no energy billed"}'),
    ("start_refused", 2, '{"reason": "booking K7QX4M9ZTP is for another charger"}'),
    ("start_refused", 2, '{"reason": "no such booking"}'),  # the latest one counts
    ("session_review", 3, '{"review": 7}'),  # not text: flagged all the same
]


def _old_sessions(execute, acknowledged: bool = False) -> None:
    """Three sessions whose review flag and refusal only their events said (schema < 12)."""
    for number, state in ((1, "finished"), (2, "refused"), (3, "finished")):
        execute(
            "INSERT INTO charging_transaction (id, charge_point_id, connector_number, id_tag,"
            " meter_start_wh, started_at, state) VALUES"
            f" ({number}, 1, 1, 'TAG{number}', 0, '2026-01-10 09:0{number}:00', '{state}')"
        )
    columns, values = (", acknowledged", ", false") if acknowledged else ("", "")
    for kind, tx, data in _FLAGGED_EVENTS:
        execute(
            f"INSERT INTO event (timestamp, kind, transaction_id, message, data{columns})"
            f" VALUES ('2026-01-10 10:00:00', '{kind}', {tx}, 'x', '{data}'{values})"
        )


def _flags() -> dict[int, tuple[str | None, str | None]]:
    return {tx.id: (tx.review, tx.refusal) for tx in ChargingTransaction.select()}


CARRIED = {
    1: ("stop before the start; no energy billed", None),
    2: (None, "no such booking"),
    3: ("flagged", None),
}


def test_schema_12_carries_review_flags_and_refusals_from_the_events(tmp_path):
    """An older file upgraded in place keeps what its events said on the sessions."""
    old = tmp_path / "old.sqlite3"
    with sqlite3.connect(old) as conn:
        conn.executescript(V1_SQL)
        conn.execute("DELETE FROM event")
        _old_sessions(conn.execute)
    db = open_database(old)
    assert read_version(db) == SCHEMA_VERSION
    assert _flags() == CARRIED
    db.close()


@pytest.mark.postgresql
def test_schema_12_carries_review_flags_and_refusals_on_postgresql(postgresql_url):
    db = open_database(postgresql_url, station_name="Old Yard")
    cp = ChargePoint.create(ident="OLD-1", station=Station.get())
    assert cp.id == 1
    db.execute_sql("ALTER TABLE charging_transaction DROP COLUMN review, DROP COLUMN refusal")
    db.execute_sql("UPDATE schema_version SET version = 11 WHERE version = 12")
    _old_sessions(db.execute_sql, acknowledged=True)
    db.close()
    db = open_database(postgresql_url)
    assert read_version(db) == SCHEMA_VERSION
    assert _flags() == CARRIED
    db.close()
