"""The chargers' round trips while another process holds the store's write lock.

A real central system on 127.0.0.1 (in this process); `-n` chargers send a Heartbeat every
`--interval` seconds and `--meters` send MeterValues at random moments, while another
process holds the write lock for `--hold` seconds (SQLite: `BEGIN IMMEDIATE`; PostgreSQL:
`LOCK TABLE ... IN EXCLUSIVE MODE` on the tables the central system writes, which lets
reads through as SQLite's WAL does). Prints, per engine and round: the others' Heartbeat
round trip p50/p99 during the hold, and how long a MeterValues waited for its
InternalError (median, max); then the medians over the rounds and the load average.

    python benchmarks/store_faults.py -n 20 --hold 10 --rounds 3

PostgreSQL is a throw-away server started from the installed binaries (as the tests do),
skipped when they are not installed. Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.csms_load import prepare_database  # noqa: E402
from evcms_desktop.csms.server import CentralSystem, CsmsConfig  # noqa: E402
from tests.hostile.helpers import RawCharger  # noqa: E402
from tests.postgres import PostgresServer, find_bindir  # noqa: E402

WRITTEN_TABLES = (
    "charge_point, connector, charging_transaction, meter_value, event, charger_deviation"
)
# The other process: takes the write lock, says so, holds it, lets go.
HOLDER = """
import sys, time
target, hold, tables = sys.argv[1], float(sys.argv[2]), sys.argv[3]
if target.startswith("postgresql://"):
    import psycopg
    with psycopg.connect(target) as other:
        other.execute(f"LOCK TABLE {tables} IN EXCLUSIVE MODE")
        print("locked", flush=True)
        time.sleep(hold)
else:
    import sqlite3
    other = sqlite3.connect(target, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    print("locked", flush=True)
    time.sleep(hold)
    other.execute("COMMIT")
print("released", flush=True)
"""


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _meter_values(value: str) -> dict[str, Any]:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {
        "connectorId": 1,
        "meterValue": [{"timestamp": stamp, "sampledValue": [{"value": value}]}],
    }


async def _heartbeats(
    charger: RawCharger, interval: float, held: asyncio.Event, rtts: list, done: asyncio.Event
) -> None:
    while not done.is_set():
        t0 = time.perf_counter()
        answer = await charger.call("Heartbeat", {})
        if held.is_set() and answer[0] == 3:
            rtts.append(time.perf_counter() - t0)
        await asyncio.sleep(interval)


async def _meter(
    charger: RawCharger, held: asyncio.Event, waits: list, done: asyncio.Event
) -> None:
    seq = 0
    while not done.is_set():
        seq += 1
        t0 = time.perf_counter()
        answer = await charger.call("MeterValues", _meter_values(str(seq)))
        if held.is_set() and answer[0] == 4 and answer[2] == "InternalError":
            waits.append(time.perf_counter() - t0)
        # At any moment of the writer's rounds: right after an answer is just after a round.
        await asyncio.sleep(random.uniform(0.05, 2.5))


async def one_round(
    target: str, n: int, meters: int, interval: float, hold: float
) -> dict[str, float]:
    data_dir = Path(tempfile.mkdtemp(prefix="evcms-bench-faults-"))
    db = prepare_database(target, n + meters)
    config = CsmsConfig(data_dir=data_dir, port=0, probe_features=False, ping_interval=None)
    cs = CentralSystem(config, db)
    rtts: list[float] = []
    waits: list[float] = []
    held, done = asyncio.Event(), asyncio.Event()
    await cs.start()
    try:
        chargers = [await RawCharger.connect(cs, f"BENCH-{i}") for i in range(n + meters)]
        for charger in chargers:
            await charger.boot()
        tasks = [
            asyncio.create_task(_heartbeats(c, interval, held, rtts, done))
            for c in chargers[meters:]
        ]
        tasks += [asyncio.create_task(_meter(c, held, waits, done)) for c in chargers[:meters]]
        await asyncio.sleep(1.0)  # in step before the lock
        holder = await asyncio.create_subprocess_exec(
            sys.executable, "-c", HOLDER, target, str(hold), WRITTEN_TABLES, stdout=subprocess.PIPE
        )
        assert holder.stdout is not None
        assert (await holder.stdout.readline()).strip() == b"locked"
        held.set()
        await holder.stdout.readline()  # released
        held.clear()
        await holder.wait()
        # Told to end, not cancelled: Python 3.11's wait_for can swallow a cancellation.
        done.set()
        await asyncio.gather(*tasks)
        for charger in chargers:
            await charger.close()
    finally:
        await cs.stop()
        db.close()
    return {
        "heartbeats": len(rtts),
        "p50_ms": percentile(rtts, 0.50) * 1000,
        "p99_ms": percentile(rtts, 0.99) * 1000,
        "internal_errors": len(waits),
        "error_median_s": statistics.median(waits) if waits else float("nan"),
        "error_max_s": max(waits, default=float("nan")),
    }


def _load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=20, help="chargers sending Heartbeats")
    parser.add_argument("--meters", type=int, default=5, help="chargers sending MeterValues")
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between beats")
    parser.add_argument("--hold", type=float, default=10.0, help="seconds the lock is held")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--engines", default="sqlite,postgresql", help="which, comma-separated")
    parser.add_argument("--json", action="store_true", help="one JSON line per round too")
    args = parser.parse_args()
    logging.basicConfig(level=logging.CRITICAL)  # the store's trouble is expected here
    print(
        f"{args.n} chargers' Heartbeats every {args.interval} s, {args.meters} chargers'"
        f" MeterValues at random moments; the lock held {args.hold} s"
    )
    print(f"load average before: {_load_average()}")
    wanted = set(args.engines.split(","))
    engines: list[tuple[str, Any]] = [("sqlite", None)] if "sqlite" in wanted else []
    server: PostgresServer | None = None
    bindir = find_bindir() if "postgresql" in wanted else None
    if bindir is not None:
        server = PostgresServer(bindir)
        server.start()
        engines.append(("postgresql", server))
    elif "postgresql" in wanted:
        print("PostgreSQL's binaries are not installed: not measured on it")
    header = f"{'engine':<11} {'round':>5} {'beats':>6} {'p50 ms':>8} {'p99 ms':>8}"
    print(header + f" {'errors':>6} {'error median s':>14} {'error max s':>11}")
    try:
        for engine, pg in engines:
            results = []
            for round_no in range(1, args.rounds + 1):
                with tempfile.TemporaryDirectory(prefix="evcms-bench-faults-") as tmp:
                    target = pg.create_database() if pg else str(Path(tmp) / "bench.sqlite3")
                    result = asyncio.run(
                        one_round(target, args.n, args.meters, args.interval, args.hold)
                    )
                    if pg:
                        pg.drop_database(target)
                results.append(result)
                _row(engine, str(round_no), result)
                if args.json:
                    print(json.dumps({"engine": engine, "round": round_no, **result}))
            median = {k: statistics.median(r[k] for r in results) for k in results[0]}
            _row(engine, "median", median)
    finally:
        if server is not None:
            server.stop()
    print(f"load average after: {_load_average()}")


def _row(engine: str, label: str, r: dict[str, float]) -> None:
    print(
        f"{engine:<11} {label:>5} {r['heartbeats']:>6.0f} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f}"
        f" {r['internal_errors']:>6.0f} {r['error_median_s']:>14.2f} {r['error_max_s']:>11.2f}"
    )


if __name__ == "__main__":
    main()
