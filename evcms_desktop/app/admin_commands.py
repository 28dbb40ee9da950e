"""Headless serving and the admin subcommands: chargers, sites, book, bookings, sessions.

They work on the same database file as a running central system (SQLite in WAL mode;
bookings are taken in an IMMEDIATE transaction), which sees their changes at once.
Errors are one line on stderr and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import signal
import sys
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from pathlib import Path

from evcms_desktop.app.arguments import whole_number
from evcms_desktop.app.config import (
    AppConfig,
    csms_config,
    first_site_name,
    log_path,
    selected_site,
)
from evcms_desktop.app.log_file import close_store_or_exit, log_fatal_signals, log_to_file
from evcms_desktop.csms import charger_admin
from evcms_desktop.csms.config import SET_ASIDE_FILE, STORE_TROUBLE_PREFIX
from evcms_desktop.csms.events import CsmsEvent, EventKind
from evcms_desktop.csms.health_file import current_troubles
from evcms_desktop.domain.outcome import outcome_reason, quote_beside_bill
from evcms_desktop.domain.peak import LocalTimeError, resolve_local
from evcms_desktop.domain.plans import Plan, PlanKind
from evcms_desktop.domain.site import MAX_SESSION
from evcms_desktop.domain.tariff import format_money
from evcms_desktop.domain.text import log_safe
from evcms_desktop.domain.validation import (
    DATE_RULE,
    FIRST_DATE,
    LAST_DATE,
    MAX_CONNECTOR_KW,
    MIN_CONNECTOR_KW,
    BookingRequestError,
    PlanRequest,
    describe_duration,
    parse_amount,
)
from evcms_desktop.store import driver_data, operators
from evcms_desktop.store.bookings import BookingService, SlotTakenError, bookings_between
from evcms_desktop.store.database import DatabaseError, check_writable, open_database
from evcms_desktop.store.deviations import summarize
from evcms_desktop.store.kiosk_pin import pin_error, set_kiosk_pin
from evcms_desktop.store.models import (
    ChargingTransaction,
    Connector,
    Station,
    TransactionState,
    database_proxy,
    utcnow,
)
from evcms_desktop.store.notices import last_event
from evcms_desktop.store.sessions import bills_of, latest_sessions
from evcms_desktop.store.settings import server_settings
from evcms_desktop.store.stations import (
    SiteError,
    add_station,
    charger_count,
    find_station,
    list_stations,
    remove_station,
    rename_station,
    set_continue_past_booked_energy,
    station_calendar,
)

log = logging.getLogger(__name__)

Handler = Callable[[argparse.Namespace, AppConfig], int]
DRIVER_DATA_CHECK_SECONDS = 3600
QUIET_KINDS = (EventKind.OCPP_MESSAGE, EventKind.METER_VALUES)


class CommandError(Exception):
    """What the user has to correct, said in one line."""


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _never(_args: argparse.Namespace) -> bool:
    return False


def _always(_args: argparse.Namespace) -> bool:
    return True


def _guarded(
    handler: Handler,
    reads_only: Callable[[argparse.Namespace], bool] = _never,
    makes_first_site: Callable[[argparse.Namespace], bool] = _never,
) -> Handler:
    """Run `handler` on the opened store, its user errors in one line. A command that only
    reads creates nothing (no file, no schema, no site); one that writes refuses a file
    whose folder does not exist (a typo), but for the default data folder; one that makes
    a site (`sites add`) gives a new database no other."""

    def run(args: argparse.Namespace, config: AppConfig) -> int:
        first_site = None if makes_first_site(args) and not config.site else first_site_name(config)
        db = open_database(
            config.database,
            station_name=first_site,
            create=not reads_only(args),
            new_folder=False,
        )
        try:
            return handler(args, config)
        except (
            CommandError,
            charger_admin.ChargerAdminError,
            BookingRequestError,
            SlotTakenError,
            SiteError,
            operators.OperatorError,
        ) as exc:
            sys.stderr.write(f"evcms-desktop: {exc}\n")
            return 1
        finally:
            db.close()

    return run


# -- headless ------------------------------------------------------------------------


def _log_event(event: CsmsEvent) -> None:
    """The events the central system does not log itself (it logs the notifications),
    under the logger of the module that produced them."""
    if not event.is_notification and event.kind not in QUIET_KINDS:
        event.logger.info("[%s] %s", event.kind.value, log_safe(event.message, len(event.message)))


async def _blank_expired_driver_data() -> None:
    """Drivers' details past the retention are blanked at start and every hour."""
    while True:
        driver_data.blank_expired(utcnow())
        await asyncio.sleep(DRIVER_DATA_CHECK_SECONDS)


