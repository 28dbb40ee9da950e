"""A throw-away PostgreSQL server for the tests, started from the installed binaries.

The cluster lives in a temporary directory and listens on 127.0.0.1 and a socket in that
directory only. initdb refuses to run as root, so under root (CI) the server runs as the
unprivileged `postgres` user (or EVCMS_PG_USER). Durability is switched off: a test
database is thrown away, so fsync buys nothing but time.

A killed test run must not leave its server behind. The postmaster is started through
util-linux's setpriv, which changes the user and then asks the kernel for a parent-death
signal (SIGINT, a fast shutdown) when the thread that started it ends, however it ends
(the tests start it from the main thread; a change of user would clear a signal asked for
before it). And every start first stops and removes the servers of runs that are gone:
each directory names its owner's pid and start time in `owner`.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

SUPERUSER = "evcms"
PREFIX = "evcms-pg-"


def find_bindir() -> Path | None:
    """The newest installed PostgreSQL's bin directory (EVCMS_PG_BIN overrides)."""
    if given := os.environ.get("EVCMS_PG_BIN"):
        return Path(given)
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[4])
    )
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def process_start(pid: int) -> str | None:
    """When a process started (clock ticks since boot, from /proc), or None if it is gone
    (a zombie is gone): with the pid, it names a process even after its pid is reused."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in {"Z", "X"} else fields[19]


def _alive(owner: str) -> bool:
    pid, _, start = owner.partition(" ")
    return pid.isdigit() and process_start(int(pid)) == start


def remove_stale_servers(base: Path | None = None) -> list[Path]:
    """Stop the servers whose test run is gone and remove their directories; which ones."""
    removed = []
    for root in Path(base or tempfile.gettempdir()).glob(PREFIX + "*"):
        try:
            owner = (root / "owner").read_text().strip()
        except OSError:
            continue  # another run's server still being set up, or not ours
        if _alive(owner):
            continue
        _stop_postmaster(root / "data")
        shutil.rmtree(root, ignore_errors=True)
        removed.append(root)
    return removed


def _stop_postmaster(data: Path) -> None:
    """Stop (immediate shutdown) the postmaster of `data`, if it still runs."""
    try:
        pid = int((data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return
    if str(data).encode() not in command:
        return  # the pid was reused by something else
    os.kill(pid, signal.SIGQUIT)
    deadline = time.monotonic() + 30
    while process_start(pid) is not None and time.monotonic() < deadline:
        time.sleep(0.05)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        remove_stale_servers()
        self.root = Path(tempfile.mkdtemp(prefix=PREFIX))
        (self.root / "owner").write_text(f"{os.getpid()} {process_start(os.getpid())}\n")
        self.data = self.root / "data"
        self.port = _free_port()
        self._counter = itertools.count(1)
        self._process: subprocess.Popen[bytes] | None = None
        self._runas: list[str] = []
        server_user: list[str] = []
        if os.geteuid() == 0:
            name = os.environ.get("EVCMS_PG_USER", "postgres")
            entry = pwd.getpwnam(name)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
            self._runas = ["runuser", "-u", name, "--"]
            server_user = ["--reuid", name, "--regid", str(entry.pw_gid), "--init-groups"]
        setpriv = shutil.which("setpriv")
        if setpriv:
            self._server_runas = [setpriv, "--pdeathsig", "INT", *server_user, "--"]
        else:  # no death signal: the next start stops a server left behind
            self._server_runas = self._runas

    def _command(self, program: str, *args: str) -> list[str]:
        return [*self._runas, str(self.bindir / program), *args]

    def start(self) -> None:
        subprocess.run(
            self._command(
                "initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust",
                "-E", "UTF8", "--locale=C", "--no-sync",
            ),
            check=True,
            capture_output=True,
        )  # fmt: skip
        log = open(self.root / "server.log", "wb")  # noqa: SIM115 - the server keeps it
        self._process = subprocess.Popen(
            [
                *self._server_runas, str(self.bindir / "postgres"), "-D", str(self.data),
                "-p", str(self.port), "-k", str(self.root), "-c", "listen_addresses=127.0.0.1",
                "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                "-c", "max_connections=200",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.root,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                psycopg.connect(self.url("postgres"), connect_timeout=2).close()
                break
            except psycopg.OperationalError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "PostgreSQL did not start: " + (self.root / "server.log").read_text()
                    ) from None
                time.sleep(0.1)

    def url(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _admin(self, sql: str) -> None:
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self) -> str:
        """A new, empty database; its URL."""
        name = f"test_{next(self._counter)}"
        self._admin(f'CREATE DATABASE "{name}" STRATEGY FILE_COPY')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        shutil.rmtree(self.root, ignore_errors=True)
