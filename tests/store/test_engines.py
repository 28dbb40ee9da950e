"""One store, two engines: what `--db` accepts, and what PostgreSQL adds."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import peewee
import pytest

from evcms_desktop.app.cli import main
from evcms_desktop.csms.writer import BatchWriter
from evcms_desktop.store.database import (
    DatabaseError,
    DatabaseTarget,
    open_database,
    parse_target,
    read_version,
)
from evcms_desktop.store.migrations import SCHEMA_VERSION
from evcms_desktop.store.models import (
    Booking,
    BookingState,
    ChargePoint,
    ChargingTransaction,
    Connector,
    MeterValue,
    SchemaVersion,
    Station,
)
from evcms_desktop.store.settings import read_setting, write_setting
from tests.conftest import NOW


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("evcms.sqlite3", DatabaseTarget("sqlite", path=Path("evcms.sqlite3"))),
        ("/var/lib/evcms/site.db", DatabaseTarget("sqlite", path=Path("/var/lib/evcms/site.db"))),
        ("C:\\evcms\\site.db", DatabaseTarget("sqlite", path=Path("C:\\evcms\\site.db"))),
        ("sqlite:///tmp/x.db", DatabaseTarget("sqlite", path=Path("/tmp/x.db"))),
        (
            "postgresql://evcms@db.local:5432/evcms",
            DatabaseTarget("postgresql", url="postgresql://evcms@db.local:5432/evcms"),
        ),
        ("postgres://u:p@h/d", DatabaseTarget("postgresql", url="postgres://u:p@h/d")),
    ],
)
def test_db_takes_a_file_path_or_a_url(text, expected):
    assert parse_target(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mysql://root@localhost/evcms", "mysql: is not supported"),
        ("postgresql:evcms", "postgresql: is not supported"),
        ("https://example.org/db", "https: is not supported"),
        ("postgresql://evcms@localhost:5432", "without a database name"),
        ("postgresql://evcms@localhost:port/evcms", "bad port"),
        ("sqlite://", "sqlite: is not supported"),
        ("  ", "empty"),
    ],
)
def test_anything_else_is_refused(text, message):
    with pytest.raises(DatabaseError, match=message):
        parse_target(text)


def test_a_password_is_not_shown():
    assert (
        str(parse_target("postgresql://evcms:s3cret@h/evcms")) == "postgresql://evcms:***@h/evcms"
    )


def test_cli_refuses_an_unknown_url_in_one_line_and_creates_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["--db", "mysql://root@localhost/evcms", "bookings"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("evcms-desktop: --db: mysql: is not supported")
    assert list(tmp_path.iterdir()) == []


def test_cli_refuses_a_folder(tmp_path, capsys):
    assert main(["--db", str(tmp_path), "bookings"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"evcms-desktop: --db: {tmp_path} is a folder, not a database file"


def test_cli_says_in_one_line_when_postgresql_is_unreachable(tmp_path, capsys):
    # Port 1 on loopback: nothing listens there.
    assert main(["--db", "postgresql://evcms@127.0.0.1:1/evcms", "bookings"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(
        "evcms-desktop: cannot connect to postgresql://evcms@127.0.0.1:1/evcms:"
        " Connection refused (is the server running"
    )
    assert "\t" not in err[0]


@pytest.mark.postgresql
def test_cli_on_a_postgresql_url_uses_the_server_not_a_folder(
    postgresql_url, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    assert main(["--db", postgresql_url, "--log-level", "WARNING", "chargers", "add", "CP-1"]) == 0
    assert main(["--db", postgresql_url, "chargers", "list"]) == 0
    assert "CP-1" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []  # the old code made a folder "postgresql:" here


def test_same_models_and_version_on_both_engines(db):
    assert read_version(db) == SCHEMA_VERSION
    assert set(db.get_tables()) >= {"booking", "charge_point", "meter_value", "station"}
    write_setting("server", {"port": 9000})
    write_setting("server", {"port": 9001})  # replaces, on both engines
    assert read_setting("server") == {"port": 9001}
    station = Station.get()
    assert station.energy_price == Station.energy_price.python_value("0.50")
    assert str(station.energy_price) == "0.50"  # numeric keeps the scale, as text does


def _connector() -> Connector:
    cp = ChargePoint.create(ident="CP-X", station=Station.get())
    return Connector.create(charge_point=cp, number=1)


@pytest.fixture
def connector(db) -> Connector:
    return _connector()


def _booking(connector: Connector, code: str, start, minutes: int, state=BookingState.CONFIRMED):
    return Booking.create(
        code=code, station=connector.charge_point.station, connector=connector,
        start=start, end=start + timedelta(minutes=minutes),
        requested_start=start, requested_end=start + timedelta(minutes=minutes),
        energy_kwh="1", power_kw="1", plan=1, peak_on=False, overlapped=False, acm="0",
        price_energy="0", price_time_of_use="0", price_service="0", price_total="0",
        state=state.value,
    )  # fmt: skip


@pytest.mark.postgresql
def test_postgresql_refuses_two_blocking_bookings_of_one_connector_that_overlap(
    postgresql_url,
):
    db = open_database(postgresql_url)
    connector = _connector()
    _booking(connector, "AAAA", NOW, 60)
    _booking(connector, "BBBB", NOW + timedelta(minutes=60), 30)  # touching is not overlapping
    _booking(connector, "CCCC", NOW + timedelta(minutes=30), 30, BookingState.CANCELLED)
    with pytest.raises(peewee.IntegrityError, match="booking_no_overlap"), db.atomic():
        _booking(connector, "DDDD", NOW + timedelta(minutes=59), 2)
    done = Booking.get(Booking.code == "CCCC")
    done.state = BookingState.CONFIRMED.value
    with pytest.raises(peewee.IntegrityError, match="booking_no_overlap"), db.atomic():
        done.save()  # reviving a cancelled booking over a live one is refused too
    assert Booking.select().count() == 3
    db.close()


def test_the_batch_writer_writes_big_batches_whole(db, connector):
    tx = ChargingTransaction.create(
        charge_point=connector.charge_point, connector_number=1, id_tag="T",
        meter_start_wh=0, started_at=NOW,
    )  # fmt: skip

    async def write() -> None:  # the writer is a thread fed from the event loop
        writer = BatchWriter(db)
        writer.start()
        for i in range(2_345):  # more than one multi-row INSERT
            writer.add(
                MeterValue,
                {
                    "charge_point": connector.charge_point_id, "connector_number": 1,
                    "transaction": tx.id, "timestamp": NOW + timedelta(seconds=i),
                    "value": str(i), "measurand": "Energy.Active.Import.Register", "unit": "Wh",
                    "phase": None, "context": "Sample.Periodic", "location": None,
                },
            )  # fmt: skip
        writer.update_transaction(tx.id, energy_wh=2344.0, soc=55.5)
        await writer.flush()
        await writer.stop()

    asyncio.run(write())
    values = [int(m.value) for m in MeterValue.select().order_by(MeterValue.timestamp)]
    assert values == list(range(2_345))
    assert MeterValue.select().order_by(MeterValue.id.desc()).get().timestamp == NOW + timedelta(
        seconds=2_344
    )
    tx = ChargingTransaction.get_by_id(tx.id)
    assert (tx.last_energy_wh, tx.last_soc, tx.last_power_kw) == (2344.0, 55.5, None)


@pytest.mark.postgresql
def test_nodes_starting_together_create_the_schema_once(postgresql_url):
    script = (
        "import sys; from evcms_desktop.store.database import open_database;"
        " open_database(sys.argv[1]).close()"
    )
    starts = [
        subprocess.Popen([sys.executable, "-c", script, postgresql_url], stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    errors = [p.communicate(timeout=60)[1].decode() for p in starts]
    assert [p.returncode for p in starts] == [0, 0, 0], errors
    db = open_database(postgresql_url)
    assert [v.version for v in SchemaVersion.select()] == [SCHEMA_VERSION]
    assert Station.select().count() == 1
    db.close()