async def _serve(config: AppConfig) -> None:
    written = log_to_file(log_path(config))
    if written is not None:
        log_fatal_signals(written)
    from evcms_desktop.csms.server import CentralSystem  # only here: it imports the schedule

    db = open_database(config.database, station_name=first_site_name(config))
    cs = CentralSystem(csms_config(config, server_settings()), db)
    cs.bus.subscribe(_log_event)
    stop = asyncio.Event()
    received: list[signal.Signals] = []

    def on_signal(sig: signal.Signals) -> None:
        received.append(sig)
        stop.set()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows: Ctrl+C raises instead
            loop.add_signal_handler(sig, on_signal, sig)
    await cs.start()
    log.info("%s", store_health(config.data_dir))
    retention = asyncio.create_task(_blank_expired_driver_data())
    try:
        await stop.wait()
    finally:
        retention.cancel()
        if received:
            log.info("Ending on %s: a clean stop (exit status 0)", received[0].name)
        log.info("Stopping the central system")
        await cs.stop()
        close_store_or_exit(db)


def serve_headless(config: AppConfig) -> int:
    """`evcms-desktop --headless`: the central system on a plain asyncio loop. SIGTERM
    and Ctrl-C stop it cleanly, with status 0: the service manager's stop is a success
    (the console, a program a person runs, exits 128 + the signal instead)."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(config))
    return 0


# -- chargers ------------------------------------------------------------------------


def _secret(given: str, question: str, option: str) -> str:
    """A secret as given: '-' reads a line of stdin, 'prompt' asks at the terminal."""
    if given == "-":
        return sys.stdin.readline().rstrip("\n")
    if given == "prompt":
        if not sys.stdin.isatty():
            raise CommandError(
                f"{option} prompt needs a terminal; use {option} - to read it from stdin"
            )
        return getpass.getpass(question)
    return given


def _password(args: argparse.Namespace) -> str | None:
    if args.password is None:
        return None
    return _secret(args.password, f"Password for {args.ident}: ", "--password")


def _chargers(args: argparse.Namespace, config: AppConfig) -> int:
    action = args.chargers_action
    # A charger named by its ID is found at any site without --site; the list, as every
    # listing, is of the first site without it.
    site = selected_site(config) if config.site else None
    if action == "add":
        charger_admin.check_ident(args.ident)
        charger_admin.check_max_power(args.max_power)
        charger_admin.add_charger(
            args.ident,
            _password(args),
            connectors=args.connectors,
            max_power_kw=args.max_power,
            station=selected_site(config),
        )
        _out(f"Added {args.ident} with {args.connectors} connector(s).")
    elif action == "passwd":
        password = _password(args)
        if not password:
            raise CommandError("Give the new password with --password.")
        charger_admin.set_password(args.ident, password, site)
        _out(f"Password of {args.ident} changed.")
    elif action == "approve":
        joins = site or _the_only_site(args.ident)
        charger_admin.approve(args.ident, joins, connectors=args.connectors)
        _out(f"Approved {args.ident} at {joins.name}; it is accepted at its next BootNotification.")
    elif action == "remove":
        charger_admin.remove(args.ident, site)
        _out(f"Removed {args.ident}.")
    elif action == "unlock":
        if charger_admin.unlock(args.ident, site):
            _out(f"Unlocked {args.ident}; its next login is checked again.")
        else:
            _out(f"{args.ident} was not locked out.")
    elif action == "set":
        if args.strict is None and args.timezone is None:
            raise CommandError("Say what to set: --strict and/or --timezone.")
        if args.strict is not None:
            charger_admin.set_strict(args.ident, _STRICTNESS[args.strict], site)
        if args.timezone is not None:
            zone = None if args.timezone == "station" else args.timezone
            charger_admin.set_timezone(args.ident, zone, site)
        _out(f"Set {args.ident}; it applies when the charger next connects.")
    else:
        rows = charger_admin.list_chargers(station=selected_site(config))
        if not rows:
            _out("No chargers.")
        now = utcnow()
        # A node whose store cannot commit cannot write its registry rows either.
        held = {i for trouble in current_troubles(config.data_dir) for i in trouble.connected}
        for c in rows:
            seen = c.last_seen_at.strftime("%Y-%m-%d %H:%M UTC") if c.last_seen_at else "never"
            locked = c.locked_until is not None and c.locked_until > now
            lockout = f"  LOCKED OUT until {c.locked_until:%Y-%m-%d %H:%M} UTC" if locked else ""
            _out(
                f"{c.ident:<20} {c.state:<9} {c.connectors} conn."
                f"  {'online ' if c.connected or c.ident in held else 'offline'}"
                f"  password: {'yes' if c.has_password else 'no ':<3}  last seen: {seen:<20}"
                f"  reading: {_reading(c.strict):<8}  tolerated: {summarize(c.deviations)}"
                f"{lockout}"
            )
    return 0


_STRICTNESS = {"on": True, "off": False, "default": None}


def _the_only_site(ident: str) -> Station:
    """The site a charger approved without --site joins: the database's one site; with
    several, the approver must say which."""
    sites = list_stations()
    if len(sites) > 1:
        names = ", ".join(repr(s.name) for s in sites)
        raise CommandError(
            f"Say which site {ident} is at: --site NAME chargers approve {ident}"
            f" (the sites are {names})."
        )
    return sites[0]


def _reading(strict: bool | None) -> str:
    return "system" if strict is None else ("strict" if strict else "tolerant")


# -- book ----------------------------------------------------------------------------


def _decimal(text: str | None, what: str) -> Decimal | None:
    if text is None:
        return None
    try:
        value = parse_amount(text)
    except ValueError as exc:
        raise CommandError(f"{what} {text!r}: {exc}") from None
    if value is None:
        raise CommandError(f"{what} needs a number, like 20 or 12.5.")
    return value


def _date(text: str) -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError as exc:
        raise CommandError(f"Use dates like 2026-12-01 ({exc}).") from exc
    if not FIRST_DATE <= day <= LAST_DATE:
        raise CommandError(f"{DATE_RULE}, not {day}.")
    return day


def _plan_line(plan: Plan, tz_to_local: Callable[[datetime], datetime], currency: str) -> str:
    start, end = tz_to_local(plan.start), tz_to_local(plan.end)
    label = Connector.get_by_id(plan.connector_id).label
    peak = "Peak On " if plan.peak_on else "Peak Off"
    return (
        f"{plan.name:<22} {start:%Y-%m-%d %H:%M}-{end:%H:%M} {start:%Z}  {label:<12}"
        f" {plan.energy_kwh:.2f} kWh  {plan.power_kw:.2f} kW  ACM {plan.acm.normalize()}"
        f"  {peak}  {format_money(plan.price.total, currency)}"
    )


def _earliest(text: str | None, tz: tzinfo, day: date, arrival: time) -> datetime | None:
    """`--earliest HH:MM`: on the arrival's day, or the day before when later than it."""
    if text is None:
        return None
    try:
        earliest = time.fromisoformat(text)
    except ValueError as exc:
        raise CommandError(f"Use --earliest HH:MM ({exc}).") from exc
    offset = earliest.utcoffset()
    earliest = earliest.replace(tzinfo=None)
    on = day - timedelta(days=1) if earliest > arrival else day
    try:
        return resolve_local(tz, on, earliest, offset)
    except LocalTimeError as exc:
        raise CommandError(f"--earliest: {exc}") from None


