"""The chargers' Heartbeats on a PostgreSQL node while another session holds a table the
node reads for itself (`node`: its leadership round; `booking`: its timers) locked with
`LOCK TABLE ... IN ACCESS EXCLUSIVE MODE`, which makes every read of it wait.

A real central system on 127.0.0.1 (in this process, chargers too); `-n` chargers send a
Heartbeat, then wait `--interval` seconds, during `--hold` seconds of the lock and one
second after. Prints the Heartbeats answered, their round trip (median, p99, max) and the
longest time in which no Heartbeat at all was answered: on one event loop a frozen loop
shows as either (a charger's coroutine is frozen with it), per round and as medians.

    python benchmarks/locked_registry.py -n 20 --hold 5 --rounds 3 --table node

PostgreSQL is a throw-away server started from the installed binaries (as the tests do).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from evcms_desktop.csms.server import CentralSystem, CsmsConfig  # noqa: E402
from evcms_desktop.simulator.chargebox import ChargeBox  # noqa: E402
from evcms_desktop.store.database import open_database  # noqa: E402
from evcms_desktop.store.models import ChargePoint, Connector, Station  # noqa: E402
from tests.postgres import PostgresServer, find_bindir  # noqa: E402


def _hold(url: str, table: str, seconds: float) -> None:
    with psycopg.connect(url) as connection:
        connection.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        time.sleep(seconds)
        connection.rollback()


async def one_round(url: str, args: argparse.Namespace) -> tuple[int, float, float, float, float]:
    db = open_database(url, station_name="Bench")
    station = Station.get()
    for i in range(args.n):
        cp = ChargePoint.create(ident=f"CP-{i}", station=station)
        Connector.create(charge_point=cp, number=1)
    config = CsmsConfig(
        data_dir=Path(tempfile.mkdtemp()),
        port=0,
        tick_seconds=0.5,
        probe_features=False,
        node="bench",
        node_heartbeat_seconds=1.0,
        node_expiry=timedelta(seconds=30),
    )
    cs = CentralSystem(config, db)
    await cs.start()
    boxes = [ChargeBox(f"CP-{i}", cs.url()) for i in range(args.n)]
    for box in boxes:
        await box.connect()
        await box.boot()
    await asyncio.sleep(2)  # a leadership round or two before the lock
    trips: list[float] = []
    answered: list[float] = []
    end = time.monotonic() + args.hold + 1

    async def beat(box: ChargeBox) -> None:
        while time.monotonic() < end:
            sent = time.monotonic()
            await box.heartbeat()
            answered.append(time.monotonic())
            trips.append(answered[-1] - sent)
            await asyncio.sleep(args.interval)

    threading.Thread(target=_hold, args=(url, args.table, args.hold), daemon=True).start()
    await asyncio.gather(*(beat(box) for box in boxes))
    for box in boxes:
        await box.close()
    await cs.stop()
    db.close()
    trips.sort()
    answered.sort()
    gap = max(later - earlier for earlier, later in itertools.pairwise(answered))
    p99 = trips[min(len(trips) - 1, int(len(trips) * 0.99))]
    return len(trips), statistics.median(trips) * 1e3, p99 * 1e3, trips[-1] * 1e3, gap * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20, help="chargers")
    parser.add_argument("--hold", type=float, default=5.0, help="seconds the lock is held")
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between beats")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--table", choices=("node", "booking"), default="node")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    bindir = find_bindir()
    if bindir is None:
        sys.exit("PostgreSQL's binaries are not installed")
    server = PostgresServer(bindir)
    server.start()
    rows = []
    try:
        for number in range(1, args.rounds + 1):
            row = asyncio.run(one_round(server.create_database(), args))
            rows.append(row)
            print(
                f"round {number}: {row[0]} Heartbeats answered during the {args.hold:.0f} s lock"
                f" of {args.table} and 1 s after; round trip median {row[1]:.1f} ms,"
                f" p99 {row[2]:.1f} ms, max {row[3]:.0f} ms; longest without an answer"
                f" {row[4]:.0f} ms"
            )
    finally:
        server.stop()
    medians = [statistics.median(column) for column in zip(*rows, strict=True)]
    print(
        f"medians: {medians[0]:.0f} answered, round trip {medians[1]:.1f} ms median,"
        f" p99 {medians[2]:.1f} ms, max {medians[3]:.0f} ms, longest without an answer"
        f" {medians[4]:.0f} ms; load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}"
    )


if __name__ == "__main__":
    main()
