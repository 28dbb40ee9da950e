"""`evcms-desktop driver-data`: drivers' personal data on request (export, erase) and how
long it is kept (retention, purge)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from evcms_desktop.app.config import AppConfig, first_site_name
from evcms_desktop.store import driver_data
from evcms_desktop.store.database import open_database
from evcms_desktop.store.models import utcnow


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "driver-data", help="a driver's personal data: export or erase it; how long it is kept"
    )
    parser.set_defaults(handler=run)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    export = actions.add_parser("export", help="everything kept about a booking's driver, JSON")
    export.add_argument("booking_id", help="one of the driver's booking IDs")
    export.add_argument("--out", type=Path, help="write to this new file (default: stdout)")
    erase = actions.add_parser("erase", help="blank a driver's name and contact everywhere")
    erase.add_argument("booking_id", help="one of the driver's booking IDs")
    retention = actions.add_parser("retention", help="show or set the days details are kept")
    retention.add_argument("days", nargs="?", type=int, help="days after a booking ends")
    actions.add_parser("purge", help="blank the details past the retention now")


def run(args: argparse.Namespace, config: AppConfig) -> int:
    db = open_database(config.database, station_name=first_site_name(config))
    try:
        return _run(args)
    except driver_data.DriverDataError as exc:
        sys.stderr.write(f"evcms-desktop: {exc}\n")
        return 1
    except OSError as exc:  # --out: a folder that is not there, a file that is
        where = f" ({exc.filename})" if exc.filename else ""
        sys.stderr.write(f"evcms-desktop: cannot write: {exc.strerror or exc}{where}\n")
        return 1
    finally:
        db.close()


def _run(args: argparse.Namespace) -> int:
    if args.action == "export":
        text = json.dumps(driver_data.export_driver(args.booking_id), indent=2)
        if args.out is None:
            sys.stdout.write(text + "\n")
        else:
            with args.out.open("x", encoding="utf-8") as out:  # never overwrites
                out.write(text + "\n")
            sys.stdout.write(f"Wrote {args.out}\n")
    elif args.action == "erase":
        count = driver_data.erase_driver(args.booking_id)
        sys.stdout.write(f"Erased the driver's details from {_bookings(count)}.\n")
    elif args.action == "retention":
        if args.days is not None:
            driver_data.set_retention_days(args.days)
        days = driver_data.retention_days()
        sys.stdout.write(f"Drivers' details are kept {days} days after a booking ends.\n")
    else:
        count = driver_data.blank_expired(utcnow())
        sys.stdout.write(f"Blanked drivers' details on {_bookings(count)}.\n")
    return 0


def _bookings(count: int) -> str:
    return f"{count} booking{'s' * (count != 1)}"
