import os
import subprocess
import sys
import time
from pathlib import Path

from evcms_desktop.app.cli import build_parser, main

OPTIONS = [
    "--db",
    "--headless",
    "--kiosk",
    "--host",
    "--port",
    "--path-prefix",
    "--security-profile",
    "--tls-cert",
    "--tls-key",
    "--accept-unknown",
    "--log-level",
]


def test_help_documents_every_option():
    text = build_parser().format_help()
    for option in OPTIONS:
        assert option in text
    for action in build_parser()._actions:
        assert action.help, action.option_strings


def test_version_is_printed(capsys):
    try:
        main(["--version"])
    except SystemExit as stop:
        assert stop.code == 0
    assert "evcms-desktop 0.1.0" in capsys.readouterr().out


def test_python_dash_m_runs_the_same_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "evcms_desktop", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert "usage: evcms-desktop" in result.stdout


def test_a_foreign_database_is_one_clear_line_and_exit_2(tmp_path: Path):
    bad = tmp_path / "notes.sqlite3"
    import sqlite3

    with sqlite3.connect(bad) as conn:
        conn.execute("CREATE TABLE notes (x)")
    result = subprocess.run(
        [sys.executable, "-m", "evcms_desktop", "--db", str(bad)],
        capture_output=True,
        text=True,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].endswith("is not an EVCMS Desktop database")


def test_the_console_opens_on_a_fresh_database(tmp_path: Path):
    db = tmp_path / "console.sqlite3"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    process = subprocess.Popen(
        [sys.executable, "-m", "evcms_desktop", "--db", str(db), "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        seen = []
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line:
                break
            seen.append(line)
            if "Console open" in line:
                break
        assert any("Console open" in line for line in seen), "".join(seen)
        assert process.poll() is None
        assert db.exists()
    finally:
        process.terminate()
        process.wait(10)


def test_commands_that_never_schedule_do_not_import_the_scheduler(tmp_path: Path):
    """`chargers list` imported SciPy (about 2 s on this machine) through the central
    system and its site schedule, which only serving and planning need."""
    db = tmp_path / "evcms.sqlite3"
    heavy = ("scipy", "evcms_desktop.schedule", "evcms_desktop.csms.server")
    program = (
        "import sys\n"
        "from evcms_desktop.app.cli import main\n"
        f"for args in (['chargers', 'add', 'CP-1', '--password', 'p' * 20], ['chargers', 'list'],"
        " ['sessions'], ['bookings']):\n"
        f"    assert main(['--db', {str(db)!r}, *args]) == 0, args\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout


def test_an_empty_db_is_refused_in_one_line_not_taken_for_the_default(capsys):
    assert main(["--db", "", "sites", "list"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ("evcms-desktop: --db: empty; give a file path or a postgresql:// URL\n")


def test_a_bookings_duration_has_one_bound_and_no_operators_are_said(tmp_path: Path, capsys):
    db = str(tmp_path / "evcms.sqlite3")
    assert main(["--db", db, "operators", "list"]) == 0
    assert capsys.readouterr().out == "No operators.\n"
    book = ["--db", db, "book", "--date", "2099-12-30", "--arrival", "10:00", "--energy", "5"]
    try:
        main([*book, "--duration", "1441"])
    except SystemExit as stop:
        assert stop.code == 2
    refused = capsys.readouterr().err.strip().splitlines()[-1]
    assert "1 to 1440" in refused, refused
    assert main([*book, "--duration", "1440", "--dry-run"]) == 1  # the site has no chargers
    assert "at most" not in capsys.readouterr().err  # but 1440 is no longer refused for length