def _book(args: argparse.Namespace, config: AppConfig) -> int:
    if not args.dry_run:  # before any plan is offered: it could not be booked
        try:
            check_writable(database_proxy.obj)
        except DatabaseError as exc:  # a store that refuses writes: 1, as for every write
            raise CommandError(str(exc)) from None
    station = selected_site(config)
    calendar = station_calendar(station)
    day = _date(args.date)
    try:
        arrival_time = time.fromisoformat(args.arrival)
    except ValueError as exc:
        raise CommandError(f"Use --arrival HH:MM ({exc}).") from exc
    offset = arrival_time.utcoffset()
    arrival_time = arrival_time.replace(tzinfo=None)
    try:
        arrival = resolve_local(calendar.tz, day, arrival_time, offset)
    except LocalTimeError as exc:
        raise CommandError(str(exc)) from None
    request = PlanRequest(
        arrival=arrival,
        duration=timedelta(minutes=args.duration),
        energy_kwh=_decimal(args.energy, "--energy"),
        power_kw=_decimal(args.power, "--power"),
        earliest=_earliest(args.earliest, calendar.tz, day, arrival_time),
    )
    service = BookingService(database_proxy.obj, station)
    outcome = service.plan(request)
    if not outcome.plans:
        reasons = "; ".join(outcome.unavailable.values()) or "no plan fits this request"
        raise CommandError(f"No plan can be offered: {reasons}")
    earlier = (
        ""
        if request.earliest is None
        else f" (Eco plans from {calendar.to_local(request.earliest):%a %H:%M})"
    )
    _out(f"Plans for {day} {arrival_time:%H:%M}, {describe_duration(request.duration)}{earlier}:")
    for plan in outcome.plans:
        _out("  " + _plan_line(plan, calendar.to_local, station.currency))
    for kind, reason in outcome.unavailable.items():
        _out(f"  Plan {kind.value} ({kind.title}): not offered. {reason}")
    if args.dry_run:
        _out("Dry run: nothing was booked.")
        return 0
    if args.plan == "cheapest":
        chosen = outcome.cheapest
    else:
        chosen = outcome.plan(PlanKind(int(args.plan)))
        if chosen is None:
            raise CommandError(f"Plan {args.plan} is not offered for this request.")
    assert chosen is not None
    if chosen.start != request.arrival:
        asked, planned = calendar.to_local(request.arrival), calendar.to_local(chosen.start)
        _out(
            f"The {'cheapest ' if args.plan == 'cheapest' else ''}plan moves the arrival from"
            f" {asked:%H:%M} to {planned:%a %H:%M}; --plan 1 keeps {asked:%H:%M}."
        )
    booking = service.confirm(outcome, chosen)
    _out(f"Booked {chosen.name}.")
    _out(f"Booking ID: {booking.code}")
    _out(f"Price: {format_money(booking.price_total, station.currency)}")
    return 0


