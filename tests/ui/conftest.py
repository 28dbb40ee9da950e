"""UI fixtures: a booking service on the test clock, and an asyncio loop run by Qt (qasync)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
import qasync
from argon2 import PasswordHasher

from evcms_desktop.csms.events import EventBus
from evcms_desktop.csms.server import CentralSystem, CsmsConfig
from evcms_desktop.store.bookings import BookingService
from evcms_desktop.store.models import Setting, Station
from evcms_desktop.ui.main_window import MainWindow
from evcms_desktop.ui.roles import OPERATOR_KEY, Credentials, Session
from tests.conftest import NOW


@pytest.fixture
def clock():
    return lambda: NOW


@pytest.fixture
def service(db, station: Station, clock) -> BookingService:
    return BookingService(db, station, clock=clock)


@pytest.fixture
def credentials() -> Credentials:
    """Cheap Argon2 parameters: the tests check the flow, not the cost."""
    return Credentials(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture(scope="session")
def _qt_asyncio_loop(qapp) -> Iterator[asyncio.AbstractEventLoop]:
    """One qasync loop for the session, driven by Qt's own event processing.

    It is never stopped: stopping calls QApplication.exit(), which would end the next
    nested event loop pytest-qt starts.
    """
    loop = qasync.QEventLoop(qapp, already_running=True)
    asyncio.events._set_running_loop(None)
    executor = ThreadPoolExecutor(max_workers=4)
    loop.set_default_executor(executor)
    yield loop
    executor.shutdown(wait=True)


@pytest.fixture
def qloop(_qt_asyncio_loop, qtbot) -> Iterator[asyncio.AbstractEventLoop]:
    """The running asyncio loop for one test (qtbot.waitUntil and waitSignal drive it)."""
    loop = _qt_asyncio_loop
    asyncio.set_event_loop(loop)
    asyncio.events._set_running_loop(loop)
    yield loop
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    qtbot.waitUntil(lambda: all(t.done() for t in pending), timeout=5000)
    asyncio.events._set_running_loop(None)
    asyncio.set_event_loop(None)


@dataclass
class FakeResult:
    status: str
    ok: bool
    detail: str = ""


@dataclass
class FakeCommands:
    """Stands in for the CommandService where no charger is needed; records the calls."""

    answer: str = "Accepted"
    calls: list[tuple] = field(default_factory=list)

    async def _answer(self, *call: object) -> FakeResult:
        self.calls.append(call)
        return FakeResult(self.answer, self.answer == "Accepted")

    async def remote_start(self, cp_id, id_tag, connector_id=None):
        return await self._answer("remote_start", cp_id, id_tag, connector_id)

    async def remote_stop(self, cp_id, transaction_id):
        return await self._answer("remote_stop", cp_id, transaction_id)

    async def reset(self, cp_id, kind="Soft"):
        return await self._answer("reset", cp_id, kind)

    async def unlock_connector(self, cp_id, connector_id):
        return await self._answer("unlock", cp_id, connector_id)

    async def change_availability(self, cp_id, connector_id, kind):
        return await self._answer("availability", cp_id, connector_id, kind)


OPERATOR_PASSWORD = "correct horse battery"


@pytest.fixture
def operator_password(db, credentials: Credentials) -> str:
    Setting.insert(key=OPERATOR_KEY, value=credentials.hasher.hash(OPERATOR_PASSWORD)).execute()
    return OPERATOR_PASSWORD


@pytest.fixture
def bus() -> EventBus:
    return EventBus()


@pytest.fixture
def window_factory(qtbot, service, bus, credentials, clock):
    def make(commands=None) -> MainWindow:
        window = MainWindow(service, bus, Session(credentials), commands=commands, clock=clock)
        qtbot.addWidget(window)
        window.show()
        return window

    return make


def run(qtbot, coro, timeout: int = 10_000):
    """Run a coroutine on the Qt-driven loop and wait for its result, Qt events flowing."""
    task = asyncio.ensure_future(coro)
    qtbot.waitUntil(task.done, timeout=timeout)
    return task.result()


@pytest.fixture
def central(qtbot, qloop, db, station, bus, tmp_path) -> Iterator[CentralSystem]:
    """The real central system on a free local port, in the test's loop."""
    config = CsmsConfig(data_dir=tmp_path, host="127.0.0.1", port=0, probe_features=False)
    system = CentralSystem(config, db, bus)
    run(qtbot, system.start())
    yield system
    run(qtbot, system.stop())
