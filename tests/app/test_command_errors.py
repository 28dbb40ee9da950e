"""Every mistake on the command line is answered in one line with a non-zero exit status.

Each case runs the real program in a subprocess, as a user would, on a real SQLite file.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from evcms_desktop.app.admin_commands import CommandError
from evcms_desktop.app.send_command import parse_fields
from tests.conftest import chattr

ENV = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}


def run(*args: str, stdin: str | None = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "evcms_desktop", *args],
        capture_output=True,
        text=True,
        env=ENV,
        input=stdin,
        timeout=120,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = tmp_path / "evcms.sqlite3"
    result = run("--db", str(path), "chargers", "add", "CP-1", "--password", "p" * 20)
    assert result.returncode == 0, result.stderr
    return str(path)


BOOK = ["book", "--date", "2099-06-01", "--arrival", "17:00"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([*BOOK, "--duration", "60", "--energy", "nan"], "--energy 'nan'"),
        ([*BOOK, "--duration", "60", "--power", "Infinity"], "--power 'Infinity'"),
        ([*BOOK, "--duration", "60", "--energy", "1e400"], "--energy '1e400'"),
        # The kiosk and the booking dialog say these words under the field.
        (
            [*BOOK, "--duration", "60", "--energy", "1e309"],
            "--energy '1e309': 1e309 is more than this station can use: at most 1000000.",
        ),
        ([*BOOK, "--duration", "99999999999999999999", "--energy", "10"], "--duration"),
        (
            [
                "book",
                "--date",
                "9999-12-31",
                "--arrival",
                "23:59",
                "--duration",
                "60",
                "--energy",
                "10",
            ],
            "2099-12-31",
        ),
        # A 24-hour slot for 0.2 kWh holds a connector for nothing: 12 min at 1 kW.
        (
            [*BOOK, "--duration", "1440", "--energy", "0.2"],
            "24 h 00 min is longer than 0.2 kWh needs even at 1 kW (12 min)",
        ),
        (["bookings", "--days", "99999999999"], "--days"),
        (["bookings", "--days", "-1"], "--days"),
        (["sessions", "--limit", "99999999999999999999999"], "--limit"),
        (["sessions", "--limit", "-1"], "--limit"),
        (["chargers", "add", "CP-2", "--connectors", "100000"], "--connectors"),
        (["--max-connections", "-5", "--headless"], "give 1 to 100000 connections, not -5"),
    ],
)
def test_out_of_range_values_get_one_line(db: str, args: list[str], says: str) -> None:
    assert says in one_line_error(run("--db", db, *args))


@pytest.mark.parametrize(
    "args", [["--port", "70000", "--headless"], ["--port", "nan", "--headless"]]
)
def test_usage_mistakes_get_one_line_not_the_usage_text(tmp_path: Path, args: list[str]) -> None:
    line = one_line_error(run("--db", str(tmp_path / "x.sqlite3"), *args))
    assert "--port" in line and "--help" in line


def test_a_read_only_command_does_not_create_a_missing_database(tmp_path: Path) -> None:
    missing = tmp_path / "typo" / "evcms.sqlite3"
    for command in (["bookings"], ["sessions"], ["chargers", "list"], ["sites"]):
        line = one_line_error(run("--db", str(missing), *command))
        assert "no database at" in line and str(missing) in line
    assert not missing.parent.exists()


def test_a_file_that_is_not_a_database_is_named(tmp_path: Path) -> None:
    garbage = tmp_path / "notes.db"
    garbage.write_text("these are not the tables you are looking for\n" * 100)
    line = one_line_error(run("--db", str(garbage), "bookings"))
    assert str(garbage) in line and "not" in line


def test_book_on_a_store_it_cannot_write_says_so_before_any_plan(
    db: str, can_make_immutable: None
) -> None:
    """It printed its plans and then failed at the write ("attempt to write a readonly
    database"); now one line names the file, before anything is offered."""
    path = Path(db)
    chattr("+i", path)
    try:
        result = run("--db", db, *BOOK, "--duration", "60", "--energy", "10")
        dry = run("--db", db, *BOOK, "--duration", "60", "--energy", "10", "--dry-run")
    finally:
        chattr("-i", *path.parent.glob(path.name + "*"), check=False)
    line = one_line_error(result)
    assert f"{path} is not writable" in line and result.stdout == "", (line, result.stdout)
    assert result.returncode == 1  # as chargers add and sites add say the same
    assert dry.returncode == 0 and "Dry run: nothing was booked." in dry.stdout, dry.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["chargers", "add", "CP-9", "--password", "q" * 20],
        ["--headless", "--host", "127.0.0.1", "--port", "0", "--security-profile", "0"],
    ],
    ids=["chargers-add", "headless"],
)
def test_every_write_on_an_immutable_store_names_the_file_and_the_fix(
    db: str, args: list[str], can_make_immutable: None
) -> None:
    """`chargers add` and `--headless` said "attempt to write a readonly database"."""
    path = Path(db)
    files = [file for file in (path, Path(f"{db}-wal"), Path(f"{db}-shm")) if file.exists()]
    chattr("+i", *files)
    try:
        result = run("--db", db, *args)
    finally:
        chattr("-i", *files, check=False)
    line = one_line_error(result)
    assert line.startswith("evcms-desktop: cannot write: ") and f"{path}" in line, line
    assert "chattr -i" in line, line
    assert result.returncode == 1