def _bookings(args: argparse.Namespace, config: AppConfig) -> int:
    station = selected_site(config)
    calendar = station_calendar(station)
    first = _date(args.date) if args.date else calendar.to_local(utcnow()).date()
    start = calendar.local_to_utc(first, time(0))
    end = start + timedelta(days=args.days)
    rows = bookings_between(station, start, end)
    if not rows:
        _out("No bookings.")
    bills = bills_of(b.id for b in rows)
    for b in rows:
        s, e = calendar.to_local(b.start), calendar.to_local(b.end)
        bill = bills.get(b.id)
        money = (
            f"quoted {format_money(b.price_total, station.currency)}"
            if bill is None
            else quote_beside_bill(
                b.energy_kwh, b.price_total, bill.energy_kwh, bill.price_total, station.currency
            )
        )
        _out(
            f"{b.code}  {s:%Y-%m-%d %H:%M}-{e:%H:%M}  {b.connector.label:<12}"
            f" {b.energy_kwh:.2f} kWh  plan {b.plan}  {b.state:<10} {money}"
        )
    return 0


STORE_FINE = "Store: no trouble recorded"


def store_health(data_dir: Path) -> str:
    """One line on the store's health: rows set aside, and the last time it could not
    commit (as the central system recorded it)."""
    parts = []
    aside = data_dir / SET_ASIDE_FILE
    try:
        with aside.open("rb") as rows:
            count = sum(1 for _ in rows)
    except OSError:
        count = 0
    if count:
        parts.append(f"{count} row(s) set aside in {aside}")
    # While it lasts, the trouble is in the health file: the store cannot record it, and
    # its last recorded episode is not the one under way.
    current = current_troubles(data_dir)
    for lasting in current:
        parts.append(
            f"cannot commit since {lasting.since:%Y-%m-%d %H:%M} UTC"
            f" ({log_safe(' '.join(lasting.error.split()), 160)})"
        )
    trouble = None if current else last_event(EventKind.STORE_TROUBLE.value, STORE_TROUBLE_PREFIX)
    if trouble is not None:
        text = (
            f"last could not commit at {trouble.timestamp:%Y-%m-%d %H:%M} UTC"
            f" ({' '.join(trouble.message.split())[:160]})"
        )
        latest = last_event(EventKind.STORE_TROUBLE.value)
        if latest is not None and latest.id > trouble.id:
            text += f", committed again at {latest.timestamp:%Y-%m-%d %H:%M} UTC"
        parts.append(text)
    return "Store: " + "; ".join(parts) if parts else STORE_FINE


