"""`evcms-desktop send CHARGER ACTION [field=value ...]`: a command to a charger through
the central system running on the same database (console or headless).

The command goes into the database's command queue; the central system that holds the
charger's connection sends it and writes the answer back. The answer is printed as JSON;
the exit status is 0 when the charger did what was asked, 1 when it refused, was offline,
or no central system took the command (said in one line on stderr).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from typing import Any

from ocpp.messages import MessageType

from evcms_desktop.app.admin_commands import CommandError, _always
from evcms_desktop.app.admin_commands import _guarded as guarded
from evcms_desktop.app.config import AppConfig, selected_site
from evcms_desktop.csms import charger_admin
from evcms_desktop.csms.command_queue import CSMS_ACTIONS, CommandPayloadError, build_call
from evcms_desktop.csms.commands import OK_STATUSES
from evcms_desktop.csms.events import EventKind
from evcms_desktop.csms.protocol import schema_validator
from evcms_desktop.store import command_queue, operators
from evcms_desktop.store.models import ChargePoint, ChargePointState, CommandState, utcnow
from evcms_desktop.store.notices import recent_events

POLL_SECONDS = 0.1
FOLLOW_POLL_SECONDS = 0.5
FOLLOWED = frozenset({"UpdateFirmware", "GetDiagnostics"})
TRANSFER_KINDS = [
    EventKind.FIRMWARE_STATUS.value,
    EventKind.DIAGNOSTICS_STATUS.value,
    EventKind.TRANSFER_FINISHED.value,
]
ARGUMENT_MAX = 10_000
ANSWER_GRACE = 60.0  # seconds more once a central system has claimed the command


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 3600:  # also refuses nan and inf
        raise argparse.ArgumentTypeError("give more than 0 and at most 3600 seconds")
    return value


def _field_types(action: str) -> dict[str, Any]:
    validator = schema_validator(MessageType.Call, action)
    return {} if validator is None else validator.schema.get("properties", {})


def parse_fields(action: str, fields: list[str]) -> dict[str, Any]:
    """`name=value` pairs as a payload: text for the schema's string fields, JSON for the
    rest (numbers, lists, objects)."""
    if action not in CSMS_ACTIONS:
        raise CommandError(
            f"{action!r} is not a 1.6 message to a charger; one of: {', '.join(CSMS_ACTIONS)}"
        )
    known = _field_types(action)
    payload: dict[str, Any] = {}
    for item in fields:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise CommandError(f"{item!r}: give fields as name=value.")
        if len(text) > ARGUMENT_MAX:
            raise CommandError(f"{name}: the value is over {ARGUMENT_MAX} characters.")
        if name not in known:
            raise CommandError(
                f"{action} has no field {name!r}; its fields: {', '.join(known) or 'none'}"
            )
        if name in payload:  # never guess which of two values was meant (Reset type=...)
            raise CommandError(f"{name} is given twice; give each field once.")
        if known[name].get("type") == "string":
            payload[name] = text
            continue
        try:
            payload[name] = json.loads(text)
        except ValueError:
            raise CommandError(f"{name}={text!r} is not a JSON value.") from None
    return payload


def _send(args: argparse.Namespace, config: AppConfig) -> int:
    payload = parse_fields(args.action, args.fields)
    try:
        build_call(args.action, payload)
    except CommandPayloadError as exc:
        raise CommandError(f"{args.action}: {exc}") from None
    cp = ChargePoint.get_or_none(ChargePoint.ident == args.charger)
    if cp is None or cp.state == ChargePointState.REMOVED:
        raise CommandError(f"No charger has the id {args.charger!r}.")
    if config.site:
        charger_admin.check_site(args.charger, selected_site(config))
    latest = recent_events(TRANSFER_KINDS, limit=1)
    baseline = latest[0].id if latest else 0
    operator = _signed_in(args)
    command_id = command_queue.enqueue(
        args.charger, args.action, payload, _user(), operator=operator
    )
    deadline = time.monotonic() + args.timeout
    claimed = False
    while (outcome := command_queue.outcome(command_id)) is None:
        if time.monotonic() > deadline:
            if claimed:
                raise CommandError(
                    f"A central system took the command but recorded no answer in"
                    f" {args.timeout + ANSWER_GRACE:g} s."
                )
            if command_queue.withdraw(command_id, "nobody took it in time", utcnow()):
                raise CommandError(
                    f"No central system took the command in {args.timeout:g} s"
                    " (is one running on this database?)."
                )
            claimed = True  # taken meanwhile: the charger's answer is on its way
            deadline += ANSWER_GRACE
        time.sleep(POLL_SECONDS)
    if outcome.state == CommandState.DONE and outcome.result is not None:
        sys.stdout.write(json.dumps(outcome.result, indent=2, sort_keys=True) + "\n")
    if outcome.state == CommandState.DONE and outcome.status in OK_STATUSES:
        if args.follow is not None and args.action in FOLLOWED:
            return _follow(args.charger, baseline, args.follow)
        return 0
    raise CommandError(outcome.detail or f"{args.charger} answered {outcome.status}")


def _follow(ident: str, after_id: int, seconds: float) -> int:
    """Print the transfer's steps as the central system records them, until it ends."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for event in reversed(recent_events(TRANSFER_KINDS, after_id=after_id)):
            after_id = max(after_id, event.id)
            if event.charge_point != ident:
                continue
            sys.stdout.write(f"{event.timestamp:%H:%M:%S} {event.message}\n")
            sys.stdout.flush()
            if event.kind == EventKind.TRANSFER_FINISHED:
                if (event.data or {}).get("ok"):
                    return 0
                raise CommandError(event.message)
        time.sleep(FOLLOW_POLL_SECONDS)
    raise CommandError(f"The transfer had not ended after {seconds:g} s.")


