"""Batched writes: meter values, transaction summaries and events in one transaction.

One autocommit per row manages a few thousand rows a second; one transaction per batch
manages tens of thousands. Rows wait at most `interval` seconds (or until `max_rows`),
and `flush()` writes everything at once (the central system calls it before it reads
what it wrote, and on stop).

WAL checkpoints are taken off the loop: SQLite's automatic checkpoint runs inside the
commit that crosses the threshold, and copying a few MB of WAL into the database stalled
the loop for up to half a second under load. While the writer runs, the automatic
checkpoint is off on the loop's connection and a thread checkpoints (PASSIVE, which
never blocks writers) every `checkpoint_interval` seconds on its own connection.

On PostgreSQL a batch is a few multi-row INSERTs (one round trip per table and up to
`_PG_ROWS_PER_INSERT` rows) and there is no checkpoint to manage.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import peewee

from evcms_desktop.store.models import BaseModel

log = logging.getLogger(__name__)

_UPDATE_TRANSACTION = (
    'UPDATE "charging_transaction" SET'
    ' "last_energy_wh" = COALESCE({p}, "last_energy_wh"),'
    ' "last_power_kw" = COALESCE({p}, "last_power_kw"),'
    ' "last_soc" = COALESCE({p}, "last_soc")'
    ' WHERE "id" = {p}'
)
_DEFAULT_AUTOCHECKPOINT = 1000  # pages, SQLite's default
_PG_ROWS_PER_INSERT = 1000  # well under PostgreSQL's 65,535 parameters per statement


@functools.lru_cache(maxsize=64)
def _insert_statement(
    model: type[BaseModel], keys: tuple[str, ...], mark: str, rows: int = 1
) -> tuple[str, list[Callable[[Any], Any]]]:
    """INSERT of `rows` rows (SQLite runs one-row statements through executemany)."""
    fields = [model._meta.fields[k] for k in keys]
    columns = ", ".join(f'"{f.column_name}"' for f in fields)
    marks = "(" + ", ".join(mark for _ in fields) + ")"
    values = ", ".join([marks] * rows)
    sql = f'INSERT INTO "{model._meta.table_name}" ({columns}) VALUES {values}'
    return sql, [f.db_value for f in fields]


class _Checkpointer:
    """PASSIVE WAL checkpoints on a connection of its own, in a thread of its own."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wal-checkpoint")
        self._connection: sqlite3.Connection | None = None

    def _checkpoint(self) -> None:
        if self._connection is None:
            self._connection = sqlite3.connect(self.path, timeout=10, check_same_thread=False)
        self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    async def checkpoint(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self.executor, self._checkpoint)

    def close(self) -> None:
        def close_connection() -> None:
            if self._connection is not None:
                self._connection.close()

        self.executor.submit(close_connection).result()
        self.executor.shutdown()


class BatchWriter:
    def __init__(
        self,
        db: peewee.Database,
        *,
        interval: float = 0.05,
        max_rows: int = 2000,
        checkpoint_interval: float = 2.0,
    ) -> None:
        self.db = db
        self.interval = interval
        self.checkpoint_interval = checkpoint_interval
        self._checkpointer: _Checkpointer | None = None
        self.max_rows = max_rows
        self._rows: dict[type[BaseModel], list[dict[str, Any]]] = defaultdict(list)
        self._pending = 0
        self._tx_updates: dict[int, tuple[float | None, float | None, float | None]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def add(self, model: type[BaseModel], row: dict[str, Any]) -> None:
        """Queue a row; its keys are field names (a foreign key takes the id)."""
        self._rows[model].append(row)
        self._pending += 1
        if self._pending >= self.max_rows:
            self._wake.set()

    def update_transaction(
        self,
        transaction_id: int,
        energy_wh: float | None = None,
        power_kw: float | None = None,
        soc: float | None = None,
    ) -> None:
        """Latest summary values of an open transaction; only the last ones are written."""
        old = self._tx_updates.get(transaction_id, (None, None, None))
        self._tx_updates[transaction_id] = (
            old[0] if energy_wh is None else energy_wh,
            old[1] if power_kw is None else power_kw,
            old[2] if soc is None else soc,
        )

    def start(self) -> None:
        if isinstance(self.db, peewee.SqliteDatabase) and self.db.database != ":memory:":
            self.db.execute_sql("PRAGMA wal_autocheckpoint=0")
            self._checkpointer = _Checkpointer(self.db.database)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="batch-writer")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_checkpoint = loop.time() + self.checkpoint_interval
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            try:
                self.flush()
            except (peewee.DatabaseError, sqlite3.Error):
                # The rows stay queued and are tried again on the next round.
                log.exception("Writing a batch of %d rows failed", self._pending)
            if self._checkpointer is not None and loop.time() >= next_checkpoint:
                next_checkpoint = loop.time() + self.checkpoint_interval
                try:
                    await self._checkpointer.checkpoint()
                except sqlite3.Error:
                    log.exception("WAL checkpoint failed")

    def flush(self) -> None:
        """Write what is queued in one transaction (raw statements: peewee's per-value query
        building cost ten times the SQLite work)."""
        if not self._pending and not self._tx_updates:
            return
        rows, updates = self._rows, self._tx_updates
        mark = self.db.param
        multi_row = not isinstance(self.db, peewee.SqliteDatabase)
        with self.db.atomic():
            cursor = self.db.cursor()
            for model, model_rows in rows.items():
                keys = tuple(model_rows[0])
                _, converters = _insert_statement(model, keys, mark)
                values = [
                    tuple(convert(row[k]) for k, convert in zip(keys, converters, strict=True))
                    for row in model_rows
                ]
                if multi_row:
                    self._insert_multi_row(cursor, model, keys, values)
                else:
                    cursor.executemany(_insert_statement(model, keys, mark)[0], values)
            if updates:
                cursor.executemany(
                    _UPDATE_TRANSACTION.format(p=mark),
                    [(*values, tx_id) for tx_id, values in updates.items()],
                )
        self._rows = defaultdict(list)
        self._tx_updates = {}
        self._pending = 0

    def _insert_multi_row(
        self,
        cursor: Any,
        model: type[BaseModel],
        keys: tuple[str, ...],
        values: list[tuple[Any, ...]],
    ) -> None:
        for first in range(0, len(values), _PG_ROWS_PER_INSERT):
            chunk = values[first : first + _PG_ROWS_PER_INSERT]
            sql, _ = _insert_statement(model, keys, self.db.param, len(chunk))
            cursor.execute(sql, [value for row in chunk for value in row])

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.flush()
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
            self.db.execute_sql(f"PRAGMA wal_autocheckpoint={_DEFAULT_AUTOCHECKPOINT}")
