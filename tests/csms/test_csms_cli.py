"""The headless command line: chargers, book, bookings, sessions, --headless, evcms-chargebox."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import os
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from evcms_desktop.app.cli import build_parser, config_from_args, main
from evcms_desktop.app.config import csms_config
from evcms_desktop.csms import charger_admin
from evcms_desktop.csms.events import EventKind
from evcms_desktop.csms.server import CentralSystem, CsmsConfig
from evcms_desktop.domain.attempts import TRIES
from evcms_desktop.simulator import cli as chargebox_cli
from evcms_desktop.simulator.chargebox import ChargeBox
from evcms_desktop.store import operators
from evcms_desktop.store.deviations import DeviationCount, add_deviations
from evcms_desktop.store.models import Booking, ChargePoint, QueuedCommand, Station
from tests.csms.helpers import FakeClock, Recorder, run, running, url

PASSWORD = "sixteen-chars-ok"
ENV = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}


def cli(db_target: str, *args: str) -> int:
    return main(["--db", db_target, "--log-level", "WARNING", *args])


def test_chargers_commands(db_target: str, capsys):
    assert (
        cli(db_target, "chargers", "add", "CP-9", "--password", PASSWORD, "--connectors", "3") == 0
    )
    assert cli(db_target, "chargers", "list") == 0
    out = capsys.readouterr().out
    assert re.search(r"CP-9\s+approved\s+3 conn\.\s+offline\s+password: yes", out)
    assert cli(db_target, "chargers", "add", "CP-9") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["evcms-desktop: A charger with the id 'CP-9' exists already."]
    assert cli(db_target, "chargers", "add", "CP-8", "--password", "short") == 1
    assert "16 to 40" in capsys.readouterr().err
    assert cli(db_target, "chargers", "approve", "CP-9") == 1
    assert "not waiting for approval" in capsys.readouterr().err
    assert cli(db_target, "chargers", "passwd", "CP-9", "--password", PASSWORD + "x") == 0
    assert cli(db_target, "chargers", "remove", "CP-9") == 0
    capsys.readouterr()
    assert cli(db_target, "chargers") == 0
    assert "CP-9" not in capsys.readouterr().out


def test_book_errors_are_one_line(db_target: str, station, capsys):
    assert (
        cli(
            db_target,
            "book",
            "--date",
            "2020-01-01",
            "--arrival",
            "10:00",
            "--duration",
            "30",
            "--energy",
            "5",
        )
        == 1
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("evcms-desktop: The arrival time has passed")
    assert (
        cli(
            db_target,
            "book",
            "--date",
            "tomorrow",
            "--arrival",
            "10:00",
            "--duration",
            "30",
            "--energy",
            "5",
        )
        == 1
    )
    assert "Use dates like" in capsys.readouterr().err


def test_booking_from_cli_is_seen_by_running_system(
    db, db_target, station, config: CsmsConfig, capsys
):
    tz = ZoneInfo("Europe/London")
    day = (datetime.now(tz) + timedelta(days=1)).date()
    start_local = datetime(day.year, day.month, day.day, 3, 0, tzinfo=tz)
    clock = FakeClock(start_local.astimezone(ZoneInfo("UTC")))
    cs = CentralSystem(config, db, clock=clock)
    recorder = Recorder(cs)

    async def scenario() -> tuple[str, str]:
        async with running(cs):
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "evcms_desktop",
                "--db",
                str(db_target),
                "book",
                "--date",
                day.isoformat(),
                "--arrival",
                "03:00",
                "--duration",
                "30",
                "--energy",
                "5",
                "--plan",
                "1",
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=ENV,
            )
            out, err = await process.communicate()
            assert process.returncode == 0, err.decode()
            text = out.decode()
            code = re.search(r"Booking ID: (\w+)", text).group(1)
            await recorder.wait_for(EventKind.BOOKINGS_CHANGED)
            booking = Booking.get(Booking.code == code)
            ident = booking.connector.charge_point.ident
            box = ChargeBox(ident, url(cs), clock=clock, meter_interval=3600)
            await box.connect()
            await box.boot()
            status = await box.authorize(code)
            await box.close()
            return text, status

    text, status = run(scenario(), timeout=60)
    assert "Plan 1 (Duration)" in text and "Price: £" in text
    assert status == "Accepted"
    code = re.search(r"Booking ID: (\w+)", text).group(1)
    capsys.readouterr()
    assert cli(db_target, "bookings", "--date", day.isoformat()) == 0
    assert re.search(
        rf"{code}\s+{day.isoformat()} 03:00-03:30 .* plan 1\s+confirmed", capsys.readouterr().out
    )


def test_headless_serves_until_terminated(db_target: str, station, tmp_path: Path):
    station._meta.database.close()
    data_home = tmp_path / "data-home"  # the data directory when the store is PostgreSQL
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "evcms_desktop",
            "--db",
            str(db_target),
            "--headless",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--security-profile",  # explicit: a new installation asks for passwords
            "0",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={**ENV, "XDG_DATA_HOME": str(data_home)},
    )
    try:
        port = None
        for _ in range(200):
            line = process.stderr.readline()
            match = re.search(r"listening on ws://127\.0\.0\.1:(\d+)/ocpp", line)
            if match:
                port = int(match.group(1))
                break
        assert port, "the headless system did not say where it listens"

        async def scenario() -> str:
            box = ChargeBox("CP-A", f"ws://127.0.0.1:{port}/ocpp")
            await box.connect()
            status = await box.boot()
            await box.close()
            return status

        assert run(scenario()) == "Accepted"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        # The log also goes to the rotating file in the data directory (on PostgreSQL,
        # whose nodes share it, the node's own file).
        if "://" in db_target:
            (log_file,) = (data_home / "evcms-desktop").glob("evcms-desktop-*.log")
        else:
            log_file = Path(db_target).parent / "evcms-desktop.log"
        logged = log_file.read_text(encoding="utf-8")
        assert "CP-A booted" in logged and "Stopping the central system" in logged
        # A service manager's stop is a success (README): 0, not 143 as the console's.
        assert "Ending on SIGTERM: a clean stop (exit status 0)" in logged
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_chargebox_command_runs_several_chargers(db, station, config: CsmsConfig):
    for i in (1, 2, 3):
        charger_admin.add_charger(f"SIM-{i}", PASSWORD)
    cs = CentralSystem(config, db)
    recorder = Recorder(cs)

    async def scenario() -> int:
        async with running(cs):
            args = chargebox_cli.build_parser().parse_args(
                [
                    "--url",
                    url(cs),
                    "--id",
                    "SIM",
                    "--count",
                    "3",
                    "--password",
                    PASSWORD,
                    "--duration",
                    "0.3",
                    "--log-level",
                    "WARNING",
                ]
            )
            return await chargebox_cli.run_fleet(args)

    assert run(scenario()) == 0
    assert sorted(e.charge_point for e in recorder.of(EventKind.CHARGER_BOOTED)) == [
        "SIM-1",
        "SIM-2",
        "SIM-3",
    ]
    assert len(recorder.of(EventKind.STATUS_CHANGED)) == 6


def test_chargebox_command_reconnects_after_the_central_system_restarts(
    db, station, config: CsmsConfig
):
    charger_admin.add_charger("SIM", PASSWORD)
    first = CentralSystem(config, db)
    booted_first = Recorder(first)

    async def scenario() -> tuple[int, list[str]]:
        await first.start()
        argv = ["--url", url(first), "--id", "SIM", "--password", PASSWORD]
        argv += ["--duration", "20", "--log-level", "WARNING"]
        args = chargebox_cli.build_parser().parse_args(argv)
        fleet = asyncio.create_task(chargebox_cli.run_fleet(args))
        await booted_first.wait_for(EventKind.CHARGER_BOOTED, timeout=10)
        await first.stop()  # the station PC restarts
        second = CentralSystem(dataclasses.replace(config, port=first.port), db)
        booted_again = Recorder(second)
        async with running(second):
            await booted_again.wait_for(EventKind.CHARGER_BOOTED, timeout=15)
            fleet.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await fleet
            return second.port, [e.charge_point for e in booted_again.of(EventKind.CHARGER_BOOTED)]

    port, booted = run(scenario(), timeout=60)
    assert booted == ["SIM"]
    assert port == first.port


def test_chargers_reading_settings_and_tolerated_column(db_target: str, station, capsys):
    assert cli(db_target, "chargers", "set", "CP-A", "--strict", "on") == 0
    assert cli(db_target, "chargers", "set", "CP-B", "--timezone", "Europe/Paris") == 0
    assert cli(db_target, "chargers", "set", "CP-B", "--timezone", "Mars/Olympus") == 1
    assert cli(db_target, "chargers", "set", "CP-B") == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "evcms-desktop: 'Mars/Olympus' is not a time zone (e.g. Europe/Paris).",
        "evcms-desktop: Say what to set: --strict and/or --timezone.",
    ]
    at = datetime(2026, 12, 1, 6, tzinfo=ZoneInfo("UTC"))
    add_deviations(
        [
            DeviationCount("CP-B", "extra_field", 3, "BootNotification: ignored x", at, at),
            DeviationCount("CP-B", "number_as_string", 40, "MeterValues: 1 read as '1'", at, at),
        ]
    )
    assert cli(db_target, "chargers", "list") == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert re.search(r"reading: strict\s+tolerated: -$", lines["CP-A"])
    assert lines["CP-B"].endswith(
        "reading: system    tolerated: number_as_string x40, extra_field x3"
    )


def test_strict_and_ping_options_reach_the_central_system():
    args = build_parser().parse_args(["--strict", "--ping-interval", "20", "--ping-timeout", "0"])
    config = csms_config(config_from_args(args), {"ping_interval": 45, "strict": False})
    assert (config.strict, config.ping_interval, config.ping_timeout) == (True, 20, None)
    saved = csms_config(config_from_args(build_parser().parse_args([])), {"ping_timeout": "x"})
    assert (saved.strict, saved.ping_interval, saved.ping_timeout) == (False, 60, 60)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--ping-interval", "-5"])


def test_the_file_port_follows_the_ocpp_port_unless_given():
    def file_port(*argv: str) -> int | None:
        return csms_config(config_from_args(build_parser().parse_args(list(argv))), {}).file_port

    assert file_port() == 9001
    assert file_port("--port", "9100") == 9101
    assert file_port("--port", "0") == 0
    assert file_port("--file-port", "8080") == 8080
    assert file_port("--file-port", "off") is None
    for bad in ("70000", "-1", "http"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["--file-port", bad])


def test_book_refuses_a_skipped_local_time_and_asks_about_a_repeated_one(
    db_target, station, capsys
):
    assert (
        cli(
            db_target,
            "book",
            "--date",
            "2027-03-28",
            "--arrival",
            "01:30",
            "--duration",
            "30",
            "--energy",
            "5",
        )
        == 1
    )
    assert (
        cli(
            db_target,
            "book",
            "--date",
            "2027-10-31",
            "--arrival",
            "01:30",
            "--duration",
            "30",
            "--energy",
            "5",
        )
        == 1
    )
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "evcms-desktop: 2027-03-28 01:30 does not exist in Europe/London (the clocks go"
        " forward); choose another time.",
        "evcms-desktop: 2027-10-31 01:30 happens twice in Europe/London (the clocks go back):"
        " say which, with 01:30+01:00 or 01:30+00:00.",
    ]


def test_book_takes_the_drivers_earlier_time_for_eco_plans(db_target, station, capsys):
    # A weekday at least two days ahead on the real clock (the command plans from now),
    # 17:00 London: Peak On (16:00-22:00 on weekdays).
    ahead = (datetime.now(UTC) + timedelta(days=2)).date()
    while ahead.weekday() >= 5:
        ahead += timedelta(days=1)
    day = ahead.isoformat()
    asked = ["book", "--date", day, "--arrival", "17:00", "--duration", "60", "--energy", "8.8"]

    def eco_starts(*extra: str) -> list[str]:
        assert cli(db_target, *asked, *extra, "--dry-run") == 0
        out = capsys.readouterr().out.splitlines()
        return [line.split()[5].split("-")[0] for line in out if "Eco)" in line]

    assert eco_starts() == ["22:00", "22:00"]  # never before the arrival without it
    assert eco_starts("--earliest", "14:00") == ["15:00", "15:30"]  # Peak Off before 16:00
    for bad, message in [
        ("18:00", "Come at most 12 hours before the arrival."),
        ("1pm", "Use --earliest HH:MM"),
    ]:
        assert cli(db_target, *asked, "--earliest", bad, "--dry-run") == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err


def test_a_site_given_with_site_lists_and_acts_on_its_own_chargers_only(
    db_target: str, station, capsys
):
    assert cli(db_target, "sites", "add", "North Yard", "--timezone", "Europe/Paris") == 0
    assert cli(db_target, "--site", "North Yard", "chargers", "add", "NA-1") == 0
    assert cli(db_target, "chargers", "add", "SO-1") == 0
    capsys.readouterr()

    assert cli(db_target, "--site", "North Yard", "chargers", "list") == 0
    listed = {line.split()[0] for line in capsys.readouterr().out.splitlines()}
    assert listed == {"NA-1"}
    assert cli(db_target, "chargers", "list") == 0  # no --site: the first site's, as bookings
    assert {line.split()[0] for line in capsys.readouterr().out.splitlines()} == {
        "CP-A",
        "CP-B",
        "SO-1",
    }

    assert cli(db_target, "--site", "North Yard", "chargers", "remove", "SO-1") == 1
    assert capsys.readouterr().err.strip() == (
        "evcms-desktop: SO-1 is not a charger of North Yard."
    )
    assert cli(db_target, "--site", "North Yard", "send", "SO-1", "Reset", "type=Soft") == 1
    assert capsys.readouterr().err.strip() == (
        "evcms-desktop: SO-1 is not a charger of North Yard."
    )
    assert cli(db_target, "chargers", "list") == 0
    assert "SO-1" in capsys.readouterr().out


def test_a_pending_charger_has_no_site_until_a_site_approves_it(db_target: str, station, capsys):
    """An unknown charger waits with no site (any site may claim it); `--site B chargers
    approve` puts it in B, and from then on A neither lists nor acts on it."""
    assert cli(db_target, "sites", "add", "North Yard") == 0
    charger_admin.create_pending("NEW-1", None, max_pending=5)  # as the listener does
    capsys.readouterr()

    def listed(site: str) -> set[str]:
        assert cli(db_target, "--site", site, "chargers", "list") == 0
        return {line.split()[0] for line in capsys.readouterr().out.splitlines()}

    assert "NEW-1" in listed("North Yard") and "NEW-1" in listed(station.name)
    assert cli(db_target, "chargers", "approve", "NEW-1") == 1  # two sites: which?
    assert capsys.readouterr().err.strip() == (
        "evcms-desktop: Say which site NEW-1 is at: --site NAME chargers approve NEW-1"
        " (the sites are 'Test Station', 'North Yard')."
    )
    assert cli(db_target, "--site", "North Yard", "chargers", "approve", "NEW-1") == 0
    assert capsys.readouterr().out.startswith("Approved NEW-1 at North Yard;")
    assert "NEW-1" in listed("North Yard") and "NEW-1" not in listed(station.name)
    for action in (["approve"], ["remove"], ["unlock"], ["set", "--strict", "on"]):
        assert cli(db_target, "--site", station.name, "chargers", *action, "NEW-1") == 1
        assert capsys.readouterr().err.strip() == (
            "evcms-desktop: NEW-1 is not a charger of Test Station."
        )
    assert ChargePoint.get(ChargePoint.ident == "NEW-1").station.name == "North Yard"


def test_a_chargebox_coming_back_reports_its_connectors_as_they_are(
    db, station, config: CsmsConfig
):
    """After a reconnect mid-session the simulator says Charging, not Available."""
    charger_admin.add_charger("SIM", PASSWORD)
    cs = CentralSystem(config, db)
    recorder = Recorder(cs)

    async def scenario() -> None:
        async with running(cs):
            box = ChargeBox("SIM", url(cs), password=PASSWORD, connectors=2)
            box.connectors[2].status = "Charging"
            await chargebox_cli.bring_up(box)
            await box.close()

    run(scenario())
    reported = {(e.connector, e.data["status"]) for e in recorder.of(EventKind.STATUS_CHANGED)}
    assert reported == {(1, "Available"), (2, "Charging")}


def test_operators_and_send_as_one_of_them(db_target: str, capsys, monkeypatch):
    assert (
        cli(db_target, "operators", "add", "oli", "--role", "operator", "--password", "pw-12345")
        == 0
    )
    assert (
        cli(db_target, "operators", "add", "oli", "--role", "operator", "--password", "pw-12345")
        == 1
    )
    assert (
        cli(db_target, "operators", "add", "x y", "--role", "operator", "--password", "pw-12345")
        == 1
    )
    assert (
        cli(db_target, "operators", "add", "al", "--role", "attendant", "--password", "short") == 1
    )
    assert cli(db_target, "chargers", "add", "CP-9") == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("not-the-password\n"))
    assert (
        cli(db_target, "send", "CP-9", "Reset", "type=Soft", "--as", "oli", "--password", "-") == 1
    )
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "evcms-desktop: An operator named 'oli' exists already.",
        "evcms-desktop: 'x y' is not an operator name (1 to 40 letters, digits, . _ @ -).",
        "evcms-desktop: The password must have 8 to 200 characters.",
        "evcms-desktop: Wrong name or password for 'oli'.",
    ]


def test_an_attendant_is_added_at_one_site_and_an_operator_at_one_or_every_site(
    db_target: str, capsys
):
    assert cli(db_target, "sites", "add", "Harbour") == 0
    add = ("operators", "add")
    pw = ("--password", "pw-12345")
    assert cli(db_target, *add, "ann", "--role", "attendant", *pw) == 1
    assert cli(db_target, *add, "ann", "--role", "attendant", "--site", "Nowhere", *pw) == 1
    assert cli(db_target, *add, "ann", "--role", "attendant", "--site", "Harbour", *pw) == 0
    assert cli(db_target, "--site", "Harbour", *add, "bea", "--role", "operator", *pw) == 0
    assert cli(db_target, *add, "oli", "--role", "operator", *pw) == 0
    out, err = capsys.readouterr()
    assert (
        err.splitlines()[0] == "evcms-desktop: An attendant works at one site: name it with --site."
    )
    assert err.splitlines()[1].startswith("evcms-desktop: No site is named 'Nowhere'")
    assert out.splitlines()[-3:] == [
        "Added attendant ann at site 'Harbour'; they sign in with that password.",
        "Added operator bea at site 'Harbour'; they sign in with that password.",
        "Added operator oli at every site; they sign in with that password.",
    ]
    harbour = Station.get(Station.name == "Harbour").id
    assert [operators.site_of(name) for name in ("ann", "bea", "oli")] == [harbour, harbour, None]


def test_wrong_passwords_on_the_command_line_lock_the_operator(db_target: str, capsys, monkeypatch):
    """`send --as` counts wrong passwords on the operator, in the store: after TRIES wrong
    ones even the right one is refused for a while, and nothing is queued."""
    add = ("operators", "add", "olga", "--role", "operator", "--password", "pw-12345")
    assert cli(db_target, *add) == 0
    assert cli(db_target, "chargers", "add", "CP-9") == 0
    send = ("send", "CP-9", "Reset", "type=Soft", "--as", "olga", "--password", "-")
    for _ in range(TRIES):
        monkeypatch.setattr("sys.stdin", io.StringIO("not-the-password\n"))
        assert cli(db_target, *send) == 1
    monkeypatch.setattr("sys.stdin", io.StringIO("pw-12345\n"))
    assert cli(db_target, *send) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-2] == "evcms-desktop: Wrong name or password for 'olga'."
    # The first lock is a minute, less the seconds the last sign-in took to run.
    locked = re.fullmatch(
        r"evcms-desktop: Too many wrong sign-ins for 'olga': try again in (\d+) s\.", err[-1]
    )
    assert locked is not None and 45 <= int(locked[1]) <= 60, err[-1]
    assert QueuedCommand.select().count() == 0


def test_operators_are_listed_changed_and_given_a_new_password(db_target: str, capsys, monkeypatch):
    assert cli(db_target, "sites", "add", "Harbour") == 0
    pw = ("--password", "pw-12345")
    assert (
        cli(db_target, "operators", "add", "ann", "--role", "attendant", "--site", "Harbour", *pw)
        == 0
    )
    assert cli(db_target, "operators", "add", "oli", "--role", "operator", *pw) == 0
    for _ in range(TRIES):
        assert operators.sign_in("oli", "not-the-password") is None
    capsys.readouterr()
    assert cli(db_target, "operators", "list") == 0
    assert capsys.readouterr().out.split("\n")[:2] == [
        f"{'ann':<20} {'attendant':<10} Harbour",
        f"{'oli':<20} {'operator':<10} every site  (locked)",
    ]
    assert cli(db_target, "operators", "set", "ann", "--role", "operator", "--every-site") == 0
    assert cli(db_target, "operators", "set", "ann", "--role", "attendant") == 1
    assert cli(db_target, "operators", "set", "nobody", "--role", "operator") == 1
    monkeypatch.setattr("sys.stdin", io.StringIO("new-password-1\n"))
    assert cli(db_target, "operators", "passwd", "oli", "--password", "-") == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "ann is now operator at every site.",
        "New password set for oli; any sign-in lock is lifted.",
    ]
    assert err.splitlines() == [
        "evcms-desktop: An attendant works at one site: name it with --site.",
        "evcms-desktop: No operator is named 'nobody'.",
    ]
    assert operators.site_of("ann") is None
    assert operators.sign_in("oli", "new-password-1") is not None


def test_a_nodes_log_names_the_module_that_produced_each_line(db_path: Path):
    """What a charger did is logged under the central system's module that saw it (the
    listener its connection, the handlers its boot), not under the command line's."""
    assert cli(str(db_path), "chargers", "add", "CP-9", "--password", PASSWORD) == 0
    process = subprocess.Popen(
        [
            sys.executable, "-m", "evcms_desktop", "--db", str(db_path), "--headless",
            "--host", "127.0.0.1", "--port", "0", "--file-port", "off",
        ],
        stderr=subprocess.PIPE, text=True, env=ENV,
    )  # fmt: skip
    try:
        port = None
        for _ in range(200):
            match = re.search(
                r"listening on ws://127\.0\.0\.1:(\d+)/ocpp", process.stderr.readline()
            )
            if match:
                port = int(match.group(1))
                break
        assert port, "the headless system did not say where it listens"

        async def scenario() -> None:
            box = ChargeBox("CP-9", f"ws://127.0.0.1:{port}/ocpp", password=PASSWORD)
            await box.connect()
            assert await box.boot() == "Accepted"
            await box.close()

        run(scenario())
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    logged = (db_path.parent / "evcms-desktop.log").read_text(encoding="utf-8").splitlines()
    lines = [line.split(" ", 3)[3] for line in logged if "CP-9" in line]
    assert lines and not [line for line in lines if line.startswith("evcms_desktop.app.")], lines
    assert any(
        re.match(r"evcms_desktop\.csms\.handlers: \[charger_booted\] CP-9 booted", line)
        for line in lines
    ), lines
