"""The store writer: one thread with its own SQLite connection, group commit, and an
acknowledgement that means stored.

The event loop never waits on SQLite: it queues rows and awaits `write()`, which returns
once its rows are committed. Whatever queued while the last commit ran is committed
together in the next one, so a busy site makes large batches rather than a long queue.

When the store cannot commit (disk full, read-only, locked for longer than
`lock_timeout`), `write()` raises StoreUnavailable: the central system answers
InternalError, and a charger keeps a transaction message and sends it again, so nothing
acknowledged is lost. Rows nobody waits for (events, summary columns) are kept and tried
again, up to `max_backlog`.

One bad row cannot stop the writer: a batch that fails because of a row (not because of
the store) is split in halves until the bad row is alone; it is set aside (logged with its
origin, appended to `<database>.set-aside.jsonl`) and the rest is stored. The writer's
task is supervised; if it stops for good, `write()` refuses at once and `on_health` says so.

WAL checkpoints are taken by this thread (PASSIVE, every `checkpoint_interval` seconds);
the loop's connection has the automatic checkpoint off while the writer runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
import sqlite3
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import peewee
import psycopg

from evcms_desktop.domain.text import log_safe
from evcms_desktop.store.database import unwritable_files
from evcms_desktop.store.models import BaseModel, ChargePoint

log = logging.getLogger(__name__)

T = TypeVar("T")

# Updates from a VALUES list (column1 is the id): one statement for many rows.
_UPDATE_TRANSACTION = (
    'UPDATE "charging_transaction" SET'
    ' "last_energy_wh" = COALESCE(v.column2, "last_energy_wh"),'
    ' "last_power_kw" = COALESCE(v.column3, "last_power_kw"),'
    ' "last_soc" = COALESCE(v.column4, "last_soc")'
    " FROM (VALUES {values}) AS v"
    """ WHERE "charging_transaction"."id" = v.column1 AND "state" = 'active'"""
)
_UPDATE_SEEN = (
    'UPDATE "charge_point" SET "last_seen_at" = v.column2'
    ' FROM (VALUES {values}) AS v WHERE "charge_point"."id" = v.column1'
)
# PostgreSQL cannot type a VALUES column of NULLs: one row per statement there.
_PG_UPDATE_TRANSACTION = (
    'UPDATE "charging_transaction" SET'
    ' "last_energy_wh" = COALESCE(%s, "last_energy_wh"),'
    ' "last_power_kw" = COALESCE(%s, "last_power_kw"),'
    ' "last_soc" = COALESCE(%s, "last_soc")'
    """ WHERE "id" = %s AND "state" = 'active'"""
)
_PG_UPDATE_SEEN = 'UPDATE "charge_point" SET "last_seen_at" = %s WHERE "id" = %s'
_DEFAULT_AUTOCHECKPOINT = 1000  # pages, SQLite's default
_MAX_RESTARTS = 3
# While the store is in trouble, a job waits this long for a lock instead of lock_timeout:
# the commit rounds find out when it works again, and queued jobs do not pile up behind
# each other's waits.
TROUBLED_LOCK_TIMEOUT = 0.05  # seconds
SWITCH_INTERVAL = 0.0005  # seconds
# A commit round starts at least this long after the last one started. A round costs the
# process about half a millisecond of CPU however few its rows (two thread hand-overs,
# BEGIN and COMMIT): at a few hundred messages a second, one round per message doubled the
# CPU a message costs. Under load a round takes longer than this anyway.
ROUND_GAP = 0.01  # seconds
# Rows per INSERT statement: one SQLite call (one release of the GIL) per chunk, not per row.
_CHUNKS = (256, 64, 16, 4, 1)
# Errors a row causes (a value the store cannot take, a missing foreign key); any other
# database error is the store's (full, read-only, locked, damaged, gone).
_ROW_ERRORS = (
    peewee.IntegrityError,
    peewee.DataError,
    peewee.InterfaceError,
    peewee.ProgrammingError,
)


class StoreUnavailable(RuntimeError):
    """The store cannot commit now; the message is not acknowledged."""


@functools.lru_cache(maxsize=256)
def _insert_statement(
    model: type[BaseModel], keys: tuple[str, ...], mark: str, rows: int = 1
) -> tuple[str, list[Callable[[Any], Any]]]:
    fields = [model._meta.fields[k] for k in keys]
    columns = ", ".join(f'"{f.column_name}"' for f in fields)
    marks = "(" + ", ".join(mark for _ in fields) + ")"
    values = ", ".join(marks for _ in range(rows))
    sql = f'INSERT INTO "{model._meta.table_name}" ({columns}) VALUES {values}'
    return sql, [f.db_value for f in fields]


def _insert(
    cursor: Any, model: type[BaseModel], keys: tuple[str, ...], rows: list[Any], mark: str
) -> None:
    """Insert `rows` (dicts of field values)."""
    _, converters = _insert_statement(model, keys, mark)
    flat = [convert(row[k]) for row in rows for k, convert in zip(keys, converters, strict=True)]
    _chunked(cursor, lambda size: _insert_statement(model, keys, mark, size)[0], flat, len(keys))


@functools.lru_cache(maxsize=64)
def _values_statement(template: str, width: int, rows: int) -> str:
    marks = "(" + ", ".join("?" for _ in range(width)) + ")"
    return template.format(values=", ".join(marks for _ in range(rows)))


def _chunked(cursor: Any, statement: Callable[[int], str], flat: list[Any], width: int) -> None:
    """Run multi-row statements of the sizes in _CHUNKS over `flat` (rows of `width`)."""
    total, start = len(flat) // width, 0
    for size in _CHUNKS:
        count = (total - start) // size
        if not count:
            continue
        step, first = size * width, start * width
        cursor.executemany(
            statement(size), [flat[first + i * step : first + (i + 1) * step] for i in range(count)]
        )
        start += count * size


@dataclass(eq=False)
class _Item:
    """The rows of one message (or one event), committed together or refused together."""

    rows: list[tuple[type[BaseModel] | str, dict[str, Any]]]
    origin: str
    future: asyncio.Future[None] | None = None


@dataclass(eq=False)
class _Row:
    item: _Item
    table: type[BaseModel] | str  # a model to insert into, or "tx" / "seen" for updates
    values: dict[str, Any]
    done: bool = False


@dataclass
class _Outcome:
    store_error: str | None = None
    rows: list[_Row] | None = None  # the rows one by one, when a row failed the batch
    set_aside: list[tuple[_Row, str]] = field(default_factory=list)


class _StoreFault(Exception):
    pass


def _cause(exc: BaseException) -> str:
    """What went wrong: after an I/O error SQLite has rolled back already, and the
    ROLLBACK that follows ("cannot rollback - no transaction is active") hides it."""
    seen: BaseException | None = exc
    while seen is not None and "no transaction is active" in str(seen):
        seen = seen.__context__  # peewee's wrapper, then sqlite3's own, then the cause
    return str(seen if isinstance(seen, peewee.DatabaseError | sqlite3.Error) else exc)


class _RowFault(Exception):
    pass


class BatchWriter:
    def __init__(
        self,
        db: peewee.Database,
        *,
        set_aside_path: Path | None = None,
        lock_timeout: float = 2.0,
        retry_pause: float = 0.5,
        checkpoint_interval: float = 2.0,
        max_backlog: int = 100_000,
        round_gap: float = ROUND_GAP,
        on_health: Callable[[str | None], None] | None = None,
        on_set_aside: Callable[[int], None] | None = None,
    ) -> None:
        self.sqlite = isinstance(getattr(db, "obj", db), peewee.SqliteDatabase)  # or a proxy
        if self.sqlite and db.database == ":memory:":
            raise ValueError("the batch writer needs a database file")
        self.db = db
        self.set_aside_path = set_aside_path or Path(f"{db.database}.set-aside.jsonl")
        self.lock_timeout = lock_timeout
        self.retry_pause = retry_pause
        self.checkpoint_interval = checkpoint_interval
        self.max_backlog = max_backlog
        self.round_gap = round_gap
        self.on_health = on_health
        self.on_set_aside = on_set_aside
        self.set_aside_count = 0  # rows set aside since start
        self.store_error: str | None = None  # what the store last said, while in trouble
        self.stopped = False  # the writer gave up: nothing is acknowledged any more
        self._items: list[_Item] = []
        self._tx_updates: dict[int, tuple[float | None, float | None, float | None]] = {}
        self._seen: dict[int, Any] = {}
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        # SQLite's WAL checkpoints run on a thread and connection of their own: PASSIVE
        # never blocks the writer, and a checkpoint's fsync must not hold up a commit.
        self._checkpointer: ThreadPoolExecutor | None = None
        self._checkpointing: asyncio.Future[None] | None = None
        self._switch_interval: float | None = None
        self._job_failed_at = -math.inf  # monotonic; the writer thread's last failed job
        self._wait_ms: int | None = None  # the writer connection's busy timeout now

    # -- queueing (on the loop) ------------------------------------------------------

    def add(self, model: type[BaseModel], row: dict[str, Any], origin: str = "") -> None:
        """Queue a row nobody waits for; its keys are field names (a foreign key: the id)."""
        self._items.append(_Item([(model, row)], origin))
        self._wake.set()

    async def write(self, rows: list[tuple[type[BaseModel], dict[str, Any]]], origin: str) -> None:
        """Queue the rows of one message and return once they are committed (or set aside);
        StoreUnavailable when they are not."""
        if self.stopped or self._task is None:
            raise StoreUnavailable("the store writer is not running")
        if not rows:
            return
        future = asyncio.get_running_loop().create_future()
        self._items.append(_Item(list(rows), origin, future))
        self._wake.set()
        await future

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
        self._wake.set()

    def seen(self, charge_point_id: int, at: Any) -> None:
        """When a charger was last heard from; only the latest time is written."""
        self._seen[charge_point_id] = at
        self._wake.set()

    async def run(self, job: Callable[[], T], origin: str, quiet: bool = False) -> T:
        """Run `job` (store work that needs answers: queries and writes) on the writer's
        thread and connection, in one transaction of its own, and return its result. The
        loop never waits on a lock for it; StoreUnavailable when the store cannot commit
        (logged unless `quiet`: the caller sums such failures up). An error of the job's
        own is raised as it is."""
        if self.stopped or self._executor is None:
            raise StoreUnavailable("the store writer is not running")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, self._run_job, job, origin, quiet)
        except StoreUnavailable as exc:
            if self.store_error is None:  # the commit rounds say when it works again
                self._set_health(str(exc))
            raise

    async def flush(self) -> None:
        """Return once everything queued so far is committed (or refused)."""
        if self._task is None or self.stopped:
            return
        future = asyncio.get_running_loop().create_future()
        self._items.append(_Item([], "flush", future))
        self._wake.set()
        with contextlib.suppress(StoreUnavailable):
            await future

    # -- running ---------------------------------------------------------------------

    def start(self) -> None:
        # The writer thread gets the GIL back after each SQLite call; at the default 5 ms
        # switch interval a busy loop made every commit wait tens of milliseconds.
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch_interval, SWITCH_INTERVAL))
        if self.sqlite:
            self.db.execute_sql("PRAGMA wal_autocheckpoint=0")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")
        if self.sqlite:
            self._checkpointer = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="store-checkpoint"
            )
        self._closing = False
        self.stopped = False
        self._task = asyncio.get_running_loop().create_task(self._supervise(), name="writer")

    async def stop(self) -> None:
        """Commit what is queued, then close the writer's connection."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._executor is not None:
            loop = asyncio.get_running_loop()
            if self._items or self._tx_updates or self._seen:
                await self._commit_round(loop)  # the supervisor gave up: one last try
            self._fail_waiting(StoreUnavailable("the central system is stopping"))
            if self._checkpointer is not None:
                if self._checkpointing is not None:
                    await self._checkpointing
                await loop.run_in_executor(self._checkpointer, self._close_checkpointer)
                self._checkpointer.shutdown()
                self._checkpointer = None
                self._checkpointing = None
            await loop.run_in_executor(self._executor, self._close_connection)
            self._executor.shutdown()
            self._executor = None
        if self.sqlite:
            with contextlib.suppress(peewee.DatabaseError):
                self.db.execute_sql(f"PRAGMA wal_autocheckpoint={_DEFAULT_AUTOCHECKPOINT}")
        if self._switch_interval is not None:
            sys.setswitchinterval(self._switch_interval)
            self._switch_interval = None

    async def _supervise(self) -> None:
        restarts = 0
        while True:
            try:
                await self._run()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                restarts += 1
                log.critical(
                    "The store writer failed (%d of %d)", restarts, _MAX_RESTARTS + 1, exc_info=exc
                )
                if restarts > _MAX_RESTARTS:
                    self.stopped = True
                    self._fail_waiting(StoreUnavailable("the store writer stopped"))
                    self._set_health(f"the store writer stopped: {exc}")
                    return
                await asyncio.sleep(self.retry_pause)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_checkpoint = loop.time() + self.checkpoint_interval
        round_started = -math.inf
        while True:
            if not (self._items or self._tx_updates or self._seen):
                if self._closing:
                    return
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.checkpoint_interval)
            if self._items or self._tx_updates or self._seen:
                gap = round_started + self.round_gap - loop.time()
                if gap > 0 and not self._closing:
                    await asyncio.sleep(gap)  # what comes meanwhile joins this round
                round_started = loop.time()
            trouble = await self._commit_round(loop)
            if trouble and self._closing:
                return  # stop() tries once more, then refuses what waits
            if trouble:
                await asyncio.sleep(self.retry_pause)
            if loop.time() >= next_checkpoint and self._checkpointer is not None:
                next_checkpoint = loop.time() + self.checkpoint_interval
                if self._checkpointing is None or self._checkpointing.done():
                    self._checkpointing = loop.run_in_executor(self._checkpointer, self._checkpoint)

    async def _commit_round(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Commit everything queued now; True when the store was in trouble."""
        items, updates, seen = self._items, self._tx_updates, self._seen
        if not (items or updates or seen):
            return False
        self._items, self._tx_updates, self._seen = [], {}, {}
        assert self._executor is not None
        outcome = await loop.run_in_executor(self._executor, self._commit, items, updates, seen)
        self._settle(items, updates, seen, outcome)
        return outcome.store_error is not None

    def _settle(
        self,
        items: list[_Item],
        updates: dict[int, tuple[float | None, float | None, float | None]],
        seen: dict[int, Any],
        outcome: _Outcome,
    ) -> None:
        if outcome.rows is None:  # one transaction, committed or not: no row was split off
            self._settle_all(items, updates, seen, outcome.store_error)
        else:
            self._settle_rows(items, outcome.rows, outcome)
        self._set_health(outcome.store_error)

    def _settle_all(
        self,
        items: list[_Item],
        updates: dict[int, tuple[float | None, float | None, float | None]],
        seen: dict[int, Any],
        store_error: str | None,
    ) -> None:
        if store_error is None:
            for item in items:
                if item.future is not None and not item.future.done():
                    item.future.set_result(None)
            return
        for item in items:
            if item.future is None:
                self._requeue(item, item.rows)
            elif not item.future.done():
                item.future.set_exception(StoreUnavailable(store_error))
        for key, values in updates.items():  # newer values queued meanwhile win
            self._tx_updates.setdefault(key, values)
        for key, at in seen.items():
            self._seen.setdefault(key, at)

    def _settle_rows(self, items: list[_Item], rows: list[_Row], outcome: _Outcome) -> None:
        aside = {id(row) for row, _ in outcome.set_aside}
        for row, error in outcome.set_aside:
            log.warning(
                "Set aside a %s row from %s: %s",
                row.table if isinstance(row.table, str) else row.table._meta.table_name,
                log_safe(row.item.origin),
                log_safe(error),
            )
        if outcome.set_aside:
            self.set_aside_count += len(outcome.set_aside)
            if self.on_set_aside is not None:
                self.on_set_aside(len(outcome.set_aside))
        stored: dict[int, bool] = {}
        for row in rows:
            ok = row.done or id(row) in aside
            stored[id(row.item)] = stored.get(id(row.item), True) and ok
        for item in items:
            if stored.get(id(item), outcome.store_error is None):
                if item.future is not None and not item.future.done():
                    item.future.set_result(None)
            elif item.future is not None:
                if not item.future.done():
                    item.future.set_exception(
                        StoreUnavailable(outcome.store_error or "not committed")
                    )
            else:
                self._requeue(
                    item, [(r.table, r.values) for r in rows if r.item is item and not r.done]
                )
        for row in rows:
            if row.item.origin == "summary" and not row.done and id(row) not in aside:
                if row.table == "tx":
                    self._tx_updates.setdefault(row.values["id"], row.values["v"])
                else:
                    self._seen.setdefault(row.values["id"], row.values["at"])

    def _requeue(self, item: _Item, left: list[tuple[Any, dict[str, Any]]]) -> None:
        if len(self._items) >= self.max_backlog:
            log.warning("Dropped %d rows from %s: the backlog is full", len(left), item.origin)
            return
        self._items.insert(0, _Item(left, item.origin))

    def _fail_waiting(self, error: Exception) -> None:
        for item in self._items:
            if item.future is not None and not item.future.done():
                item.future.set_exception(error)
        self._items = [i for i in self._items if i.future is None]

    def _set_health(self, error: str | None) -> None:
        """Say when the store stops and starts committing (not each new wording between)."""
        if error == self.store_error:
            return
        if error is not None and self.store_error is not None:
            self.store_error = error
            return
        if error is None:
            log.warning("The store commits again")
        else:
            log.error("The store cannot commit: %s", error)
        self.store_error = error
        if self.on_health is not None:
            self.on_health(error)

    # -- the writer thread -------------------------------------------------------------

    def _open(self, lock_timeout: float | None = None) -> None:
        """The writer thread's own connection (peewee keeps one per thread), waiting at
        most `lock_timeout` (default: the writer's) for a lock."""
        if self.db.connect(reuse_if_open=True):
            self._wait_ms = None
            if self.sqlite:
                self.db.execute_sql("PRAGMA wal_autocheckpoint=0")
        wait_ms = int((self.lock_timeout if lock_timeout is None else lock_timeout) * 1000)
        if wait_ms != self._wait_ms:
            if self.sqlite:
                self.db.execute_sql(f"PRAGMA busy_timeout={wait_ms}")
            else:
                self.db.execute_sql(f"SET lock_timeout = {wait_ms}")
            self._wait_ms = wait_ms

    def _close_connection(self) -> None:
        if self.sqlite and not self._unwritable():
            with contextlib.suppress(peewee.DatabaseError, sqlite3.Error):
                self.db.execute_sql("PRAGMA wal_checkpoint(PASSIVE)")
        with contextlib.suppress(peewee.DatabaseError):
            self.db.close()

    def _unwritable(self) -> bool:
        """Whether the SQLite files cannot be written now (the store refuses every
        statement then: store.database.SqliteStore); no checkpoint is tried."""
        return self.sqlite and bool(unwritable_files(Path(self.db.database)))

    def _checkpoint(self) -> None:
        """On the checkpoint thread, with its own connection (peewee keeps one per thread)."""
        if not self.sqlite or self._unwritable():
            return
        try:
            self.db.connect(reuse_if_open=True)
            self.db.execute_sql("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except peewee.DatabaseError:
            log.warning("WAL checkpoint failed", exc_info=True)

    def _close_checkpointer(self) -> None:
        with contextlib.suppress(peewee.DatabaseError):
            self.db.close()

    def _run_job(self, job: Callable[[], T], origin: str, quiet: bool = False) -> T:
        troubled = (
            self.store_error is not None
            or time.monotonic() - self._job_failed_at < self.lock_timeout + self.retry_pause
        )
        try:
            self._open(TROUBLED_LOCK_TIMEOUT if troubled else None)
            transaction = self.db.atomic("IMMEDIATE") if self.sqlite else self.db.atomic()
            with transaction:
                result = job()
        except _ROW_ERRORS:
            raise
        except (peewee.DatabaseError, sqlite3.Error) as exc:
            self._job_failed_at = time.monotonic()
            if not quiet:
                log.error("%s not stored: %s", log_safe(origin), log_safe(_cause(exc)))
            raise StoreUnavailable(_cause(exc)) from exc
        self._job_failed_at = -math.inf
        return result

    def _commit(
        self,
        items: list[_Item],
        updates: dict[int, tuple[float | None, float | None, float | None]],
        seen: dict[int, Any],
    ) -> _Outcome:
        """Commit everything in one transaction; only when a row makes it fail are the
        rows taken one by one (`_commit_part`), so that the bad one is set aside."""
        outcome = _Outcome()
        entries = [entry for item in items for entry in item.rows]
        entries += [("tx", {"id": k, "v": v}) for k, v in updates.items()]
        entries += [("seen", {"id": k, "at": v}) for k, v in seen.items()]
        try:
            self._transaction(entries)
            return outcome
        except _RowFault as fault:
            first_fault = fault
        except _StoreFault as fault:
            outcome.store_error = str(fault)
            return outcome
        rows = [_Row(item, table, values) for item in items for table, values in item.rows]
        housekeeping = _Item([], "summary")
        rows += [_Row(housekeeping, "tx", {"id": k, "v": v}) for k, v in updates.items()]
        rows += [_Row(housekeeping, "seen", {"id": k, "at": v}) for k, v in seen.items()]
        outcome.rows = rows
        try:
            self._split(rows, outcome, first_fault)
        except _StoreFault as fault:
            outcome.store_error = str(fault)
        return outcome

    def _commit_part(self, rows: list[_Row], outcome: _Outcome) -> None:
        """Commit `rows` in one transaction; on a row's fault, split until it is alone."""
        try:
            self._transaction([(row.table, row.values) for row in rows])
        except _RowFault as fault:
            self._split(rows, outcome, fault)
            return
        for row in rows:
            row.done = True

    def _split(self, rows: list[_Row], outcome: _Outcome, fault: _RowFault) -> None:
        """`rows` failed together because of a row: set it aside if alone, else halve."""
        if len(rows) == 1:
            self._set_aside(rows[0], str(fault.__cause__ or fault))
            outcome.set_aside.append((rows[0], str(fault.__cause__ or fault)))
            return
        middle = len(rows) // 2
        self._commit_part(rows[:middle], outcome)
        self._commit_part(rows[middle:], outcome)

    def _transaction(self, rows: list[tuple[Any, dict[str, Any]]]) -> None:
        try:
            self._open()
            if self.sqlite:
                with peewee.__exception_wrapper__:
                    self._sqlite_transaction(rows)
            else:
                self._pipelined(rows)
        except _ROW_ERRORS as exc:
            raise _RowFault(str(exc)) from exc
        except (peewee.DatabaseError, sqlite3.Error) as exc:
            raise _StoreFault(_cause(exc)) from exc
        except Exception as exc:
            raise _RowFault(repr(exc)) from exc

    def _sqlite_transaction(self, rows: list[tuple[Any, dict[str, Any]]]) -> None:
        """BEGIN, the statements and COMMIT on one cursor: the store's check that its files
        can be written (SqliteStore.cursor) is made once a batch, not once a statement,
        and each of its system calls lets the event loop take the GIL back."""
        cursor = self.db.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        try:
            self._statements(rows, cursor)
            cursor.execute("COMMIT")
        except BaseException:
            if self.db.connection().in_transaction:  # an I/O error has rolled it back
                with contextlib.suppress(sqlite3.Error):
                    cursor.execute("ROLLBACK")
            raise

    def _pipelined(self, rows: list[tuple[Any, dict[str, Any]]]) -> None:
        """PostgreSQL: BEGIN and every statement in one pipeline, one round trip to the
        server, then COMMIT, the second; one by one they were about seven, and on a busy
        machine each waits for the server's process to be scheduled. A row's error is
        raised at the sync, inside the transaction, which is then rolled back."""
        connection = self.db.connection()
        try:
            with peewee.__exception_wrapper__, connection.pipeline() as pipeline, self.db.atomic():
                self._statements(rows)
                pipeline.sync()
        finally:
            # The ROLLBACK that peewee sends inside an aborted pipeline can be skipped
            # with it, which would leave the next batch in a failed transaction.
            if connection.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                with contextlib.suppress(psycopg.Error):
                    connection.rollback()

    def _statements(self, rows: list[tuple[Any, dict[str, Any]]], cursor: Any = None) -> None:
        cursor = self.db.cursor() if cursor is None else cursor
        mark = "?" if self.sqlite else "%s"
        groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        for table, values in rows:
            key = (table, tuple(values) if not isinstance(table, str) else ())
            groups.setdefault(key, []).append(values)
        for (table, keys), members in groups.items():
            if table == "tx":
                flat = [x for r in members for x in (r["id"], *r["v"])]
                if self.sqlite:
                    update = functools.partial(_values_statement, _UPDATE_TRANSACTION, 4)
                    _chunked(cursor, update, flat, 4)
                else:
                    cursor.executemany(
                        _PG_UPDATE_TRANSACTION, [(*r["v"], r["id"]) for r in members]
                    )
            elif table == "seen":
                convert = ChargePoint.last_seen_at.db_value
                if self.sqlite:
                    flat = [x for r in members for x in (r["id"], convert(r["at"]))]
                    _chunked(cursor, functools.partial(_values_statement, _UPDATE_SEEN, 2), flat, 2)
                else:
                    cursor.executemany(
                        _PG_UPDATE_SEEN, [(convert(r["at"]), r["id"]) for r in members]
                    )
            else:
                _insert(cursor, table, keys, members, mark)

    def _set_aside(self, row: _Row, error: str) -> None:
        table = row.table if isinstance(row.table, str) else row.table._meta.table_name
        record = {"table": table, "origin": row.item.origin, "error": error, "row": row.values}
        try:
            with self.set_aside_path.open("a", encoding="utf-8") as out:
                out.write(json.dumps(record, default=repr, ensure_ascii=True) + "\n")
        except (OSError, ValueError):
            log.exception("Could not keep a set-aside row in %s", self.set_aside_path)
