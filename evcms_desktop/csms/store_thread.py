"""A thread with a store connection of its own, for the queries a node makes outside the
store writer (its presence, its leadership, routing, notifications).

The event loop hands work to the thread and waits at most `timeout` for the answer: a
database that does not answer (a long lock, a network stall, a paused server) makes the
work late, never the chargers' messages. A late answer is logged when it comes; work
nobody waits for (notifications) is bounded in number and dropped, counted, beyond that.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import peewee

from evcms_desktop.store.database import close_database
from evcms_desktop.store.models import database_proxy

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_BACKLOG = 1000  # work nobody waits for, queued at most
CLOSE_WAIT_SECONDS = 5.0


class StoreNotAnswering(Exception):
    """The database did not answer in time; the work may still be done later."""


class StoreThread:
    def __init__(self, name: str, timeout: float, *, max_backlog: int = MAX_BACKLOG) -> None:
        self.name = name
        self.timeout = timeout
        self.max_backlog = max_backlog
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._backlog = 0
        self.dropped = 0  # work not queued because the backlog was full, since start

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.name)
        return self._executor

    async def run(self, work: Callable[[], T]) -> T:
        """`work`'s result, from the thread, however long the database takes (start-up,
        the heartbeat: nothing else waits for them)."""
        return await asyncio.wrap_future(self._pool().submit(work))

    async def call(
        self,
        work: Callable[[], T],
        what: str,
        *,
        timeout: float | None = None,
        on_late: Callable[[T], None] | None = None,
    ) -> T:
        """`work`'s result, from the thread; StoreNotAnswering after `timeout` (default:
        the thread's), when the work goes on and `on_late` gets its result on the loop."""
        limit = self.timeout if timeout is None else timeout
        started = time.monotonic()
        future = asyncio.wrap_future(self._pool().submit(work))
        future.add_done_callback(_retrieve)  # also when the caller is cancelled
        try:
            return await asyncio.wait_for(asyncio.shield(future), limit)
        except TimeoutError:
            log.warning(
                "%s: the database did not answer %s within %.1f s; the chargers are still"
                " answered, the work waits",
                self.name,
                what,
                limit,
            )
            future.add_done_callback(lambda done: self._late(done, what, started, on_late))
            raise StoreNotAnswering(f"the database did not answer {what} in time") from None

    def _late(
        self,
        future: asyncio.Future[T],
        what: str,
        started: float,
        on_late: Callable[[T], None] | None,
    ) -> None:
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            log.warning("%s: %s failed after %.1f s: %s", self.name, what, _since(started), error)
            return
        log.warning("%s: the database answered %s after %.1f s", self.name, what, _since(started))
        if on_late is not None:
            on_late(future.result())

    def send(self, work: Callable[[], object], what: str) -> None:
        """Queue work nobody waits for; dropped (and counted) while `max_backlog` wait."""
        with self._lock:
            if self._backlog >= self.max_backlog:
                self.dropped += 1
                if self.dropped == 1 or self.dropped % self.max_backlog == 0:
                    log.warning(
                        "%s: the database is not answering; %d item(s) not passed on (%s)",
                        self.name,
                        self.dropped,
                        what,
                    )
                return
            self._backlog += 1
        self._pool().submit(self._run_sent, work, what)

    def _run_sent(self, work: Callable[[], object], what: str) -> None:
        try:
            work()
        except (peewee.PeeweeException, OSError) as exc:
            log.warning("%s: %s failed: %s", self.name, what, exc)
        except Exception:
            log.exception("%s: %s failed", self.name, what)
        finally:
            with self._lock:
                self._backlog -= 1

    async def close(self, last: Callable[[], object] | None = None) -> None:
        """Run `last` (then close the thread's connection) and stop the thread, waiting at
        most CLOSE_WAIT_SECONDS: a thread stuck on the database is left to end with it."""
        executor, self._executor = self._executor, None
        if executor is None:
            return

        def finish() -> None:
            try:
                if last is not None:
                    last()
            finally:
                if database_proxy.obj is not None:
                    close_database(database_proxy.obj)

        closing = executor.submit(finish)
        executor.shutdown(wait=False)
        try:
            await asyncio.wait_for(asyncio.wrap_future(closing), CLOSE_WAIT_SECONDS)
        except TimeoutError:
            log.warning(
                "%s: the database did not answer within %.0f s at stop; left to the database",
                self.name,
                CLOSE_WAIT_SECONDS,
            )


def _since(started: float) -> float:
    return time.monotonic() - started


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Retrieve a result nobody awaits, so that no 'exception was never retrieved' is logged."""
    if not future.cancelled():
        future.exception()