def _signed_in(args: argparse.Namespace) -> str | None:
    """The operator named by --as, once their password is checked; the node that sends
    the command checks their role again. Without --as: None, only on a database that has
    no operators."""
    if args.operator is None:
        if operators.any_operator():
            raise CommandError(
                "This database has operators: sign in with --as NAME (--password - reads"
                " the password from stdin)."
            )
        return None  # a station PC's file without operators: its command line is trusted
    if args.password == "-":
        password = sys.stdin.readline().rstrip("\n")
    elif sys.stdin.isatty():
        password = getpass.getpass(f"Password of {args.operator}: ")
    else:
        raise CommandError("--as needs a terminal for the password, or --password - (stdin)")
    try:
        role = operators.sign_in(args.operator, password)
    except operators.SignInLocked as exc:
        raise CommandError(str(exc)) from None
    if role is None:
        raise CommandError(f"Wrong name or password for {args.operator!r}.")
    return str(args.operator)


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    send = subparsers.add_parser(
        "send",
        help="send an OCPP command to a charger through the running central system",
        description="Send an OCPP 1.6 command to a charger through the central system"
        " running on this database, and print the charger's answer as JSON. Fields are"
        " name=value in the message's camelCase names; strings as they are, other values"
        " as JSON (key='[\"HeartbeatInterval\"]'). location=evcms:firmware/FILE"
        " (UpdateFirmware) and location=evcms:diagnostics (GetDiagnostics) stand for the"
        " central system's own HTTP(S) server.",
    )
    send.set_defaults(handler=guarded(_send, _always))
    send.add_argument("charger", metavar="CHARGER", help="its charge point id")
    send.add_argument("action", metavar="ACTION", help=", ".join(CSMS_ACTIONS))
    send.add_argument("fields", nargs="*", metavar="field=value", help="the message's fields")
    send.add_argument(
        "--as", dest="operator", metavar="NAME", help="sign in as this operator (see operators)"
    )
    send.add_argument(
        "--password", choices=["-"], help="with --as: '-' reads the password from stdin"
    )
    send.add_argument(
        "--timeout",
        type=_timeout,
        default=40.0,
        help="seconds to wait for a central system to take the command (40)",
    )
    send.add_argument(
        "--follow",
        type=_timeout,
        metavar="S",
        help="UpdateFirmware, GetDiagnostics: print the transfer's steps until it ends"
        " (exit 0: installed or stored), for at most S seconds",
    )
