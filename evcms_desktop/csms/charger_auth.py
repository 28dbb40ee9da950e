"""Who may connect: the charger must be known (or Pending when unknown ones are accepted),
and from security profile 1 it must give its own id and password by HTTP Basic auth.

Passwords are checked in a small pool of threads (`CsmsConfig.password_checks`), never on
the loop. An unknown id is checked against a dummy hash, so that it costs what a known one
costs and ids cannot be told apart by timing.

Wrong passwords are counted per source address, per (charger id, address) and per charger
id. An address, and an address trying one id, first waits a doubling delay and is then
locked out for a while (HTTP 429 with Retry-After): the lockout hits whoever guesses. An
id alone only makes its next attempts wait, and only those from addresses that have
failed: the real charger, from an address with no failures, is never held out by someone
who knows its id (its password is a 16-40 character machine secret, so online guessing is
hopeless anyway and its availability matters more). A known charger's lockout is stored
(`ChargePoint.locked_until`, the address in its event) so that the operator sees it and
can lift it (`charger_admin.unlock`), and so that it survives a restart.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import logging
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Any, TypeVar

import peewee
from websockets.http11 import Request

from evcms_desktop.csms import charger_admin
from evcms_desktop.csms.config import Clock, CsmsConfig
from evcms_desktop.csms.events import EventKind, Publish
from evcms_desktop.csms.refusals import RefusedHandshakes
from evcms_desktop.csms.writer import StoreUnavailable
from evcms_desktop.domain.text import log_safe
from evcms_desktop.store.database import close_database
from evcms_desktop.store.models import ChargePoint, ChargePointState, database_proxy
from evcms_desktop.store.notices import lockouts_since
from evcms_desktop.store.stations import charge_point_with_station

log = logging.getLogger(__name__)

T = TypeVar("T")
# Store work run on the writer's thread (BatchWriter.run): the loop never waits on a lock.
StoreJob = Callable[[Callable[[], Any], str], Awaitable[Any]]
ADDRESSES_PER_ID = 8  # the addresses remembered with an id's failures, lifted with it
CLOSE_WAIT_SECONDS = 5.0  # at the pool's end, for a thread still busy with a check


@dataclass(frozen=True)
class Verdict:
    refused: HTTPStatus | None  # NOT_FOUND, UNAUTHORIZED or TOO_MANY_REQUESTS; None: in
    password_hash: str | None = None  # of what it offered, for a Pending charger's record
    retry_after: int | None = None  # seconds, with TOO_MANY_REQUESTS
    charge_point: ChargePoint | None = None  # as read for the check (with its station)


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """The user and password of one `Authorization: Basic` header, or None (also when the
    request has two: which one counts would be a guess)."""
    headers = request.headers.get_all("Authorization")
    if len(headers) != 1:
        return None
    header = headers[0]
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


@dataclass
class Failures:
    count: int
    last: datetime
    retry_at: datetime | None = None  # no attempt is checked before this
    locked: bool = False
    addresses: list[str] = field(default_factory=list)


class FailureTable:
    """Recent failed attempts by key (a charger id or an address): at most `capacity`
    keys, the oldest dropped first; a key quiet for `forget_after` is forgotten."""

    def __init__(
        self,
        free: int,
        lock_after: int | None,  # None: a growing delay only, never a lockout
        max_delay: timedelta,
        lockout: timedelta,
        forget_after: timedelta,
        capacity: int,
    ) -> None:
        self.free = free
        self.lock_after = lock_after
        self.max_delay = max_delay
        self.lockout = lockout
        self.forget_after = forget_after
        self.capacity = capacity
        self._entries: OrderedDict[str, Failures] = OrderedDict()  # oldest failure first

    def __len__(self) -> int:
        return len(self._entries)

    def _expired(self, entry: Failures, now: datetime) -> bool:
        if entry.retry_at is not None and now < entry.retry_at:
            return False
        return entry.locked or now - entry.last >= self.forget_after

    def get(self, key: str, now: datetime) -> Failures | None:
        entry = self._entries.get(key)
        if entry is not None and self._expired(entry, now):
            del self._entries[key]
            return None
        return entry

    def retry_at(self, key: str, now: datetime) -> datetime | None:
        """When `key` may try again, if not now."""
        entry = self.get(key, now)
        if entry is None or entry.retry_at is None or entry.retry_at <= now:
            return None
        return entry.retry_at

    def failed(self, key: str, now: datetime) -> Failures:
        """Count a failure; the entry says whether it now waits or is locked."""
        entry = self.get(key, now)
        if entry is None:
            entry = self._entries[key] = Failures(0, now)
        entry.count += 1
        entry.last = now
        self._entries.move_to_end(key)
        if self.lock_after is not None and entry.count >= self.lock_after:
            entry.locked = True
            entry.retry_at = now + self.lockout
        elif entry.count > self.free:
            delay = timedelta(seconds=2 ** (entry.count - self.free - 1))
            entry.retry_at = now + min(delay, self.max_delay)
        while self._entries:
            oldest_key, oldest = next(iter(self._entries.items()))
            if len(self._entries) <= self.capacity and not self._expired(oldest, now):
                break
            del self._entries[oldest_key]
        return entry

    def lock(self, key: str, until: datetime, now: datetime) -> None:
        """Lock `key` until then (a lockout stored before a restart)."""
        count = self.lock_after if self.lock_after is not None else self.free + 1
        self._entries[key] = Failures(count, now, until, locked=True)
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            del self._entries[next(iter(self._entries))]

    def lift(self, key: str) -> Failures | None:
        return self._entries.pop(key, None)


def _pair(ident: str, address: str) -> str:
    return f"{address} {ident}"  # an address has no space; an id may be anything


# A handshake's store read waits this long for a lock another session holds (PostgreSQL's
# lock_timeout), and a second more for an answer; then the handshake gets 503 Retry-After.
HANDSHAKE_READ_SECONDS = 2.0


def peer_address(peer: Any) -> str:
    """The host of a connection's remote address."""
    return str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)


