"""One node against two on one PostgreSQL, and SQLite against PostgreSQL on one node.

Each node is a real `evcms-desktop --headless` process; the chargers are light raw
WebSocket clients in this process, split round-robin over the nodes (as a balancer
would), each sending MeterValues every `--interval` seconds for `--duration` seconds.
PostgreSQL is a throw-away server started from the installed binaries (as the tests
do). Prints, per setup and round: messages/s answered, round trip p50/p99, the nodes'
CPU, the database's CPU and its share of the total (SQLite runs inside the node: no
share), and the stored rows against the acknowledged samples; then, over the rounds
(`--rounds`, 3), the median of each figure, the ratios of the setups' medians, and the
load average before and after.

    python benchmarks/nodes.py -n 300 --duration 20 --rounds 3

Only 127.0.0.1 is used. Compare the setups of one run with each other (ratios), not
with another machine's figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
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
from evcms_desktop.csms.listener import raise_open_file_limit  # noqa: E402
from evcms_desktop.csms.protocol import websocket_url  # noqa: E402
from tests.postgres import PostgresServer, find_bindir  # noqa: E402

SAMPLES_PER_MESSAGE = 3
TICKS = os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def process_cpu(pid: int) -> float:
    """CPU seconds of a process and its finished children, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return sum(int(f) for f in fields[11:15]) / TICKS  # utime stime cutime cstime


