"""Starts the console (or the kiosk): one Qt application whose asyncio loop (qasync) also
runs the central system."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import faulthandler
import gc
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

import peewee
import qasync
from pyqtgraph.util.garbage_collector import GarbageCollector
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QIcon
from PySide6.QtWidgets import QApplication, QWidget

from evcms_desktop import APP_NAME
from evcms_desktop.app.config import (
    AppConfig,
    csms_config,
    first_site_name,
    log_path,
    selected_site,
)
from evcms_desktop.app.log_file import close_store_or_exit, log_to_file
from evcms_desktop.app.station_pc import InstanceGuard, enable_crash_log, previous_crash
from evcms_desktop.csms import charger_admin
from evcms_desktop.csms.commands import CommandResult, CommandService
from evcms_desktop.csms.events import EventBus
from evcms_desktop.csms.nodes import Attachment
from evcms_desktop.csms.server import CentralSystem, CsmsConfig
from evcms_desktop.store import driver_data, operators
from evcms_desktop.store.bookings import BookingService
from evcms_desktop.store.database import open_database
from evcms_desktop.store.models import Station, utcnow
from evcms_desktop.store.settings import server_settings
from evcms_desktop.store.stations import SiteError, find_station, list_stations
from evcms_desktop.ui.dialogs.help import StationFiles
from evcms_desktop.ui.dialogs.sign_in import SignInDialog
from evcms_desktop.ui.dialogs.startup import StartupChoice, console_settings, shown, startup_choice
from evcms_desktop.ui.kiosk import KioskWindow
from evcms_desktop.ui.main_window import WARNING_STYLE, MainWindow
from evcms_desktop.ui.roles import Credentials, Role, Session
from evcms_desktop.ui.theme import icon_path

log = logging.getLogger(__name__)

DRIVER_DATA_CHECK_MS = 3_600_000


async def start_central(
    config: AppConfig, db: peewee.SqliteDatabase, bus: EventBus
) -> tuple[CentralSystem | None, str, str]:
    """Start listening; a busy port leaves the console usable, and says so and where to
    change it."""
    central = CentralSystem(csms_config(config, server_settings()), db, bus)
    try:
        await central.start()
    except OSError as exc:
        log.error("The central system could not listen: %s", exc)
        return None, not_listening_text(central.config.port, exc), ""
    return central, f"Listening on {central.url(central.config.host)}/…", central.url()


def not_listening_text(port: int, exc: OSError) -> str:
    """One line for the status bar: why the central system is not listening, and where the
    port is changed (the command line's --port wins over Settings)."""
    reasons = {errno.EADDRINUSE: "address in use", errno.EACCES: "permission denied"}
    reason = reasons.get(exc.errno or 0) or str(exc.strerror or exc).lower()
    return f"Not listening on port {port}: {reason}; change it under Settings > Central system"


def security_warning(config: CsmsConfig) -> str:
    """What the operator must be told about how chargers are let in ("" when nothing)."""
    if config.security_profile == 0:
        return "Security profile 0: chargers connect without a password"
    return ""


class StationScreens(QObject):
    """The console and the kiosk over one central system: leaving the kiosk (its PIN) opens
    the console signed out, and the console's Kiosk mode goes back; the central system
    serves throughout. `closed` is emitted when the console is closed."""

    closed = Signal()

    def __init__(
        self,
        service: BookingService,
        bus: EventBus,
        session: Session,
        central: CentralSystem | None,
        server_text: str,
        url: str,
        files: StationFiles | None = None,
        commands: CommandService | None = None,
        sites: Sequence[Station] = (),
        scope: Callable[[str], tuple[Station, Sequence[Station]]] | None = None,
        listen: Callable[[], Awaitable[tuple[CentralSystem | None, str, str]]] | None = None,
    ) -> None:
        """`scope`: the site and the sites a person signed in by name sees; given, the
        console is built anew for each sign-in whose scope is not the one shown. Without a
        central system and without `commands` this is a station console whose central
        system could not listen: `listen` tries again after Settings are saved."""
        super().__init__()
        self.attached = central is None and commands is not None
        self.listen = listen
        self._listening: asyncio.Future[None] | None = None
        self.sites = sites  # every site the console sees, when it sees several
        self.scope = scope
        session.role_changed.connect(self._follow_sign_in)  # before any window's own slot
        self.commands = commands if central is None else console_commands(central, session)
        self.service, self.bus, self.session = service, bus, session
        self.central, self.server_text, self.url = central, server_text, url
        self.console: MainWindow | None = None
        self.kiosk: KioskWindow | None = None
        self.files: StationFiles | None = files
        # Drivers' details past the retention are blanked at start and every hour.
        self.retention = QTimer(self, interval=DRIVER_DATA_CHECK_MS)
        self.retention.timeout.connect(self.blank_expired_driver_data)
        self.retention.start()
        self.blank_expired_driver_data()

    @staticmethod
    def blank_expired_driver_data() -> None:
        driver_data.blank_expired(utcnow())

    def show_console(self) -> MainWindow:
        self.session.sign_out()
        if self.console is None:
            self._make_console()
        assert self.console is not None
        self.console.show()
        self.console.raise_()
        self.console.activateWindow()
        return self.console

    def bring_to_front(self) -> None:
        """A second console was started on this database: show this one instead."""
        window = self.kiosk or self.console
        if window is not None:
            window.show()
            window.raise_()
            window.activateWindow()

    def _follow_sign_in(self) -> None:
        """Whoever signs in sees their own sites at once, on every page: a console built
        for another scope is replaced by one built for theirs (its place and size kept),
        and what it had left to do after the sign-in is dropped."""
        name, old = self.session.operator, self.console
        if self.scope is None or name is None or old is None:
            return
        home, sites = self.scope(name)
        if (home.id, {s.id for s in sites}) == (
            self.service.station.id,
            {s.id for s in self.sites},
        ):
            return
        log.info("The console now shows %s's sites", name)
        self.service = BookingService(self.service.db, home, clock=self.service.clock)
        self.sites = sites
        self._replace_console(old)

    def _make_console(self) -> None:
        central = self.central
        self.console = MainWindow(
            self.service,
            self.bus,
            self.session,
            commands=self.commands,
            clock=self.service.clock,
            approver=central.approve if central else charger_admin.approve,
            server_text=self.server_text,
            ocpp_url=self.url,
            security_warning=security_warning(central.config) if central else "",
            sites=self.sites,
            needs_sign_in=self.attached,
            listening_port=central.port if central else None,
            attached=self.attached,
        )
        if central is not None:
            self.console.actions.transfers = central.transfers
        elif not self.attached:
            self.console.server_label.setStyleSheet(WARNING_STYLE)
            self.console.settings.saved.connect(self._listen_again)
        fit_to_screen(self.console)
        self.console.closed.connect(self.closed)
        self.console.kiosk_wanted.connect(self.show_kiosk)
        if self.files is not None:
            self.console.set_files(self.files)

    def _listen_again(self) -> None:
        """Settings saved while the central system is not listening: try again with them,
        and on success give the console the central system (a new console, in place)."""
        if self.listen is None or self.central is not None:
            return
        listen = self.listen

        async def go() -> None:
            central, text, url = await listen()
            old = self.console
            if central is None or old is None or self.central is not None:
                if old is not None:
                    old.server_label.setText(text)
                if central is not None:
                    await central.stop()
                return
            self.central, self.server_text, self.url = central, text, url
            self.commands = console_commands(central, self.session)
            self._replace_console(old)
            log.info("The central system listens now: %s", text)

        self._listening = asyncio.ensure_future(go())

    def _replace_console(self, old: MainWindow) -> None:
        """A console built anew in place of `old` (its place and size kept)."""
        old.closed.disconnect(self.closed)
        old.kiosk_wanted.disconnect(self.show_kiosk)
        self._make_console()
        assert self.console is not None
        self.console.setGeometry(old.geometry())
        self.console.show()
        old.quit_confirmed = True
        old.close()
        old.deleteLater()

    def show_kiosk(self) -> KioskWindow:
        self.session.sign_out()
        self.kiosk = KioskWindow(self.service, self.session.credentials)
        self.kiosk.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.kiosk.closed.connect(self._kiosk_left)
        show_full_screen(self.kiosk)
        if self.console is not None:
            self.console.hide()
        log.info("Kiosk mode on")
        return self.kiosk

    def close_all(self) -> None:
        """Close every window without asking (the program is ending on a signal): a window
        left open would go on reading the store on its timers."""
        self.retention.stop()
        if self.kiosk is not None:
            self.kiosk.closed.disconnect(self._kiosk_left)
            self.kiosk.unlocked = True
            self.kiosk.close()
            self.kiosk = None
        if self.console is not None:
            self.console.closed.disconnect(self.closed)
            self.console.quit_confirmed = True
            self.console.close()
            self.console.deleteLater()
            self.console = None

    def _kiosk_left(self) -> None:
        self.kiosk = None
        log.info("Kiosk mode left; the console is open, signed out")
        self.show_console()


def console_commands(central: CentralSystem, session: Session) -> CommandService:
    """The central system's commands, with the name of whoever is signed in at the console
    on those queued for a charger held by another node (which checks their role); never
    the system's, even with nobody signed in."""

    async def route(ident: str, payload: Any, timeout: float) -> CommandResult | None:
        return await central.presence.route(
            ident, payload, timeout, operator=session.operator, from_console=True
        )

    return CommandService(central.session, central.commands.timeout, route=route)


def fit_to_screen(window: QWidget) -> None:
    """No larger than the screen's free area, where it starts: a bare X server (no window
    manager, as on many station PCs) leaves a window that overflows the screen clipped."""
    screen = window.screen() or QGuiApplication.primaryScreen()
    if screen is None:
        return
    free = screen.availableGeometry()
    if window.width() > free.width() or window.height() > free.height():
        window.resize(window.size().boundedTo(free.size()))
        window.move(free.topLeft())


def show_full_screen(window: QWidget) -> None:
    """Full screen also without a window manager (a bare X server ignores the request)."""
    screen = window.screen() or QGuiApplication.primaryScreen()
    if screen is not None:
        window.setGeometry(screen.geometry())
    window.showFullScreen()


class AttachError(Exception):
    """Why a console cannot attach; said in one line."""


async def attach_to(
    db: peewee.Database, operator: str, password: str, bus: EventBus
) -> tuple[Attachment, Role]:
    """Sign the operator in and hear the deployment's events on `bus`."""
    _check_deployment(db)
    try:
        role = operators.sign_in(operator, password)
    except operators.SignInLocked as exc:
        raise AttachError(str(exc)) from None
    if role is None:
        raise AttachError(f"Wrong name or password for {operator[:40]!r}.")
    return await attach_as(db, operator, bus), role


def _check_deployment(db: peewee.Database) -> None:
    if not isinstance(db, peewee.PostgresqlDatabase):
        raise AttachError("--attach needs the deployment's PostgreSQL --db (postgresql://...)")
    if not operators.any_operator():
        raise AttachError(
            "No operator may sign in to this deployment yet: add one with"
            " `evcms-desktop --db URL operators add NAME --role operator --password prompt`."
        )


async def attach_as(db: peewee.PostgresqlDatabase, operator: str, bus: EventBus) -> Attachment:
    """Hear the deployment's events on `bus`, sending commands as `operator` (signed in)."""
    attachment = Attachment(db, f"{socket.gethostname()}:{os.getpid()}", operator, bus.publish)
    await attachment.start()
    return attachment


def follow_sign_in(session: Session, attachment: Attachment) -> None:
    """The attachment's commands carry whoever is signed in at the window now; nobody after
    a sign-out (the nodes decide what such a command may do)."""
    session.role_changed.connect(lambda _: attachment.sign_in_as(session.operator))


async def serve_attached(
    app: QApplication, config: AppConfig, db: peewee.Database, operator: str
) -> int:
    """The console of a remote deployment: the same windows, fed by its nodes' events,
    every command routed through the command queue (see `csms.nodes.Attachment`), each
    with the name of the operator signed in at the window (see `ui.roles.Session`)."""
    started = asyncio.all_tasks()
    try:
        _check_deployment(db)
    except AttachError as exc:
        log.error("%s", exc)
        sys.stderr.write(f"evcms-desktop: {exc}\n")
        return 1
    assert isinstance(db, peewee.PostgresqlDatabase)
    session = Session(Credentials())
    first = SignInDialog(session, "Sign in to attach to the deployment.", name=operator, named=True)
    if not await shown(first) or session.operator is None:
        return 1
    try:
        home, sites = _attached_sites(config, session.operator)
    except (AttachError, SiteError) as exc:
        log.error("%s", exc)
        sys.stderr.write(f"evcms-desktop: {exc}\n")
        return 1
    bus = EventBus()
    attachment = await attach_as(db, session.operator, bus)
    screens = attached_screens(
        config, BookingService(db, home), sites, session, bus, attachment.commands
    )
    closed = asyncio.Event()
    screens.closed.connect(closed.set)
    name, role = session.operator, session.role
    screens.show_console()  # opens signed out: sign in again as whoever signed in above
    session.sign_in_as(name, role)
    follow_sign_in(session, attachment)
    watcher = SignalWatch(app, closed)
    log.info("Console attached to %s as %s", config.database, name)
    await closed.wait()
    status = watcher.stop()
    screens.close_all()
    await attachment.stop()
    await end_tasks_since(started)
    return status


def attached_screens(
    config: AppConfig,
    service: BookingService,
    sites: Sequence[Station],
    session: Session,
    bus: EventBus,
    commands: CommandService,
) -> StationScreens:
    """The windows of an attached console, opened on `service`'s site (and `sites`, the
    scope of whoever signed in first). Without --site they show the sites of whoever is
    signed in now: someone bound to a site that site, anyone else every site."""
    text = "Attached to the deployment; no central system here"
    if config.site:  # that site's console, whoever signs in; another site's people may not
        session.sites = frozenset({service.station.id})
        return StationScreens(service, bus, session, None, text, "", commands=commands)
    session.sites = None  # anyone may sign in: the windows follow them
    return StationScreens(
        service,
        bus,
        session,
        None,
        text,
        "",
        commands=commands,
        sites=sites,
        scope=lambda name: _attached_sites(config, name),
    )


def _attached_sites(config: AppConfig, operator: str) -> tuple[Station, list[Station]]:
    """The site an attached console works on and every site it shows (none but that one
    when the list is empty). Someone bound to a site sees that site only, and may not
    name another with --site; anyone else sees every site unless --site names one."""
    bound = operators.site_of(operator)
    if bound is None:
        return selected_site(config), [] if config.site else list_stations()
    home = Station.get_by_id(bound)
    if config.site and find_station(config.site).id != home.id:
        raise AttachError(
            f"{operator} works at site {home.name!r} only; --site {config.site[:40]!r} is refused."
        )
    return home, []


async def serve_window(
    app: QApplication,
    config: AppConfig,
    db: peewee.SqliteDatabase,
    kiosk: bool,
    guard: InstanceGuard | None = None,
    files: StationFiles | None = None,
) -> int:
    started = asyncio.all_tasks()
    station = selected_site(config)
    service = BookingService(db, station)
    credentials = Credentials()
    session = Session(credentials)
    session.sites = frozenset({station.id})
    if kiosk and not credentials.has_kiosk_pin(station.id):
        log.error(
            "The kiosk needs a kiosk PIN (digits, for the touch keypad): open the console,"
            " sign in as operator and set it under Settings > Kiosk."
        )
        return 2
    bus = EventBus()
    central, server_text, url = await start_central(config, db, bus)
    screens = StationScreens(
        service,
        bus,
        session,
        central,
        server_text,
        url,
        files,
        listen=lambda: start_central(config, db, bus),
    )
    if guard is not None:
        guard.raise_requested.connect(screens.bring_to_front)
    closed = asyncio.Event()
    screens.closed.connect(closed.set)
    if kiosk:
        screens.show_kiosk()
    else:
        window = screens.show_console()
        if not credentials.has_operator_password() and not operators.any_operator():
            first = SignInDialog(session, parent=window)  # choose the station's password
            first.open()
    watcher = SignalWatch(app, closed)
    log.info("%s open on %s", "Kiosk" if kiosk else "Console", config.database)
    await closed.wait()
    status = watcher.stop()
    screens.close_all()
    if screens.central is not None:
        await screens.central.stop()
    await end_tasks_since(started)
    return status


class SignalWatch:
    """Ctrl-C and SIGTERM end the console as closing its window does, central system
    included; `received` is the signal that did, for the exit status of a terminated
    program (128 + its number).

    Python runs signal handlers only between its own bytecodes; the idle timer gives it
    that chance while Qt's loop waits.
    """

    def __init__(self, app: QApplication, closed: asyncio.Event) -> None:
        self.received: int | None = None
        loop = asyncio.get_running_loop()

        def handle(number: int, _frame: object) -> None:
            if self.received is None:
                self.received = number
            loop.call_soon_threadsafe(closed.set)

        self.previous = {n: signal.signal(n, handle) for n in (signal.SIGINT, signal.SIGTERM)}
        self.timer = QTimer(app)
        self.timer.timeout.connect(lambda: None)
        self.timer.start(250)

    def stop(self) -> int:
        """Stop watching; the exit status: 0, or that of a program ended by the signal."""
        self.timer.stop()
        for number, handler in self.previous.items():
            signal.signal(number, handler)
        if self.received is None:
            return 0
        log.info("Ending on %s", signal.Signals(self.received).name)
        return 128 + self.received


async def end_tasks_since(started: set[asyncio.Task[Any]]) -> None:
    """Cancel the tasks started since `started` (a sign-in checking a password, a command
    awaiting its answer) and let them finish while their windows still exist: a task left
    pending is destroyed with the loop and says so in tracebacks."""
    current = asyncio.current_task()
    pending = [
        t for t in asyncio.all_tasks() if t is not current and t not in started and not t.done()
    ]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


@contextlib.contextmanager
def collected_on_gui_thread() -> Iterator[GarbageCollector]:
    """Python's cyclic garbage is collected by a GUI-thread timer while the console runs.

    A Qt object caught in a reference cycle is destroyed only by the collector, on whichever
    thread happens to trigger it; the console has worker threads (the store's writer, the
    schedule), and a Qt object destroyed there crashes the next event. pyqtgraph's collector
    turns automatic collection off and collects on a timer in the GUI thread instead.
    """
    collector = GarbageCollector(interval=1.0)
    try:
        yield collector
    finally:
        collector.timer.stop()
        gc.collect()
        gc.enable()


def instance_key(config: AppConfig) -> str:
    """One console per database (and site): an SQLite file by its full path."""
    target = config.database
    where = str(target.path.resolve()) if target.path is not None else str(target)
    return f"{where}|{config.site or ''}"


async def serve_console(
    app: QApplication,
    config: AppConfig,
    db: peewee.Database,
    how: StartupChoice | None,
    attach: str,
    choose: bool,
    guard: InstanceGuard,
    files: StationFiles,
) -> int:
    """The console as `how` says; on a deployment's PostgreSQL without it, as its user
    chooses in the start-up dialog (or chose before and asked to remember). A station PC's
    SQLite file runs the central system here, without asking."""
    if how is None and config.database.engine == "postgresql":
        how = await startup_choice(str(config.database), console_settings(), ask_again=choose)
        if how is None:
            return 1
    if how is StartupChoice.ATTACH:
        return await serve_attached(app, config, db, attach)
    return await serve_window(app, config, db, False, guard, files)


def run_console(
    config: AppConfig,
    *,
    kiosk: bool = False,
    attach: str | None = None,
    run_here: bool = False,
    choose: bool = False,
) -> int:
    """`attach`: the operator's name to sign in with ("" to type it); `run_here` and
    `attach` skip the start-up choice, `choose` asks it again."""
    app = QApplication.instance() or QApplication(sys.argv)
    assert isinstance(app, QApplication)
    app.setApplicationName(APP_NAME)
    app.setDesktopFileName("evcms-desktop")
    app.setQuitOnLastWindowClosed(False)  # the loop ends after the central system stopped
    if (icon := icon_path()) is not None:
        app.setWindowIcon(QIcon(str(icon)))
    guard = InstanceGuard(instance_key(config))
    if not guard.acquire():
        sys.stderr.write(
            f"evcms-desktop: a console is already running on {config.database};"
            " it was brought to the front.\n"
        )
        return 3
    data_dir = config.data_dir
    crash = previous_crash(data_dir)
    crash_stream = enable_crash_log(data_dir)
    files = StationFiles(str(config.database), data_dir, log_to_file(log_path(config)), crash)
    if crash:
        log.warning("The last run stopped unexpectedly; its crash report is in Help")
    db = open_database(config.database, station_name=first_site_name(config))
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    try:
        with loop, collected_on_gui_thread():
            if kiosk:
                return loop.run_until_complete(serve_window(app, config, db, True, guard, files))
            how = (
                StartupChoice.ATTACH
                if attach is not None
                else StartupChoice.RUN_HERE
                if run_here
                else None
            )
            console = serve_console(app, config, db, how, attach or "", choose, guard, files)
            return loop.run_until_complete(console)
    finally:
        guard.release()
        close_store_or_exit(db)
        if crash_stream is not None:
            faulthandler.disable()
            crash_stream.close()
