"""`evcms-chargebox`: one or many simulated charge points against a central system."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import ssl
from collections.abc import Mapping, Sequence
from pathlib import Path

from websockets.exceptions import InvalidStatus

from evcms_desktop.csms.protocol import websocket_url
from evcms_desktop.simulator.chargebox import ChargeBox

log = logging.getLogger("evcms_desktop.simulator")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evcms-chargebox",
        description="Simulated OCPP 1.6J charge points: boot, authorize with a booking ID,"
        " charge a battery model, send meter values, stop, and answer the central system.",
    )
    parser.add_argument(
        "--url",
        default=websocket_url(),
        help=f"central system endpoint without the charge point id ({websocket_url()})",
    )
    parser.add_argument("--id", default="CP-1", help="charge point id (CP-1)")
    parser.add_argument(
        "--count",
        type=int,
        default=1,
        help="run this many chargers, named ID-1, ID-2, ... (1: just ID)",
    )
    parser.add_argument("--password", help="Basic-auth password (security profiles 1 and 2)")
    parser.add_argument("--ca", type=Path, help="CA certificate to trust for wss:// (PEM)")
    parser.add_argument(
        "--insecure", action="store_true", help="do not verify the server certificate (lab only)"
    )
    parser.add_argument("--connectors", type=int, default=2, help="connectors per charger (2)")
    parser.add_argument("--booking", help="booking ID to authorize and charge with")
    parser.add_argument("--connector", type=int, default=1, help="connector to charge on (1)")
    parser.add_argument(
        "--interval", type=float, default=10.0, help="seconds between meter values (10)"
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="simulated charging seconds per real second (1; 60 makes a minute a second)",
    )
    parser.add_argument(
        "--duration", type=float, help="stop charging and exit after this many seconds"
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"], help="(INFO)"
    )
    return parser


def _ssl_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    if not args.url.startswith("wss://"):
        return None
    context = ssl.create_default_context(cafile=str(args.ca) if args.ca else None)
    if args.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


RECONNECT_FIRST_SECONDS = 1.0
RECONNECT_MAX_SECONDS = 60.0


async def _heartbeats(box: ChargeBox) -> None:
    while True:
        await asyncio.sleep(int(box.configuration["HeartbeatInterval"][0]))
        with contextlib.suppress(ConnectionError, TimeoutError):
            await box.heartbeat()


async def bring_up(box: ChargeBox) -> None:
    """Connect, boot, and report each connector as it is (a reconnect mid-session says
    Charging, not Available)."""
    await box.connect()
    status = await box.boot()
    if status != "Accepted":
        log.warning("%s: BootNotification %s", box.id, status)
    for number, connector in box.connectors.items():
        await box.status(number, connector.status)


async def _stay_connected(box: ChargeBox) -> None:
    """As a real charger does: when the link drops (the central system restarted, the
    network failed), reconnect after a delay that doubles up to a bound, boot again and send
    what was queued meanwhile."""
    delay = RECONNECT_FIRST_SECONDS
    while True:
        await box.wait_disconnected()
        await asyncio.sleep(delay)
        try:
            await bring_up(box)
        except Exception as exc:  # whatever went wrong, a charger tries again later
            delay = min(delay * 2, RECONNECT_MAX_SECONDS)
            box.say(f"reconnecting in {delay:.0f} s: {describe_failure(exc)}")
        else:
            delay = RECONNECT_FIRST_SECONDS


async def _run_one(box: ChargeBox, args: argparse.Namespace) -> None:
    box.spawn(_heartbeats(box))
    await bring_up(box)
    if args.booking:
        tx_id, status = await box.charge(args.booking, args.connector)
        log.info("%s: charging with %s: %s (transaction %s)", box.id, args.booking, status, tx_id)


async def run_fleet(args: argparse.Namespace) -> int:
    names = [args.id] if args.count == 1 else [f"{args.id}-{i}" for i in range(1, args.count + 1)]
    context = _ssl_context(args)
    boxes = [
        ChargeBox(
            name,
            args.url,
            password=args.password,
            ssl_context=context,
            connectors=args.connectors,
            meter_interval=args.interval,
            time_scale=args.time_scale,
            on_log=lambda text, name=name: log.info("%s: %s", name, text),
        )
        for name in names
    ]
    outcomes = await asyncio.gather(*(_run_one(b, args) for b in boxes), return_exceptions=True)
    failed = [(b.id, o) for b, o in zip(boxes, outcomes, strict=True) if o is not None]
    reasons: dict[str, list[str]] = {}
    for name, exc in failed:
        reasons.setdefault(describe_failure(exc), []).append(name)
    for reason, names in reasons.items():
        who = names[0] if len(names) == 1 else f"{len(names)} chargers ({names[0]} …)"
        log.error("%s could not start: %s", who, reason)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    # A charger the central system refused (HTTP 401, 404) stays down; one whose link failed
    # keeps trying, as real chargers do.
    retrying = [b for b, o in zip(boxes, outcomes, strict=True) if not isinstance(o, InvalidStatus)]
    keepers = [asyncio.create_task(_stay_connected(b)) for b in retrying]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), args.duration)
    for keeper in keepers:
        keeper.cancel()
    await asyncio.gather(*keepers, return_exceptions=True)
    for box in boxes:
        for tx_id in list(box.transactions):
            with contextlib.suppress(ConnectionError, TimeoutError):
                await box.stop_transaction(tx_id, "Local")
        await box.close()
    return 1 if len(failed) == len(boxes) else 0


HTTP_HINTS = {
    404: "unknown charger (add it with `evcms-desktop chargers add ID`, or let the server"
    " take unknown chargers as Pending with --accept-unknown)",
    401: "wrong or missing password (--password)",
}


def describe_failure(exc: BaseException, hints: Mapping[int, str] = HTTP_HINTS) -> str:
    """Why a charger could not start, in words: an HTTP refusal says what to do about it."""
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        return f"HTTP {status}: {hints.get(status, exc.response.reason_phrase)}"
    return str(exc) or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(message)s")
    try:
        return asyncio.run(run_fleet(args))
    except KeyboardInterrupt:
        return 130
