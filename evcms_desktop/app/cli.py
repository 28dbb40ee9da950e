"""The `evcms-desktop` command: the console by default, headless serving and admin commands."""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import peewee

from evcms_desktop import APP_NAME, __version__
from evcms_desktop.app.config import (
    DEFAULT_HOST,
    DEFAULT_PATH_PREFIX,
    DEFAULT_PORT,
    AppConfig,
)
from evcms_desktop.domain.station_settings import (
    DEFAULT_MAX_CONNECTIONS,
    SettingError,
    max_connections,
)
from evcms_desktop.store.database import (
    DatabaseError,
    default_database_path,
    parse_target,
    unwritable_files,
    unwritable_message,
)
from evcms_desktop.store.settings import (
    DEFAULT_EVENT_RETENTION_DAYS,
    MAX_EVENT_RETENTION_DAYS,
    MAX_PING_SECONDS,
)
from evcms_desktop.store.stations import SiteError

log = logging.getLogger(__name__)


class OneLineParser(argparse.ArgumentParser):
    """Usage mistakes answered in one line, pointing at --help, instead of the usage text."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"give a port from 0 to 65535, not {value}")
    return value


def _seconds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of seconds") from None
    if not 0 <= value <= MAX_PING_SECONDS:
        raise argparse.ArgumentTypeError(f"give 0 to {MAX_PING_SECONDS} seconds")
    return value


def _file_port(text: str) -> int:
    if text == "off":
        return -1
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0 to 65535, or off)")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="evcms-desktop",
        description=f"{APP_NAME}: operator console and OCPP 1.6J central system for EV charging.",
        epilog="Without a command the console window opens and the central system listens.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--db",
        default=None,
        metavar="PATH|URL",
        help="SQLite database file, or postgresql://user@host:5432/evcms"
        f" (default: {default_database_path()})",
    )
    parser.add_argument(
        "--site",
        metavar="NAME",
        help="the site (station) that the console, kiosk and commands work on, by name"
        " (default: the first; `sites` lists them)",
    )
    parser.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="how much to log (default: INFO for the console and --headless, WARNING for"
        " commands, whose output is their answer)",
    )
    parser.add_argument(
        "--log-file",
        type=Path,
        metavar="PATH",
        help="the console's and --headless's log file (default: evcms-desktop.log in the"
        " data directory; on PostgreSQL one per node, evcms-desktop-HOST-PORT.log)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--headless", action="store_true", help="serve the central system without a window"
    )
    mode.add_argument(
        "--kiosk", action="store_true", help="full-screen walk-up booking for drivers"
    )
    mode.add_argument(
        "--attach",
        metavar="OPERATOR",
        nargs="?",
        const="",
        help="a console for the deployment on this PostgreSQL --db, without a central system"
        " of its own; it asks for the name (OPERATOR, if given, is filled in) and password"
        " of an operator (see operators); its commands go to the node holding the charger,"
        " which checks the operator's role",
    )
    mode.add_argument(
        "--run-here",
        action="store_true",
        help="on a PostgreSQL --db, run the central system in this console without asking"
        " (as on an SQLite file, where it is never asked)",
    )
    parser.add_argument(
        "--choose",
        action="store_true",
        help="on a PostgreSQL --db, ask again whether to run the central system here or"
        " attach, forgetting the choice remembered",
    )
    server = parser.add_argument_group("central system")
    server.add_argument(
        "--host", help=f"listen address (Settings, else {DEFAULT_HOST}); the same for below"
    )
    server.add_argument("--port", type=_port, help=f"listen port ({DEFAULT_PORT}; 0: any free)")
    server.add_argument(
        "--path-prefix",
        help=f"WebSocket path before the charge point id ({DEFAULT_PATH_PREFIX})",
    )
    server.add_argument(
        "--security-profile",
        type=int,
        choices=[0, 1, 2],
        help="0: no authentication (lab), 1: HTTP Basic auth, 2: TLS and Basic auth",
    )
    server.add_argument("--tls-cert", type=Path, metavar="PEM", help="server certificate chain")
    server.add_argument("--tls-key", type=Path, metavar="PEM", help="server private key")
    server.add_argument(
        "--max-connections",
        type=_connection_count,
        metavar="N",
        help="chargers connected at once, at most (Settings, else"
        f" {DEFAULT_MAX_CONNECTIONS}); more get HTTP 503",
    )
    server.add_argument(
        "--file-port",
        type=_file_port,
        metavar="PORT",
        help="HTTP(S) port for firmware downloads and diagnostics uploads (the OCPP port"
        " plus one; 0: any free port; off: not served)",
    )
    server.add_argument(
        "--accept-unknown",
        action="store_true",
        default=None,
        help="let unknown chargers connect as Pending until an operator approves them",
    )
    server.add_argument(
        "--strict",
        action="store_true",
        default=None,
        help="read chargers strictly: refuse extra fields, over-long strings, numbers as"
        " strings, unknown measurands and error codes, times without an offset, and a"
        " missing subprotocol (default: tolerated and recorded per charger)",
    )
    server.add_argument(
        "--ping-interval",
        type=_seconds,
        metavar="S",
        help="WebSocket ping to each charger every S seconds (60; 0: off)",
    )
    server.add_argument(
        "--ping-timeout",
        type=_seconds,
        metavar="S",
        help="a charger that does not answer a ping in S seconds is disconnected (60; 0: off)",
    )
    server.add_argument(
        "--event-retention-days",
        type=_retention_days,
        metavar="DAYS",
        help=f"events older than this are pruned (Settings, else {DEFAULT_EVENT_RETENTION_DAYS})",
    )
    subparsers = parser.add_subparsers(
        dest="command", metavar="COMMAND", help="run a command instead of opening the console"
    )
    from evcms_desktop.app import (
        admin_commands,
        autostart,
        driver_data_command,
        evaluate_command,
        send_command,
    )

    admin_commands.register(subparsers)
    autostart.register(subparsers)
    driver_data_command.register(subparsers)
    send_command.register(subparsers)
    evaluate_command.register(subparsers)
    return parser


def config_from_args(args: argparse.Namespace) -> AppConfig:
    return AppConfig(
        database=parse_target(default_database_path() if args.db is None else args.db),
        site=args.site,
        host=args.host,
        port=args.port,
        path_prefix=args.path_prefix,
        security_profile=args.security_profile,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        accept_unknown=args.accept_unknown,
        strict=args.strict,
        ping_interval=args.ping_interval,
        ping_timeout=args.ping_timeout,
        max_connections=args.max_connections,
        file_port=args.file_port,
        event_retention_days=args.event_retention_days,
        log_file=args.log_file,
    )


def _check_tls_files(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """A certificate without its key (or a path that is not there) is a mistake to say, not
    a reason to fall back on a self-signed certificate."""
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together; give both, or neither")
    for option, path in (("--tls-cert", args.tls_cert), ("--tls-key", args.tls_key)):
        if path is not None and not path.is_file():
            parser.error(f"{option}: no file at {path}")


def _connection_count(text: str) -> int:
    try:
        return max_connections(text)
    except SettingError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _retention_days(text: str) -> int:
    try:
        days = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days") from exc
    if not 1 <= days <= MAX_EVENT_RETENTION_DAYS:
        raise argparse.ArgumentTypeError(f"give 1 to {MAX_EVENT_RETENTION_DAYS} days")
    return days


def main(argv: Sequence[str] | None = None) -> int:
    multiprocessing.freeze_support()  # a frozen (PyInstaller) build spawns the evaluation
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_tls_files(parser, args)
    command = getattr(args, "handler", None) is not None
    config: AppConfig | None = None
    logging.basicConfig(
        level=args.log_level or ("WARNING" if command else "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = config_from_args(args)
        if getattr(args, "handler", None):
            return int(args.handler(args, config) or 0)
        if args.headless:
            from evcms_desktop.app.admin_commands import serve_headless

            return serve_headless(config)
        from evcms_desktop.app.console import run_console

        return run_console(
            config, kiosk=args.kiosk, attach=args.attach, run_here=args.run_here, choose=args.choose
        )
    except (DatabaseError, SiteError) as exc:
        print(f"evcms-desktop: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    except (OSError, EOFError, peewee.PeeweeException) as exc:
        # What the system refused (a port in use, a file that cannot be read, a closed
        # stdin, a store that failed mid-command): one line; --log-level DEBUG shows where.
        log.debug("The command failed", exc_info=True)
        print(f"evcms-desktop: {_store_fault(exc, config) or _one_line(exc)}", file=sys.stderr)  # noqa: T201
        return 1


def _store_fault(exc: BaseException, config: AppConfig | None) -> str | None:
    """For every command: a store error because the SQLite files cannot be written, said
    as `check_writable` says it (naming the files and the fix), not as SQLite's words."""
    if not isinstance(exc, peewee.PeeweeException) or config is None:
        return None
    path = config.database.path
    files = unwritable_files(path) if path is not None else []
    return f"cannot write: {unwritable_message(files)}" if files else None


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, EOFError):
        return "no input to read (standard input is closed)"
    if isinstance(exc, OSError) and exc.strerror:
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror}{where}"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text