def _sessions(args: argparse.Namespace, config: AppConfig) -> int:
    health = store_health(config.data_dir)
    if health != STORE_FINE:  # trouble goes beside the listing, on stderr
        sys.stderr.write(f"{health}\n")
    station = selected_site(config)
    calendar = station_calendar(station)
    rows = latest_sessions(
        station, args.limit, running_only=args.active, include_refused=args.refused
    )
    if not rows:
        _out("No sessions.")
    for tx in rows:
        started = calendar.to_local(tx.started_at)
        stopped = _stop_time(started, calendar.to_local(tx.stopped_at)) if tx.stopped_at else "…"
        energy = _energy_or_state(tx)
        cost = format_money(tx.price_total, station.currency) if tx.price_total else "-"
        _out(
            f"#{tx.id:<6} {tx.charge_point.ident} #{tx.connector_number}"
            f"  {started:%Y-%m-%d %H:%M}-{stopped}  {tx.id_tag:<12} {energy:>12}  {cost}"
            + (f"  ({tx.stop_reason})" if tx.stop_reason else "")
            + (f"  (refused: {tx.refusal})" if tx.refusal else _quote(tx, station.currency))
            + (f"  REVIEW: {tx.review}" if tx.review else "")
        )
    return 0


def _stop_time(started: datetime, stopped: datetime) -> str:
    """The stop's time, with its date when it is not on the start's day."""
    return f"{stopped:%H:%M}" if stopped.date() == started.date() else f"{stopped:%Y-%m-%d %H:%M}"


def _energy_or_state(tx: ChargingTransaction) -> str:
    if tx.energy_kwh is not None:
        return f"{tx.energy_kwh:.3f} kWh"
    if tx.state == TransactionState.REFUSED:
        return "refused"
    if tx.state == TransactionState.ACTIVE:
        return "running"
    return "fixed part only" if tx.price_total else "not billed"


def _quote(tx: ChargingTransaction, currency: str) -> str:
    """The booking's quote beside the outcome, and why they differ."""
    if tx.booking_id is None:
        return "  (no booking)"
    booking = tx.booking
    text = f"  booked {booking.energy_kwh:.2f} kWh {format_money(booking.price_total, currency)}"
    if tx.energy_kwh is not None and tx.price_total is not None:
        reason = outcome_reason(
            booking.energy_kwh, booking.price_total, tx.energy_kwh, tx.price_total
        )
        text += f": {reason}" if reason else ": as quoted"
    return text