def test_a_closed_stdin_for_a_password_prompt_is_one_line(db: str) -> None:
    line = one_line_error(run("--db", db, "chargers", "passwd", "CP-1", "--password", "prompt"))
    assert "needs a terminal" in line
    assert line.startswith("evcms-desktop:")


def test_a_port_in_use_is_one_line(db: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(
            "--db", db, "--headless", "--host", "127.0.0.1", "--port", str(port),
            "--security-profile", "1",
        )  # fmt: skip
    line = one_line_error(result)
    assert "address already in use" in line.lower() or "in use" in line.lower()


def test_send_refuses_a_field_given_twice() -> None:
    with pytest.raises(CommandError, match="type is given twice"):
        parse_fields("Reset", ["type=Soft", "type=Hard"])
    assert parse_fields("Reset", ["type=Soft"]) == {"type": "Soft"}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["evaluate", "--bookings", "99999999999999", "--out", "x"], "--bookings"),
        (["evaluate", "--bookings", "nan", "--out", "x"], "'nan' is not a whole number"),
        (["--headless", "--security-profile", "2", "--tls-cert", "c.pem"], "go together"),
        (
            [
                "--headless",
                "--security-profile",
                "2",
                "--tls-cert",
                "missing.pem",
                "--tls-key",
                "missing.key",
            ],
            "no file at missing.pem",
        ),
    ],
)
def test_evaluate_and_tls_mistakes_get_one_line(tmp_path: Path, args: list[str], says: str) -> None:
    assert says in one_line_error(run("--db", str(tmp_path / "x.sqlite3"), *args))


def test_a_typo_in_db_creates_nothing(tmp_path: Path) -> None:
    """`book --dry-run` made a database at a mistyped path, and a write command made the
    missing folder and the file, silently."""
    missing = tmp_path / "typo" / "evcms.sqlite3"
    dry = [*BOOK, "--duration", "60", "--energy", "10", "--dry-run"]
    line = one_line_error(run("--db", str(missing), *dry))
    assert "no database at" in line and str(missing) in line
    line = one_line_error(run("--db", str(missing), "chargers", "add", "CP-1"))
    assert f"no folder {missing.parent}" in line and f"mkdir -p {missing.parent}" in line
    assert not missing.parent.exists()
    beside = tmp_path / "new.sqlite3"  # a new file in a folder that exists: made on purpose
    assert one_line_error(run("--db", str(beside), *dry)).startswith("evcms-desktop: no database")
    assert not beside.exists()
    created = run("--db", str(beside), "chargers", "add", "CP-1", "--password", "p" * 20)
    assert created.returncode == 0, created.stderr
    assert beside.exists()