class ChargerAuth:
    def __init__(
        self,
        config: CsmsConfig,
        publish: Publish,
        clock: Clock,
        store: StoreJob,
        refusals: RefusedHandshakes | None = None,
    ) -> None:
        self.config = config
        self.refusals = RefusedHandshakes(log) if refusals is None else refusals
        self._store = store
        self.security_profile = config.security_profile
        self.accept_unknown = config.accept_unknown
        self._publish = publish
        self._clock = clock
        tables = {
            "max_delay": config.auth_max_delay,
            "lockout": config.auth_lockout,
            "forget_after": config.auth_forget_after,
            "capacity": config.auth_table_size,
        }
        factor = config.auth_address_factor
        free, lock_after = config.auth_free_failures, config.auth_lock_after
        self.ids = FailureTable(free, None, **tables)  # a delay for failed addresses only
        self.pairs = FailureTable(free, lock_after, **tables)  # (id, address)
        self.addresses = FailureTable(free * factor, lock_after * factor, **tables)
        # Known chargers with a stored lockout: the addresses it holds out (bounded by the
        # chargers in the store); read back from the events after a restart.
        self._locked: dict[str, set[str]] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._pool_threads: set[int] = set()  # the pool's threads so far (each a connection)
        self._bounded_threads: set[int] = set()  # those whose lock waits are bounded

    async def close(self) -> None:
        """End the check pool, closing each thread's store connection (peewee keeps one per
        thread; left to the garbage collector, every start and stop would leave them open)."""
        executor, self._executor = self._executor, None
        threads, self._pool_threads = len(self._pool_threads), set()
        self._bounded_threads = set()
        if executor is None:
            return
        # One closer per thread the pool started: each waits at the barrier until all have
        # one, so that no thread takes two.
        barrier = threading.Barrier(max(1, threads))

        def close_this_thread() -> None:
            try:
                barrier.wait(timeout=CLOSE_WAIT_SECONDS)
            except threading.BrokenBarrierError:
                pass
            finally:
                try:
                    if database_proxy.obj is not None:
                        close_database(database_proxy.obj)
                except peewee.PeeweeException as exc:
                    log.warning("Could not close a password check's store connection: %s", exc)

        closers = [executor.submit(close_this_thread) for _ in range(threads)]
        executor.shutdown(wait=False)
        await asyncio.gather(*(asyncio.wrap_future(c) for c in closers), return_exceptions=True)

    def _in_pool(self, work: Callable[..., T], *args: Any) -> T:
        thread = threading.get_ident()
        self._pool_threads.add(thread)
        db = database_proxy.obj
        if thread not in self._bounded_threads and isinstance(db, peewee.PostgresqlDatabase):
            db.execute_sql(f"SET lock_timeout = {int(HANDSHAKE_READ_SECONDS * 1000)}")
            self._bounded_threads.add(thread)  # SQLite's reads (WAL) wait for no lock
        return work(*args)

    async def _off_loop(self, work: Callable[..., T], *args: Any) -> T:
        """Run password hashing and the handshake's store reads in the bounded pool
        (hashlib and SQLite let go of the GIL)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=max(1, self.config.password_checks),
                thread_name_prefix="password-check",
            )
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._in_pool, work, *args)

    async def _read(self, query: Callable[[], T], what: str) -> T:
        """A handshake's store read, in the check pool (each thread has its own
        connection): the loop never waits on the store. StoreUnavailable when it fails."""
        try:
            return await asyncio.wait_for(self._off_loop(query), HANDSHAKE_READ_SECONDS + 1.0)
        except TimeoutError as exc:  # a stalled database: the thread is let go on
            raise StoreUnavailable(f"{what}: no answer within the bound") from exc
        except (peewee.PeeweeException, sqlite3.Error) as exc:
            raise StoreUnavailable(f"{what}: {exc}") from exc

    async def check(self, ident: str, request: Request, peer: Any) -> Verdict:
        """May `ident` connect with this handshake request? StoreUnavailable when the
        store cannot be read."""
        cp = await self._read(lambda: charge_point_with_station(ident), "reading the charger")
        known = cp is not None and cp.state != ChargePointState.REMOVED
        address = peer_address(peer)
        # Logged in bounded lines; failed logins hold an address by their own counts.
        refused = functools.partial(self.refusals.refused, address, hold=False)
        if self.security_profile == 0:
            if known or (self.accept_unknown and cp is None):
                return Verdict(None, charge_point=cp)
            refused("Refused unknown charge point %s from %s", ident, peer, hold=True)
            return Verdict(HTTPStatus.NOT_FOUND)
        now = self._clock()
        if known and cp is not None:
            await self._follow_stored_lock(cp, now)
        waits = [
            self.addresses.retry_at(address, now),
            self.pairs.retry_at(_pair(ident, address), now),
        ]
        if self.addresses.get(address, now) is not None:  # an address that failed before
            waits.append(self.ids.retry_at(ident, now))
        retry_at = max((w for w in waits if w is not None), default=None)
        if retry_at is not None:
            seconds = max(1, int((retry_at - now).total_seconds() + 0.999))
            refused(
                "Refused %s from %s: too many wrong passwords; next attempt in %d s",
                ident,
                peer,
                seconds,
            )
            return Verdict(HTTPStatus.TOO_MANY_REQUESTS, retry_after=seconds)
        credentials = basic_credentials(request)
        if cp is None and self.accept_unknown:
            return await self._admit_unknown(ident, credentials, peer)
        if credentials is None or credentials[0] != ident:
            refused("Refused %s from %s: no or wrong Basic credentials", ident, peer)
            await self._failed(ident, address, cp if known else None, now)
            return Verdict(HTTPStatus.UNAUTHORIZED)
        password = credentials[1]
        stored = cp.password_hash if known and cp is not None else None
        ok = await self._off_loop(
            charger_admin.verify_password, stored or charger_admin.DUMMY_HASH, password
        )
        if not (ok and stored):
            if known:
                refused("Refused %s from %s: wrong password", ident, peer)
            else:
                refused("Refused unknown charge point %s from %s", ident, peer)
            await self._failed(ident, address, cp if known else None, now)
            return Verdict(HTTPStatus.UNAUTHORIZED)
        self.ids.lift(ident)
        self.pairs.lift(_pair(ident, address))
        assert cp is not None
        if charger_admin.needs_rehash(stored):
            await self._rehash(cp, stored, password)
        return Verdict(None, charge_point=cp)

    async def _admit_unknown(
        self, ident: str, credentials: tuple[str, str] | None, peer: Any
    ) -> Verdict:
        refused = functools.partial(self.refusals.refused, peer_address(peer), hold=False)
        if credentials is None or credentials[0] != ident:
            refused("Refused %s from %s: no or wrong Basic credentials", ident, peer)
            return Verdict(HTTPStatus.UNAUTHORIZED)
        waiting = ChargePoint.select().where(ChargePoint.state == ChargePointState.PENDING)
        if await self._read(waiting.count, "counting pending chargers") >= self.config.max_pending:
            refused(
                "Refused unknown charge point %s from %s: %d chargers wait for approval"
                " already (max_pending); approve or remove some",
                ident,
                peer,
                self.config.max_pending,
            )
            return Verdict(HTTPStatus.UNAUTHORIZED)
        try:
            password_hash = await self._off_loop(charger_admin.hash_password, credentials[1])
        except charger_admin.ChargerAdminError as exc:
            refused("Refused unknown charge point %s from %s: %s", ident, peer, exc)
            return Verdict(HTTPStatus.UNAUTHORIZED)
        return Verdict(None, password_hash)

    async def _rehash(self, cp: ChargePoint, old: str, password: str) -> None:
        """Replace an older hash (Argon2) by the current scheme, now that it matched."""
        new = await self._off_loop(charger_admin.hash_password, password)
        query = ChargePoint.update(password_hash=new).where(
            (ChargePoint.id == cp.id) & (ChargePoint.password_hash == old)
        )
        try:
            await self._store(query.execute, f"{cp.ident} password hash")
        except (StoreUnavailable, peewee.PeeweeException) as exc:
            log.warning("Could not store %s's new password hash (next login): %s", cp.ident, exc)
            return
        log.info("Password hash of %s moved to %s", cp.ident, charger_admin.PBKDF2_SCHEME)

    async def _follow_stored_lock(self, cp: ChargePoint, now: datetime) -> None:
        """Keep the in-memory lockouts of a known charger in step with the stored one: lifted
        by the operator when it is gone; read back from its events after a restart."""
        stored, ident = cp.locked_until, cp.ident
        if stored is None:
            if ident in self._locked:
                self._lifted(ident)
            return
        if ident in self._locked or stored <= now:
            return
        since = now - self.config.auth_lockout
        events = await self._read(
            lambda: lockouts_since(EventKind.CHARGER_LOCKED_OUT.value, ident, since),
            "reading the charger's lockouts",
        )
        held: set[str] = set()
        for event in events:
            data = event.data if isinstance(event.data, dict) else {}
            address, until = data.get("address"), data.get("until")
            try:
                until_at = datetime.fromisoformat(until) if isinstance(until, str) else None
            except ValueError:
                until_at = None
            if isinstance(address, str) and until_at is not None and until_at > now:
                self.pairs.lock(_pair(ident, address), min(until_at, stored), now)
                held.add(address)
        self._locked[ident] = held

    async def _failed(
        self, ident: str, address: str, cp: ChargePoint | None, now: datetime
    ) -> None:
        by_address = self.addresses.failed(address, now)
        if by_address.locked and by_address.count == self.addresses.lock_after:
            self._announce(f"address {address}", by_address, None, {"address": address})
        by_id = self.ids.failed(ident, now)
        if address not in by_id.addresses:
            by_id.addresses = [*by_id.addresses[-(ADDRESSES_PER_ID - 1) :], address]
        by_pair = self.pairs.failed(_pair(ident, address), now)
        if not by_pair.locked or by_pair.count != self.pairs.lock_after:
            return
        who = f"{ident if cp else f'unknown id {log_safe(ident)}'}: address {address}"
        if cp is None:  # an unknown id: told, but nothing to show in the charger list
            self._announce(who, by_pair, None, {"ident": ident, "address": address})
            return
        self._locked.setdefault(ident, set()).add(address)
        query = ChargePoint.update(locked_until=by_pair.retry_at).where(ChargePoint.id == cp.id)
        try:  # in memory already; stored for the charger list and restarts
            await self._store(query.execute, f"{ident} lockout")
        except (StoreUnavailable, peewee.PeeweeException) as exc:
            log.warning("Could not store the lockout of %s: %s", ident, exc)
        self._announce(who, by_pair, ident, {"address": address})

    def _announce(self, who: str, entry: Failures, ident: str | None, data: dict[str, Any]) -> None:
        assert entry.retry_at is not None
        until = entry.retry_at.strftime("%H:%M UTC")
        message = f"{who} locked out until {until} after {entry.count} failed logins"
        log.warning("%s", message)
        self._publish(
            EventKind.CHARGER_LOCKED_OUT,
            message,
            ident,
            data={**data, "until": entry.retry_at.isoformat(), "failures": entry.count},
        )

    def _lifted(self, ident: str) -> None:
        """The operator lifted `ident`'s lockout: its addresses are counted from zero."""
        addresses = self._locked.pop(ident, set())
        entry = self.ids.lift(ident)
        if entry is not None:
            addresses.update(entry.addresses)
        for address in addresses:
            self.pairs.lift(_pair(ident, address))
            self.addresses.lift(address)
        log.info("Lockout of %s lifted by the operator", ident)
