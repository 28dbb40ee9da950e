"""Helpers of the central system's tests: a settable clock, event recording, bookings."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import peewee

from evcms_desktop.csms.events import CsmsEvent, EventKind
from evcms_desktop.csms.server import CentralSystem
from evcms_desktop.domain.plans import PlanKind
from evcms_desktop.domain.validation import PlanRequest
from evcms_desktop.store.bookings import BookingService
from evcms_desktop.store.models import Booking, ChargePoint, Connector, Station

T = TypeVar("T")


class FakeClock:
    """The central system's and the simulators' clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def run(coro: Awaitable[T], timeout: float = 30) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


@asynccontextmanager
async def running(cs: CentralSystem) -> AsyncIterator[CentralSystem]:
    await cs.start()
    try:
        yield cs
    finally:
        await cs.stop()


def url(cs: CentralSystem, scheme: str = "ws") -> str:
    return f"{scheme}://127.0.0.1:{cs.port}{cs.config.path_prefix}"


class Recorder:
    """Every event published on a bus, for assertions."""

    def __init__(self, cs: CentralSystem) -> None:
        self.events: list[CsmsEvent] = []
        cs.bus.subscribe(self.events.append)

    def kinds(self) -> list[EventKind]:
        return [e.kind for e in self.events if e.kind != EventKind.OCPP_MESSAGE]

    def of(self, kind: EventKind) -> list[CsmsEvent]:
        return [e for e in self.events if e.kind == kind]

    async def wait_for(self, kind: EventKind, timeout: float = 5) -> CsmsEvent:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.of(kind):
            if loop.time() > deadline:
                raise AssertionError(f"no {kind} event; got {self.kinds()}")
            await asyncio.sleep(0.01)
        return self.of(kind)[-1]


async def until(predicate: Any, timeout: float = 5) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


def connector(ident: str, number: int) -> Connector:
    return (
        Connector.select()
        .join(ChargePoint)
        .where((ChargePoint.ident == ident) & (Connector.number == number))
        .get()
    )


def book(
    db: peewee.SqliteDatabase,
    station: Station,
    clock: FakeClock,
    *,
    arrival: datetime | None = None,
    minutes: int = 30,
    energy_kwh: str = "8.8",
    ident: str = "CP-A",
    number: int = 1,
    kind: PlanKind | None = None,
) -> Booking:
    """A booking made through the domain service, on one chosen connector."""
    service = BookingService(db, station, clock=clock)
    outcome = service.plan(
        PlanRequest(
            arrival=arrival or clock(),
            duration=timedelta(minutes=minutes),
            energy_kwh=Decimal(energy_kwh),
            connector_id=connector(ident, number).id,
        )
    )
    plan = outcome.cheapest if kind is None else outcome.plan(kind)
    assert plan is not None, outcome.unavailable
    return service.confirm(outcome, plan)


async def raw_connect(cs: CentralSystem, ident: str = "CP-A", **kwargs: Any) -> Any:
    """A bare WebSocket client speaking ocpp1.6, for hand-made frames."""
    from websockets.asyncio.client import connect

    kwargs.setdefault("subprotocols", ["ocpp1.6"])
    return await connect(f"{url(cs)}/{ident}", **kwargs)


async def exchange(ws: Any, frame: str | bytes) -> Any:
    """Send one frame and return the decoded answer (calls of the central system, such
    as a booked start's TxProfile, are passed over unanswered)."""
    import json

    await ws.send(frame)
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if not (isinstance(message, list) and message[:1] == [2]):
            return message
