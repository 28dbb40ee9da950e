"""What `chargers add` accepts, and what `book` does with a bad value already stored.

The real program in a subprocess on a real SQLite file, as a user runs it.
"""

import sqlite3
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from evcms_desktop.store.database import open_database
from evcms_desktop.store.models import ChargePoint, ChargingTransaction, TransactionState
from tests.app.test_command_errors import one_line_error, run

BOOK = ["book", "--date", "2099-06-01", "--arrival", "17:00", "--duration", "60"]


@pytest.mark.parametrize("power", ["NaN", "inf", "-1", "1e400"])
def test_an_unusable_max_power_is_refused_in_one_line(tmp_path: Path, power: str) -> None:
    db = str(tmp_path / "evcms.sqlite3")
    line = one_line_error(run("--db", db, "chargers", "add", "CP-1", "--max-power", power))
    assert f"not {power!r}" in line
    assert run("--db", db, "chargers").stdout.strip() == "No chargers."


@pytest.mark.parametrize("ident", ["NL-1\n", "CP:9", "a b", "CP-1\x1b[2J", "x" * 49, ""])
def test_an_unusable_charge_point_id_is_refused(tmp_path: Path, ident: str) -> None:
    db = str(tmp_path / "evcms.sqlite3")
    line = one_line_error(run("--db", db, "chargers", "add", ident))
    assert "is not a usable charge point id" in line
    assert run("--db", db, "chargers").stdout.strip() == "No chargers."


def test_the_connector_count_in_the_help_is_the_one_enforced(tmp_path: Path) -> None:
    db = str(tmp_path / "evcms.sqlite3")
    help_text = " ".join(run("chargers", "add", "--help").stdout.split())
    assert "1 to 16" in help_text
    assert "1 to 16" in one_line_error(
        run("--db", db, "chargers", "add", "CP-1", "--connectors", "17")
    )
    assert run("--db", db, "chargers", "add", "CP-1", "--connectors", "16").returncode == 0


@pytest.mark.parametrize("stored", ["NaN", "1e400", "rubbish"])
def test_a_bad_stored_max_power_does_not_crash_book(tmp_path: Path, stored: str) -> None:
    """A NaN written by an older version made every `book` end in a traceback."""
    db = str(tmp_path / "evcms.sqlite3")
    assert run("--db", db, "chargers", "add", "CP-BAD", "--connectors", "1").returncode == 0
    assert run("--db", db, "chargers", "add", "CP-GOOD", "--connectors", "1").returncode == 0
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE connector SET max_power_kw = ? WHERE charge_point_id ="
            " (SELECT id FROM charge_point WHERE ident = 'CP-BAD')",
            (stored,),
        )
    result = run("--db", db, *BOOK, "--energy", "5", "--dry-run")
    assert "Traceback" not in result.stderr
    assert result.returncode == 0, result.stderr
    assert "CP-GOOD" in result.stdout and "CP-BAD" not in result.stdout
    warnings = [line for line in result.stderr.splitlines() if "CP-BAD" in line]
    assert len(warnings) >= 1 and "cannot be booked" in warnings[0]


def test_sessions_shows_refused_as_refused_in_the_servers_order(tmp_path: Path) -> None:
    """A refused start was listed as "running", and a charger's start stamp in 2030 put
    its row above every real session."""
    db = str(tmp_path / "evcms.sqlite3")
    assert run("--db", db, "chargers", "add", "CP-1", "--connectors", "1").returncode == 0
    database = open_database(db)
    try:
        cp = ChargePoint.get(ChargePoint.ident == "CP-1")
        common = {"charge_point": cp, "connector_number": 1, "meter_start_wh": 0}
        refused = ChargingTransaction.create(
            **common,
            id_tag="FORGED",
            started_at=datetime(2030, 1, 1, tzinfo=UTC),
            state=TransactionState.REFUSED.value,
        )
        real = ChargingTransaction.create(
            **common,
            id_tag="REAL",
            started_at=datetime(2026, 11, 30, 9, tzinfo=UTC),
            stopped_at=datetime(2026, 11, 30, 10, tzinfo=UTC),
            state=TransactionState.FINISHED.value,
            energy_kwh=Decimal("7.5"),
        )
    finally:
        database.close()

    shown = run("--db", db, "sessions")
    assert shown.returncode == 0, shown.stderr
    assert "REAL" in shown.stdout and "FORGED" not in shown.stdout

    everything = run("--db", db, "sessions", "--refused")
    lines = [line for line in everything.stdout.splitlines() if line.startswith("#")]
    assert [line.split()[0] for line in lines] == [f"#{real.id}", f"#{refused.id}"]
    assert "refused" in lines[1] and "running" not in lines[1]


def test_a_read_only_command_leaves_an_empty_file_alone(tmp_path: Path) -> None:
    """`sessions` on a 0-byte file wrote a whole schema into it."""
    empty = tmp_path / "empty.sqlite3"
    empty.touch()
    line = one_line_error(run("--db", str(empty), "sessions"))
    assert "not an EVCMS Desktop database" in line and str(empty) in line
    assert empty.stat().st_size == 0


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--energy", "1e-30"], "at least 0.1 kWh"),
        (["--energy", "5", "--power", "0.0001"], "at least 1 kW"),
    ],
)
def test_book_refuses_quantities_below_a_charge(tmp_path: Path, extra: list[str], says: str):
    db = str(tmp_path / "evcms.sqlite3")
    assert run("--db", db, "chargers", "add", "CP-1").returncode == 0
    args = ["book", "--date", "2099-06-01", "--arrival", "17:00", "--duration", "60"]
    assert says in one_line_error(run("--db", db, *args, *extra))
