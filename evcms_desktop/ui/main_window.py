"""The operator console's main window: tabs over one station, fed by the central system's events."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QShowEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QListView,
    QMainWindow,
    QPushButton,
    QStackedWidget,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from evcms_desktop import APP_NAME
from evcms_desktop.csms.events import CsmsEvent, EventBus, EventKind
from evcms_desktop.csms.protocol import websocket_url
from evcms_desktop.store.bookings import BookingNotFoundError, BookingService
from evcms_desktop.store.models import Station, utcnow
from evcms_desktop.store.nodes import database_now, live_since
from evcms_desktop.store.notices import OPERATOR_ACTION, record_notice
from evcms_desktop.store.stations import station_calendar
from evcms_desktop.ui.actions import Commands, ConnectorActions, Outcome
from evcms_desktop.ui.analysis_tab import AnalysisTab
from evcms_desktop.ui.booking_actions import BookingActions
from evcms_desktop.ui.bridge import EventBridge, SiteFilter
from evcms_desktop.ui.chargebox_window import ChargeBoxWindow
from evcms_desktop.ui.charts.demand import DemandView
from evcms_desktop.ui.charts.meter import LiveMeterChart
from evcms_desktop.ui.dialogs.booking import NewBookingDialog
from evcms_desktop.ui.dialogs.booking_details import BookingDetailsDialog
from evcms_desktop.ui.dialogs.confirm import ConfirmDialog
from evcms_desktop.ui.dialogs.help import HelpDialog, StationFiles, tail
from evcms_desktop.ui.dialogs.sign_in import SignInDialog
from evcms_desktop.ui.models.chargers import ChargersModel
from evcms_desktop.ui.models.notifications import NotificationsModel
from evcms_desktop.ui.models.ocpp_log import OcppLogModel
from evcms_desktop.ui.roles import Session
from evcms_desktop.ui.sites import SiteLookup
from evcms_desktop.ui.theme import CONSOLE_STYLE
from evcms_desktop.ui.views.bookings import BookingsView
from evcms_desktop.ui.views.chargers import ChargersView
from evcms_desktop.ui.views.ocpp_log import OcppLogView
from evcms_desktop.ui.views.sessions import SessionsView
from evcms_desktop.ui.views.settings import SettingsView
from evcms_desktop.ui.views.today import TodayView

log = logging.getLogger(__name__)

DOCK_WIDTH = 300  # the notifications beside the tabs
# Narrower windows (a 1366 px station PC) open with the notifications hidden, so that the
# tables fit; the toolbar's Notifications button shows them (the status bar has the last).
NARROW_WIDTH = 1600

# Events after which bookings, sessions and today's counters are read again.
STORE_KINDS = {
    EventKind.CHARGING_STARTED,
    EventKind.SESSION_STOPPED,
    EventKind.BOOKINGS_CHANGED,
    EventKind.BOOKING_NO_SHOW,
    EventKind.CHARGER_CONNECTED,
    EventKind.CHARGER_DISCONNECTED,
}


WARNING_STYLE = "padding: 2px 10px; border-radius: 8px; background: #fff3cd; color: #7a4100;"
ERROR_STYLE = (
    "padding: 2px 10px; border-radius: 8px; background: #f8d7da; color: #842029; font-weight: 600;"
)


class MainWindow(QMainWindow):
    closed = Signal()
    kiosk_wanted = Signal()  # an operator switched this screen to the kiosk

    def __init__(
        self,
        service: BookingService,
        bus: EventBus,
        session: Session,
        commands: Commands | None = None,
        approver: Callable[[str, Station], object] | None = None,
        clock: Callable[[], datetime] = utcnow,
        server_text: str = "Central system not running",
        ocpp_url: str = "",
        security_warning: str = "",
        sites: Sequence[Station] = (),
        needs_sign_in: bool = False,
        listening_port: int | None = None,
        attached: bool = False,
    ) -> None:
        """`sites`: every site an operator's console sees (its Chargers, Bookings and
        Sessions tabs then filter by site); a station PC's console sees its own only.
        `needs_sign_in` (a console attached to a deployment): with nobody signed in it
        shows a sign-in screen and nothing of the deployment. `listening_port`: where the
        console's own central system listens; `attached`: it has none, the deployment's
        nodes serve (Settings says which, and no port)."""
        super().__init__()
        self.service = service
        self.station = station = service.station
        self.session = session
        self.clock = clock
        self.ocpp_url = ocpp_url
        self.tz = station_calendar(station).tz
        self.resize(1400, 860)
        self.setStyleSheet(CONSOLE_STYLE)
        self.dialog: QWidget | None = None
        self.simulators: list[QWidget] = []
        self.quit_confirmed = False
        self.files: StationFiles | None = None

        self.sites = SiteLookup(station, sites)
        self._show_title()
        self.bridge = EventBridge(bus, self, accept=SiteFilter(self.sites.ids))
        self.chargers_model = ChargersModel(station, clock, self, self.sites)
        # An every-site console's kept notices are every site's; else its own site's.
        home_only = None if self.sites.several else station
        self.notifications_model = NotificationsModel(self.tz, self, station=home_only)
        self.notifications_model.load_history()
        self.ocpp_model = OcppLogModel(self.tz, self)
        self.actions = ConnectorActions(station, session, commands, self, approver, clock)
        self.booking_actions = BookingActions(service, self.actions.require_operator, self, clock)
        self.chart = LiveMeterChart(self.tz, clock)

        self.today = TodayView(station, clock)
        self.chargers = ChargersView(self.chargers_model, self.actions, self.chart)
        self.bookings = BookingsView(service, self.booking_actions, clock, sites=self.sites)
        self.sessions = SessionsView(station, clock, sites=self.sites)
        self.demand = DemandView(station, clock)
        self.ocpp_log = OcppLogView(self.ocpp_model)
        self.settings = SettingsView(station, session, approver)
        self.settings.listening.setText(f"{server_text} (this run's command line wins)")
        if attached:
            self.settings.show_attached(live_since(database_now(), timedelta(seconds=10)))
        elif listening_port is not None:
            self.settings.show_listening(listening_port)
        self.settings.set_running_warning(security_warning)
        self.tabs = QTabWidget()
        for widget, title in (
            (self.today, "Today"),
            (self.chargers, "Chargers"),
            (self.bookings, "Bookings"),
            (self.sessions, "Sessions"),
            (self.demand, "Demand"),
            (self.ocpp_log, "OCPP log"),
        ):
            self.tabs.addTab(widget, title)
        self.analysis = AnalysisTab(self.station)
        self.tabs.addTab(self.analysis, "Analysis")
        self.tabs.addTab(self.settings, "Settings")
        self.needs_sign_in = needs_sign_in
        self._was_signed_out = False
        self.signed_out_page = self._signed_out_page()
        self.pages = QStackedWidget()
        self.pages.addWidget(self.tabs)
        self.pages.addWidget(self.signed_out_page)
        self.setCentralWidget(self.pages)

        self.notifications = QListView()
        self.notifications.setModel(self.notifications_model)
        self.notifications.setWordWrap(True)
        self.notifications.setUniformItemSizes(False)
        dock = QDockWidget("Notifications", self)
        dock.setObjectName("notifications")
        dock.setWidget(self.notifications)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
        )
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        self.resizeDocks([dock], [DOCK_WIDTH], Qt.Orientation.Horizontal)
        self.notifications_dock = dock
        self._shown = False

        self.role_label = QLabel()
        self.server_label = QLabel(server_text)
        # Trouble the operator must see until it is gone: not a message that times out.
        self.security_label = QLabel(security_warning)
        self.security_label.setObjectName("securityWarning")
        self.security_label.setStyleSheet(WARNING_STYLE)
        self.security_label.setVisible(bool(security_warning))
        self.store_label = QLabel()
        self.store_label.setObjectName("storeTrouble")
        self.store_label.setVisible(False)
        self._store_error: str | None = None
        self._rows_set_aside = 0
        self.statusBar().addPermanentWidget(self.store_label)
        self.statusBar().addPermanentWidget(self.security_label)
        self.statusBar().addPermanentWidget(self.server_label)
        self.statusBar().addPermanentWidget(self.role_label)
        self._build_actions()

        self._store_refresh = QTimer(self, interval=1000, singleShot=True)
        self._store_refresh.timeout.connect(self.refresh_store_views)
        self.bridge.event.connect(self._on_event)
        self.bridge.meter_values.connect(self.chart.on_meter)
        self.bridge.ocpp_message.connect(self.ocpp_model.add)
        self.bridge.ocpp_message.connect(self.chargers_model.touch)
        self.bridge.notification.connect(self._notify)
        self.actions.finished.connect(self._action_finished)
        self.actions.denied.connect(self._action_denied)
        self.bookings.new_booking.connect(self.new_booking)
        self.booking_actions.changed.connect(lambda _: self.refresh_store_views())
        self.booking_actions.notice.connect(self._booking_notice)
        self.bookings.open_booking.connect(self.open_booking)
        self.today.timeline.booking_clicked.connect(self.open_booking)
        self.settings.sign_in_wanted.connect(self.sign_in)
        self.settings.saved.connect(self._settings_saved)
        self.analysis.site_limit_chosen.connect(self.settings.choose_site_limit)
        self.settings.chargers_changed.connect(self.chargers_model.reload)
        session.role_changed.connect(self._role_changed)
        self._role_changed()

    def _build_actions(self) -> None:
        toolbar = QToolBar("Main")
        toolbar.setObjectName("main toolbar")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.addToolBar(toolbar)
        self.new_booking_action = QAction(
            "New booking…", self, shortcut=QKeySequence.StandardKey.New
        )
        self.new_booking_action.triggered.connect(self.new_booking)
        self.sign_in_action = QAction(
            "Sign in…" if self.needs_sign_in else "Operator sign-in…", self
        )
        self.sign_in_action.triggered.connect(self.sign_in)
        self.sign_out_action = QAction("Sign out", self)
        self.sign_out_action.triggered.connect(self.session.sign_out)
        self.simulator_action = QAction("Charge-box simulator…", self)
        self.simulator_action.triggered.connect(self.open_simulator)
        self.kiosk_action = QAction("Kiosk mode…", self)
        self.kiosk_action.setStatusTip(
            "Turn this screen into the drivers' kiosk; its PIN brings the console back."
        )
        self.kiosk_action.triggered.connect(self.enter_kiosk)
        quit_action = QAction("Quit", self, shortcut=QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        for action in (self.new_booking_action, self.sign_in_action, self.sign_out_action):
            toolbar.addAction(action)
        toolbar.addSeparator()
        toggle = self.notifications_dock.toggleViewAction()
        toggle.setToolTip("Show or hide the notifications beside the tabs")
        toolbar.addAction(toggle)

        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        self.export_action = file_menu.addAction("Export sessions as CSV…")
        self.export_action.triggered.connect(self.sessions.ask_export)
        file_menu.addSeparator()
        file_menu.addAction(quit_action)
        bookings_menu = menu.addMenu("&Bookings")
        bookings_menu.addAction(self.new_booking_action)
        operator_menu = menu.addMenu("&Operator")
        operator_menu.addAction(self.sign_in_action)
        operator_menu.addAction(self.sign_out_action)
        tools = menu.addMenu("&Tools")
        tools.addAction(self.simulator_action)
        tools.addAction(self.kiosk_action)
        view = menu.addMenu("&View")
        view.addAction(self.notifications_dock.toggleViewAction())
        refresh = view.addAction("Refresh")
        refresh.setShortcut(QKeySequence.StandardKey.Refresh)
        refresh.triggered.connect(self.refresh_store_views)
        for index in range(self.tabs.count()):
            go = QAction(self.tabs.tabText(index), self)
            go.setShortcut(QKeySequence(f"Ctrl+{index + 1}"))
            go.triggered.connect(lambda _=False, i=index: self.tabs.setCurrentIndex(i))
            view.addAction(go)
        find = QAction("Find a booking ID", self, shortcut=QKeySequence.StandardKey.Find)
        find.triggered.connect(self.find_booking)
        bookings_menu.addAction(find)
        help_menu = menu.addMenu("&Help")
        self.help_action = help_menu.addAction("About, files and shortcuts…")
        self.help_action.setShortcut(QKeySequence.StandardKey.HelpContents)
        self.help_action.triggered.connect(self.show_help)
        self.new_booking_action.setToolTip("Plan a booking for a driver (Ctrl+N)")
        self.sign_in_action.setToolTip("Remote commands, charger approval and settings")
        self.sign_out_action.setToolTip("Back to attendant: view, book and check in")

    # Events
    def _on_event(self, event: CsmsEvent) -> None:
        self.chargers_model.apply(event)
        if event.kind is EventKind.STORE_TROUBLE:
            error = event.data.get("error")
            self._store_error = str(error) if error is not None else None
            self._show_store_state()
        elif event.kind is EventKind.ROWS_SET_ASIDE:
            total = event.data.get("total")
            self._rows_set_aside = total if isinstance(total, int) else self._rows_set_aside + 1
            self._show_store_state()
        if event.kind is EventKind.BOOKINGS_CHANGED:
            self.notifications_model.pull_notices()  # bookings made by another process
        if event.kind in STORE_KINDS and not self._store_refresh.isActive():
            self._store_refresh.start()

    def _show_store_state(self) -> None:
        """The store's trouble in the status bar while it lasts; rows set aside until the
        console is restarted (they wait in a file for someone to look at them)."""
        if self._store_error is not None:
            text, style = f"Store cannot commit: {self._store_error[:120]}", ERROR_STYLE
        elif self._rows_set_aside:
            text, style = f"{self._rows_set_aside} row(s) set aside by the store", WARNING_STYLE
        else:
            self.store_label.setVisible(False)
            return
        self.store_label.setText(text)
        self.store_label.setToolTip(
            "Chargers get InternalError and keep their data until the store commits again."
            if self._store_error is not None
            else "Rows the store refused are kept in set-aside-rows.jsonl in the data directory."
        )
        self.store_label.setStyleSheet(style)
        self.store_label.setVisible(True)

    def _notify(self, event: CsmsEvent) -> None:
        self.notifications_model.add_event(event)
        if not self.signed_out:
            self.statusBar().showMessage(event.message, 15_000)

    def refresh_store_views(self) -> None:
        self.today.refresh()
        self.bookings.refresh()
        self.sessions.refresh()
        self.demand.refresh()
        self.settings.load_chargers()  # its list says online or offline

    def _booking_notice(self, text: str) -> None:
        self.notifications_model.pull_notices()
        self.statusBar().showMessage(text, 15_000)

    def _action_finished(self, outcome: Outcome) -> None:
        record_notice(OPERATOR_ACTION, outcome.text, charge_point=outcome.charge_point)
        self.notifications_model.pull_notices()
        self.statusBar().showMessage(outcome.text, 15_000)
        self.chargers_model.reload()

    def _action_denied(self, action: str) -> None:
        text = f"{action} needs an operator sign-in; nothing was sent."
        self.notifications_model.add_message(text, "denied")
        self.statusBar().showMessage(text, 15_000)

    def _signed_out_page(self) -> QWidget:
        page = QWidget()
        page.setObjectName("signedOut")
        text = QLabel("Nobody is signed in. Sign in to see and work on the deployment.")
        text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        button = QPushButton("Sign in…")
        button.clicked.connect(self.sign_in)
        layout = QVBoxLayout(page)
        layout.addStretch(1)
        layout.addWidget(text)
        layout.addWidget(button, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addStretch(2)
        return page

    @property
    def signed_out(self) -> bool:
        """An attached console with nobody signed in: it shows nothing of the deployment."""
        return self.needs_sign_in and self.session.operator is None

    def _role_changed(self) -> None:
        operator = self.session.is_operator
        role = "Operator" if operator else "Attendant"
        name = self.session.operator
        signed_out = self.signed_out
        self.role_label.setText(
            "Signed out" if signed_out else f"{name} ({role.lower()})" if name else role
        )
        self.role_label.setStyleSheet(
            "padding: 2px 10px; border-radius: 8px; font-weight: 600;"
            + ("background: #ffe6c2; color: #7a4100;" if operator else "background: #e3e9ef;")
        )
        signed_in = operator or name is not None
        self.sign_in_action.setVisible(not signed_in)
        self.sign_out_action.setVisible(signed_in)
        self.sign_out_action.setText(f"Sign out {name}" if name else "Sign out")
        self.chargers.panel.note.setVisible(not operator)
        self.pages.setCurrentWidget(self.signed_out_page if signed_out else self.tabs)
        dock_toggle = self.notifications_dock.toggleViewAction()
        for action in (self.new_booking_action, self.export_action, self.kiosk_action, dock_toggle):
            action.setEnabled(not signed_out)
        if signed_out:
            self.notifications_dock.hide()
        elif self._was_signed_out:
            self.notifications_dock.setVisible(self.width() >= NARROW_WIDTH)
        self._was_signed_out = signed_out

    def _show_title(self) -> None:
        """The site's name; an every-site console's is no one site's."""
        where = "All sites" if self.sites.several else self.station.name
        self.setWindowTitle(f"{where} – {APP_NAME}")

    def _settings_saved(self) -> None:
        self._show_title()
        self.refresh_store_views()

    def find_booking(self) -> None:
        self.tabs.setCurrentWidget(self.bookings)
        self.bookings.search.setFocus()
        self.bookings.search.selectAll()

    def set_files(self, files: StationFiles) -> None:
        """Where this console keeps its files; a crash of the last run is told about."""
        self.files = files
        if files.crash_report:
            text = "The console stopped unexpectedly last time: Help shows the crash report."
            self.notifications_model.add_message(text, "crash")
            self.statusBar().showMessage(text, 30_000)

    def show_help(self) -> HelpDialog:
        database = Path(self.service.db.database)
        files = self.files or StationFiles(str(database), database.parent)
        log_text = tail(files.log_file) if files.log_file else ""
        dialog = HelpDialog(files, log_text, self)
        if files.crash_report:
            dialog.show_crash()
        self._open(dialog)
        return dialog

    def enter_kiosk(self) -> None:
        """Operators only; the kiosk is left with its numeric PIN, so one must be set."""

        def go() -> None:
            if not self.session.credentials.has_kiosk_pin(self.service.station.id):
                self.tabs.setCurrentWidget(self.settings)
                self.settings.ask_for_kiosk_pin(
                    "Set a kiosk PIN first: leaving the kiosk needs it, typed on its keypad."
                )
                return
            self.kiosk_wanted.emit()

        self.actions.require_operator("Kiosk mode", go)

    def _quit_confirmed(self) -> None:
        self.quit_confirmed = True
        self.close()

    # Dialogs
    def _open(self, dialog: QWidget) -> None:
        self.dialog = dialog
        dialog.finished.connect(dialog.deleteLater)  # type: ignore[attr-defined]
        dialog.open()  # type: ignore[attr-defined]

    def new_booking(self) -> NewBookingDialog:
        dialog = NewBookingDialog(self.service, self)
        dialog.booked.connect(self._booked)
        self._open(dialog)
        return dialog

    def _booked(self, code: str) -> None:
        self.notifications_model.pull_notices()
        self.statusBar().showMessage(f"Booked {code}", 15_000)
        self.refresh_store_views()

    def open_booking(self, code: str) -> BookingDetailsDialog | None:
        try:
            booking = self.service.find(code)
        except BookingNotFoundError as exc:
            self.statusBar().showMessage(str(exc), 10_000)
            return None
        dialog = BookingDetailsDialog(self.service, booking, self.booking_actions, self)
        self._open(dialog)
        return dialog

    def sign_in(self) -> SignInDialog:
        dialog = SignInDialog(self.session, parent=self)
        self._open(dialog)
        return dialog

    def open_simulator(self) -> ChargeBoxWindow:
        offline = [r.ident for r in self.chargers_model.rows() if not r.connected and not r.pending]
        window = ChargeBoxWindow(
            url=self.ocpp_url or websocket_url(), ident=offline[0] if offline else "CP-1"
        )
        window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        window.destroyed.connect(lambda: self.simulators.remove(window))
        self.simulators.append(window)
        window.show()
        return window

    def quit_warning(self) -> str | None:
        """What quitting would interrupt, or None when no charger is connected."""
        rows = self.chargers_model.rows()
        chargers = len({r.ident for r in rows if r.connected})
        charging = sum(1 for r in rows if r.transaction_id is not None)
        if not chargers:
            return None
        sessions = f" and {charging} charging session{'s' * (charging != 1)} running"
        return (
            f"{chargers} charger{'s are' if chargers != 1 else ' is'} connected"
            f"{sessions if charging else ''}. Quitting stops the central system: the"
            " chargers lose their connection, and no driver can start charging until the"
            " console runs again."
        )

    def showEvent(self, event: QShowEvent) -> None:
        if not self._shown:
            self._shown = True
            self.notifications_dock.setVisible(self.width() >= NARROW_WIDTH)
        super().showEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        warning = None if self.quit_confirmed else self.quit_warning()
        if warning is not None:
            event.ignore()
            title = "Quit and stop the central system?"
            dialog = ConfirmDialog(title, warning, "Quit", parent=self, keep="Keep running")
            dialog.accepted.connect(self._quit_confirmed)
            self._open(dialog)
            return
        self.bridge.detach()
        for timer in self.findChildren(QTimer):  # a closed window reads the store no more
            timer.stop()
        if not self.actions.retired:  # nor follows the session: the next sign-in is not its
            self.session.role_changed.disconnect(self._role_changed)
            self.session.role_changed.disconnect(self.settings._role_changed)
            self.actions.retired = True
        for window in list(self.simulators):
            window.close()
        super().closeEvent(event)
        self.closed.emit()
