"""Guards the Qt binding we pin: PySide6 6.12.0 aborts after a few thousand qasync callbacks.

It runs in a child process, so an abort ("Fatal Python error: none_dealloc") fails this
test instead of killing the whole test run.
"""

import os
import subprocess
import sys

ROUND_TRIPS = 20_000

SCRIPT = f"""
import asyncio, sys
import qasync
from PySide6.QtWidgets import QApplication

app = QApplication(sys.argv)
loop = qasync.QEventLoop(app)
asyncio.set_event_loop(loop)

async def main():
    done = 0
    for _ in range({ROUND_TRIPS}):
        future = loop.create_future()
        loop.call_soon(future.set_result, None)
        await future
        done += 1
    return done

with loop:
    print(loop.run_until_complete(main()))
"""


def test_twenty_thousand_qasync_round_trips_do_not_crash():
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == str(ROUND_TRIPS)