# -- sites ---------------------------------------------------------------------------


def _operators(args: argparse.Namespace, config: AppConfig) -> int:
    action = args.operators_action
    if action == "list":
        people = operators.list_operators()
        if not people:
            _out("No operators.")
        for person in people:
            where = person.site.name if person.site_id is not None else "every site"
            locked = operators.seconds_locked(person.name, utcnow())
            _out(f"{person.name:<20} {person.role:<10} {where}{'  (locked)' if locked else ''}")
        return 0
    if action == "remove":
        operators.remove_operator(args.name)
        _out(f"Removed {args.name}; they can no longer sign in.")
        return 0
    if action == "set":
        site = find_station(args.operator_site) if args.operator_site else None
        person = operators.change_operator(
            args.name, role=args.role, site=site, every_site=args.every_site
        )
        where = f"site {person.site.name!r}" if person.site_id is not None else "every site"
        _out(f"{person.name} is now {person.role} at {where}.")
        return 0
    args.ident = args.name  # for the password prompt
    password = _password(args)
    if not password:
        raise CommandError("Give the operator's password with --password.")
    if action == "passwd":
        operators.set_password(args.name, password)
        _out(f"New password set for {args.name}; any sign-in lock is lifted.")
        return 0
    named = args.operator_site or config.site
    site = find_station(named) if named else None
    operators.add_operator(args.name, args.role, password, site)
    where = f"site {site.name!r}" if site is not None else "every site"
    _out(f"Added {args.role} {args.name} at {where}; they sign in with that password.")
    return 0


def _sites(args: argparse.Namespace, config: AppConfig) -> int:
    if args.sites_action == "add":
        site = add_station(
            args.name,
            timezone=args.timezone,
            currency=args.currency,
            energy_price=args.energy_price,
            site_power_limit_kw=args.power_limit,
        )
        _out(f"Added site {site.name!r} ({site.timezone}); choose it with --site {site.name!r}.")
        return 0
    if args.sites_action == "set":
        return _site_set(args)
    if args.sites_action == "rename":
        site = find_station(args.name)
        old = site.name
        site = rename_station(site, args.new_name)
        _out(f"Site {old!r} is now {site.name!r}; choose it with --site {site.name!r}.")
        return 0
    if args.sites_action == "remove":
        site = find_station(args.name)
        remove_station(site, utcnow())
        _out(f"Removed site {site.name!r}.")
        return 0
    for site in list_stations():
        chargers = charger_count(site)
        limit = f"{site.site_power_limit_kw} kW" if site.site_power_limit_kw else "no limit"
        _out(
            f"{site.id:<4} {site.name:<30} {site.timezone:<20} {site.energy_price}"
            f" {site.currency}/kWh  {chargers} charger(s)  {limit}"
            + ("  continues past booked energy" if site.continue_past_booked_energy else "")
        )
    return 0


def _site_set(args: argparse.Namespace) -> int:
    if args.past_booked_energy is None and args.kiosk_pin is None:
        raise CommandError("Say what to set: --past-booked-energy or --kiosk-pin.")
    site = find_station(args.name)
    pin = None
    if args.kiosk_pin is not None:
        pin = _secret(args.kiosk_pin, f"Kiosk PIN of {site.name}: ", "--kiosk-pin")
        if (error := pin_error(pin)) is not None:
            raise CommandError(error)
    if args.past_booked_energy is not None:
        keep_going = args.past_booked_energy == "continue"
        set_continue_past_booked_energy(site, keep_going)
        what = (
            "continue past their booked energy, the extra billed"
            if keep_going
            else "stop at their booked energy"
        )
        _out(f"{site.name}: booked sessions {what}.")
    if pin is not None:
        set_kiosk_pin(site.id, pin)
        _out(f"Kiosk PIN of {site.name} set.")
    return 0


