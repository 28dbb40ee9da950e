"""The tests' PostgreSQL server does not outlive a killed test run."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from tests.postgres import PostgresServer, find_bindir, process_start, remove_stale_servers

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.postgresql

INNER_TEST = """
import time
from pathlib import Path

def test_holds_a_server(postgres_server):
    Path({report!r}).write_text(str(postgres_server.root))
    time.sleep(600)  # until killed
"""


@pytest.fixture
def bindir() -> Path:
    found = find_bindir()
    if found is None:
        if os.environ.get("EVCMS_REQUIRE_POSTGRES"):
            pytest.fail("PostgreSQL's binaries are missing (.ci/run installs postgresql-15)")
        pytest.skip("PostgreSQL's binaries are not installed")
    return found


def _postmaster(root: Path) -> int:
    return int((root / "data" / "postmaster.pid").read_text().split()[0])


def _wait_until(condition, seconds: float = 60) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_a_killed_pytest_takes_its_server_down_and_the_next_start_cleans_up(
    bindir: Path, tmp_path: Path
) -> None:
    report = tmp_path / "root.txt"
    inner = tmp_path / "test_inner.py"
    inner.write_text(INNER_TEST.format(report=str(report)))
    child = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), "-o", "timeout=0", str(inner)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert _wait_until(lambda: report.exists() or child.poll() is not None, 120)
        assert child.poll() is None, "the inner pytest ended before it started a server"
        root = Path(report.read_text())
        postmaster = _postmaster(root)
        assert process_start(postmaster) is not None
    finally:
        child.kill()
        child.wait()
    assert _wait_until(lambda: process_start(postmaster) is None), "the server outlived pytest"
    assert root.exists()  # a killed run cannot clean up: the next start does
    assert root in remove_stale_servers()
    assert not root.exists()


def test_a_start_stops_the_server_of_a_run_that_is_gone_and_spares_live_ones(
    bindir: Path,
) -> None:
    server = PostgresServer(bindir)
    server.start()
    try:
        postmaster = _postmaster(server.root)
        assert server.root not in remove_stale_servers()  # its owner, this run, is alive
        psycopg.connect(server.url("postgres")).close()
        finished = subprocess.Popen(["true"])
        finished.wait()
        (server.root / "owner").write_text(f"{finished.pid} 0\n")  # as if this run were gone
        assert server.root in remove_stale_servers()
        assert process_start(postmaster) is None
        assert not server.root.exists()
    finally:
        server.stop()