def postgres_cpu(port: int) -> float:
    """CPU seconds of every process of the PostgreSQL server listening on `port`."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (FileNotFoundError, PermissionError):
            continue
        if cmd.startswith("postgres") and (
            f"-p {port} " in cmd or ("postgres:" in cmd and _postgres_child_of(entry, port))
        ):
            total += process_cpu(int(entry.name))
    return total


def _postgres_child_of(entry: Path, port: int) -> bool:
    try:
        parent = int(Path(entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        cmd = Path(f"/proc/{parent}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (FileNotFoundError, PermissionError, ValueError):
        return False
    return f"-p {port} " in cmd


def meter_values(tx_id: int, seq: int) -> dict[str, Any]:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"
    sampled = [
        ("Energy.Active.Import.Register", str(1000 + seq * 61), "Wh"),
        ("Power.Active.Import", "22000", "W"),
        ("SoC", f"{min(20 + seq * 0.1, 100):.1f}", "Percent"),
    ]
    return {
        "connectorId": 1,
        "transactionId": tx_id,
        "meterValue": [
            {
                "timestamp": stamp,
                "sampledValue": [
                    {"value": v, "context": "Sample.Periodic", "measurand": m, "unit": u}
                    for m, v, u in sampled
                ],
            }
        ],
    }


NODE_LOG = Path(tempfile.gettempdir()) / "evcms-bench-nodes.log"  # the nodes' stderr


def start_node(target: str) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "evcms_desktop", "--db", target, "--headless",
         "--host", "127.0.0.1", "--port", "0", "--security-profile", "0", "--log-level", "INFO"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stderr is not None
    for line in process.stderr:
        if match := re.search(r"listening on ws://127\.0\.0\.1:(\d+)/ocpp", line):
            with NODE_LOG.open("a") as log:
                subprocess.Popen(["cat"], stdin=process.stderr, stdout=log)
            return process, int(match.group(1))
    raise RuntimeError("a node did not start")


async def load(ports: list[int], args: argparse.Namespace) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    raise_open_file_limit()
    loop = asyncio.get_running_loop()
    ready = 0
    all_ready = asyncio.Event()
    until: list[float] = []
    rtts: list[float] = []
    acked = 0

    async def call(ws: Any, uid: str, action: str, payload: dict[str, Any]) -> Any:
        await ws.send(json.dumps([2, uid, action, payload], separators=(",", ":")))
        while True:
            message = json.loads(await ws.recv())
            if message[0] != 2:
                return message
            await ws.send(json.dumps([3, message[1], {}]))  # the node's probe after boot

    async def charger(i: int) -> None:
        nonlocal ready, acked
        port = ports[i % len(ports)]
        ws = await connect(
            f"{websocket_url(port=port)}/BENCH-{i}", subprotocols=["ocpp1.6"],
            compression=None, ping_interval=None, open_timeout=120,
        )  # fmt: skip
        await call(ws, "b", "BootNotification", {"chargePointVendor": "B", "chargePointModel": "L"})
        start = await call(ws, "s", "StartTransaction", {
            "connectorId": 1, "idTag": f"BENCH{i}", "meterStart": 1000,
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z",
        })  # fmt: skip
        tx_id = start[2]["transactionId"]
        ready += 1
        if ready == args.n:
            until.append(loop.time() + args.duration)
            all_ready.set()
        await all_ready.wait()
        await asyncio.sleep(random.uniform(0, args.interval))
        next_at, seq = loop.time(), 0
        while loop.time() < until[0]:
            seq += 1
            t0 = time.perf_counter()
            answer = await call(ws, f"m{seq}", "MeterValues", meter_values(tx_id, seq))
            rtts.append((time.perf_counter() - t0) * 1000)
            if answer[0] == 3:
                acked += SAMPLES_PER_MESSAGE
            next_at += args.interval
            await asyncio.sleep(max(0.0, next_at - loop.time()))
        await ws.close()

    await asyncio.gather(*(charger(i) for i in range(args.n)))
    return {"rtts": rtts, "acked": acked}


def run_setup(
    name: str, target: str, nodes: int, args: argparse.Namespace, pg_port: int | None
) -> dict[str, float]:
    prepare_database(target, args.n).close()
    started = [start_node(target) for _ in range(nodes)]
    try:
        cpu0 = [process_cpu(p.pid) for p, _ in started]
        db0 = postgres_cpu(pg_port) if pg_port else 0.0
        t0 = time.monotonic()
        result = asyncio.run(load([port for _, port in started], args))
        elapsed = time.monotonic() - t0
        node_cpu = sum(process_cpu(p.pid) - c for (p, _), c in zip(started, cpu0, strict=True))
        db_cpu = (postgres_cpu(pg_port) - db0) if pg_port else 0.0
    finally:
        for process, _ in started:
            process.terminate()
        for process, _ in started:
            process.wait(30)
    from evcms_desktop.store.database import open_database
    from evcms_desktop.store.models import MeterValue

    db = open_database(target)
    stored = MeterValue.select().count()
    db.close()
    figures = {
        "msg/s": len(result["rtts"]) / args.duration,
        "p50 ms": percentile(result["rtts"], 0.5),
        "p99 ms": percentile(result["rtts"], 0.99),
        "node CPU": node_cpu / elapsed,
        "db CPU": db_cpu / elapsed if pg_port else float("nan"),
        "db share": db_cpu / (db_cpu + node_cpu) if pg_port else float("nan"),
    }
    print(f"{name:<24} {_row(figures)} {stored:>8} / {result['acked']}", flush=True)
    return figures


def _row(figures: dict[str, float]) -> str:
    def shown(key: str, spec: str) -> str:
        value = figures[key]
        return "-" if math.isnan(value) else format(value, spec)  # nan: not measured

    return (
        f"{shown('msg/s', '.0f'):>9} {shown('p50 ms', '.1f'):>8} {shown('p99 ms', '.1f'):>8}"
        f" {shown('node CPU', '.2f'):>9} {shown('db CPU', '.2f'):>8} {shown('db share', '.0%'):>8}"
    )


def _load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=300, help="chargers (300)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between readings")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds measured (20)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every setup (3)")
    args = parser.parse_args()
    bindir = find_bindir()
    if bindir is None:
        sys.exit("PostgreSQL's binaries are not installed (Debian: postgresql-15)")
    server = PostgresServer(bindir)
    server.start()
    print(f"{args.n} chargers, one reading each {args.interval} s, {args.duration} s measured")
    print(f"load average before: {_load_average()}; the nodes' log: {NODE_LOG}")
    NODE_LOG.write_text("")
    header = (
        f"{'setup':<24} {'msg/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'node CPU':>9}"
        f" {'db CPU':>8} {'db share':>8}"
    )
    print(header + "   stored / acknowledged")
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in SETUPS}
    try:
        for _ in range(args.rounds):
            with tempfile.TemporaryDirectory() as tmp:
                target = str(Path(tmp) / "bench.sqlite3")
                rounds["SQLite, 1 node"].append(run_setup("SQLite, 1 node", target, 1, args, None))
            for name, nodes in SETUPS.items():
                if name.startswith("PostgreSQL"):
                    url = server.create_database()
                    rounds[name].append(run_setup(name, url, nodes, args, server.port))
                    server.drop_database(url)
    finally:
        server.stop()
    medians = {
        name: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        for name, runs in rounds.items()
    }
    print(f"\nmedians of {args.rounds} rounds (load average after: {_load_average()})")
    print(header)
    for name, figures in medians.items():
        print(f"{name:<24} {_row(figures)}")
    one, two, lite = (medians[name] for name in SETUPS)
    print("\nratios of the medians")
    for label, a, b in (
        ("2 nodes / 1 node (PostgreSQL)", two, one),
        ("PostgreSQL / SQLite (1 node)", one, lite),
    ):
        print(
            f"{label:<30} msg/s {a['msg/s'] / b['msg/s']:.2f}  p50 {a['p50 ms'] / b['p50 ms']:.2f}"
            f"  p99 {a['p99 ms'] / b['p99 ms']:.2f}  node CPU {a['node CPU'] / b['node CPU']:.2f}"
        )
    return 0


SETUPS = {"PostgreSQL, 1 node": 1, "PostgreSQL, 2 nodes": 2, "SQLite, 1 node": 1}


if __name__ == "__main__":
    sys.exit(main())