# -- registration --------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `chargers`, `book`, `bookings` and `sessions` to the command line."""
    chargers = subparsers.add_parser(
        "chargers", help="list, add, approve, remove or unlock chargers"
    )
    chargers.set_defaults(
        handler=_guarded(_chargers, lambda a: a.chargers_action in (None, "list")),
        chargers_action="list",
    )
    actions = chargers.add_subparsers(dest="chargers_action", metavar="ACTION")
    actions.add_parser("list", help="list the chargers")
    password_help = (
        "Basic-auth password (16 to 40 characters); '-' reads it from stdin, 'prompt' asks for it"
    )
    add = actions.add_parser("add", help="register a charger")
    add.add_argument("ident", help="its charge point id")
    add.add_argument("--password", help=password_help)
    add.add_argument(
        "--connectors",
        type=whole_number(1, charger_admin.MAX_CONNECTORS),
        default=2,
        help=f"number of connectors, 1 to {charger_admin.MAX_CONNECTORS} (2)",
    )
    add.add_argument(
        "--max-power",
        default="22",
        help=f"kW per connector, {MIN_CONNECTOR_KW} to {MAX_CONNECTOR_KW} (22)",
    )
    passwd = actions.add_parser("passwd", help="set a charger's password")
    passwd.add_argument("ident", help="its charge point id")
    passwd.add_argument("--password", required=True, help=password_help)
    approve = actions.add_parser("approve", help="approve a Pending charger")
    approve.add_argument("ident", help="its charge point id")
    approve.add_argument(
        "--connectors",
        type=whole_number(1, charger_admin.MAX_CONNECTORS),
        default=2,
        help="connectors to create for it (2)",
    )
    remove = actions.add_parser("remove", help="refuse a charger from now on")
    remove.add_argument("ident", help="its charge point id")
    unlock = actions.add_parser(
        "unlock", help="lift a charger's lockout after repeated wrong passwords"
    )
    unlock.add_argument("ident", help="its charge point id")
    reading = actions.add_parser("set", help="how a charger's frames are read")
    reading.add_argument("ident", help="its charge point id")
    reading.add_argument(
        "--strict",
        choices=list(_STRICTNESS),
        help="on: refuse quirks, off: tolerate and record them, default: as the system does",
    )
    reading.add_argument(
        "--timezone",
        metavar="ZONE",
        help="time zone of its times without an offset (e.g. Europe/Paris; 'station': the"
        " station's)",
    )

    sites = subparsers.add_parser("sites", help="list or add the sites in this database")
    sites.set_defaults(
        handler=_guarded(
            _sites,
            lambda a: a.sites_action in (None, "list"),
            makes_first_site=lambda a: a.sites_action == "add",
        ),
        sites_action="list",
    )
    site_actions = sites.add_subparsers(dest="sites_action", metavar="ACTION")
    site_actions.add_parser("list", help="list the sites")
    site_add = site_actions.add_parser("add", help="add a site with its own tariff and zone")
    site_add.add_argument("name", help="its name, unique (what --site says)")
    site_add.add_argument("--timezone", default="Europe/London", help="(Europe/London)")
    site_add.add_argument(
        "--currency", default="GBP", help="three letters, either case (GBP, eur); stored upper-case"
    )
    site_add.add_argument("--energy-price", help="per kWh (the default tariff's 0.50)")
    site_add.add_argument("--power-limit", help="site power limit, kW (none)")
    site_set = site_actions.add_parser("set", help="change a site's setting")
    site_set.add_argument("name", help="the site's name")
    site_set.add_argument(
        "--past-booked-energy",
        choices=["stop", "continue"],
        help="at a booking's energy: stop the session (the default), or continue and bill"
        " the extra",
    )
    site_set.add_argument(
        "--kiosk-pin",
        metavar="PIN",
        help="the PIN that leaves the site's kiosk, 4 to 12 digits; '-' reads it from stdin,"
        " 'prompt' asks",
    )
    site_rename = site_actions.add_parser("rename", help="give a site another name")
    site_rename.add_argument("name", help="the site's name now")
    site_rename.add_argument("new_name", metavar="NEW_NAME", help="its new name, unique")
    site_remove = site_actions.add_parser(
        "remove", help="remove a site without chargers, bookings to come or sessions"
    )
    site_remove.add_argument("name", help="the site's name")

    people = subparsers.add_parser(
        "operators", help="the people who sign in at consoles: add, list, set, passwd, remove"
    )
    people.set_defaults(handler=_guarded(_operators), operators_action="add")
    people_actions = people.add_subparsers(dest="operators_action", metavar="ACTION", required=True)
    person = people_actions.add_parser("add", help="add an attendant or an operator")
    person.add_argument("name", help="1 to 40 letters, digits, . _ @ -")
    person.add_argument("--role", choices=["attendant", "operator"], required=True)
    person.add_argument(
        "--site",
        dest="operator_site",
        help="the one site they work at, by name (an attendant needs one; an operator"
        " without one works at every site)",
    )
    person.add_argument(
        "--password",
        required=True,
        help="8 or more characters; '-' reads it from stdin, 'prompt' asks",
    )
    people_actions.add_parser("list", help="everyone who signs in: role, site, lock")
    change = people_actions.add_parser("set", help="change someone's role or site")
    change.add_argument("name")
    change.add_argument("--role", choices=["attendant", "operator"])
    where = change.add_mutually_exclusive_group()
    where.add_argument("--site", dest="operator_site", help="the one site they work at")
    where.add_argument(
        "--every-site", action="store_true", help="an operator: no site of their own"
    )
    gone = people_actions.add_parser("remove", help="remove someone: they no longer sign in")
    gone.add_argument("name")
    passwd = people_actions.add_parser("passwd", help="set someone's password (lifts a lock)")
    passwd.add_argument("name")
    passwd.add_argument(
        "--password",
        required=True,
        help="8 or more characters; '-' reads it from stdin, 'prompt' asks",
    )

    book = subparsers.add_parser("book", help="plan and book a charging slot")
    book.set_defaults(handler=_guarded(_book, lambda a: a.dry_run))
    book.add_argument("--date", required=True, help="day of arrival, YYYY-MM-DD (local)")
    book.add_argument("--arrival", required=True, help="arrival time, HH:MM (local)")
    book.add_argument(
        "--earliest",
        metavar="HH:MM",
        help="the earliest start the driver accepts for an Eco plan (local; by default"
        " Eco plans never start before the arrival)",
    )
    book.add_argument(
        "--duration",
        type=whole_number(1, MAX_SESSION // timedelta(minutes=1)),
        required=True,
        help="minutes",
    )
    book.add_argument("--energy", help="energy wanted, kWh")
    book.add_argument("--power", help="charging power, kW")
    book.add_argument(
        "--plan",
        choices=["cheapest", "1", "2", "3", "4"],
        default="cheapest",
        help="which plan to book (cheapest)",
    )
    book.add_argument("--dry-run", action="store_true", help="show the plans and book nothing")

    bookings = subparsers.add_parser("bookings", help="list bookings")
    bookings.set_defaults(handler=_guarded(_bookings, _always))
    bookings.add_argument("--date", help="first day, YYYY-MM-DD (today)")
    bookings.add_argument(
        "--days", type=whole_number(1, 3660), default=7, help="number of days (7)"
    )

    sessions = subparsers.add_parser("sessions", help="list charging sessions")
    sessions.set_defaults(handler=_guarded(_sessions, _always))
    sessions.add_argument(
        "--limit", type=whole_number(1, 100_000), default=50, help="at most this many (50)"
    )
    sessions.add_argument("--active", action="store_true", help="only running sessions")
    sessions.add_argument(
        "--refused", action="store_true", help="also the starts that were refused"
    )
