"""kill -9 under load: every MeterValues sample the central system acknowledged is stored.

Before, a CALLRESULT only meant "queued": a hard kill lost the last batch."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import peewee

from evcms_desktop.store.models import MeterValue
from tests.hostile.helpers import RawCharger, meter_values, run

CHILD = Path(__file__).with_name("serve_child.py")
CHARGERS = ("CP-A", "CP-B")
ROUNDS = 3


async def _load(port: int, round_no: int, process: subprocess.Popen) -> set[str]:
    """Send MeterValues from each charger as fast as answered; kill the server meanwhile."""
    acknowledged: set[str] = set()

    async def charger(ident: str) -> None:
        box = await RawCharger.at(port, ident)
        seq = 0
        try:
            while True:
                seq += 1
                values = [f"{round_no}{i}{seq:06d}" for i in range(3)]
                answer = await box.call("MeterValues", meter_values(None, *values))
                if answer[0] == 3:
                    acknowledged.update(values)
        except Exception:  # the kill ends the connection mid-call
            return

    async def killer() -> None:
        while len(acknowledged) < 600:
            await asyncio.sleep(0.005)
        os.kill(process.pid, signal.SIGKILL)

    await asyncio.gather(killer(), *(charger(ident) for ident in CHARGERS))
    return acknowledged


def test_acknowledged_samples_survive_kill_9(db, station, db_path: Path):
    db.close()  # the server runs in the child, on the same file
    acknowledged: set[str] = set()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for round_no in range(1, ROUNDS + 1):
        process = subprocess.Popen(
            [sys.executable, str(CHILD), str(db_path)], stdout=subprocess.PIPE, text=True, env=env
        )
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("PORT "), line
        acknowledged |= run(_load(int(line.split()[1]), round_no, process))
        assert process.wait(10) == -signal.SIGKILL
    check = peewee.SqliteDatabase(str(db_path))
    with check.bind_ctx([MeterValue]):
        stored = {v for (v,) in MeterValue.select(MeterValue.value).tuples()}
    check.close()
    missing = acknowledged - stored
    assert len(acknowledged) >= ROUNDS * 600
    assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged samples lost"
