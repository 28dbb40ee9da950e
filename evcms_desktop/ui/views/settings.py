"""The Settings tab (operator only): station, tariff, Peak On windows, chargers, listener.

Station and tariff go into the Station row; the listener's options into the `server`
Setting, read at the next start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TypeVar
from zoneinfo import available_timezones

from PySide6.QtCore import Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from evcms_desktop.csms import charger_admin
from evcms_desktop.csms.protocol import DEFAULT_PORT
from evcms_desktop.domain.peak import WEEKDAYS, PeakCalendar
from evcms_desktop.domain.station_settings import (
    MAX_CONNECTIONS_LIMIT,
    SettingError,
    currency_code,
    max_connections,
    saved_max_connections,
    station_name,
    tariff_value,
    time_zone,
)
from evcms_desktop.store import driver_data
from evcms_desktop.store.kiosk_pin import pin_error
from evcms_desktop.store.models import Station, utcnow
from evcms_desktop.store.settings import (
    DEFAULT_PING,
    DEFAULT_SECURITY_PROFILE,
    MAX_EVENT_RETENTION_DAYS,
    MAX_PING_SECONDS,
    SERVER_KEY,
    ping_seconds,
    retention_days,
    server_settings,
    write_setting,
)
from evcms_desktop.store.stations import station_calendar
from evcms_desktop.ui.roles import Session, kiosk_pin_key
from evcms_desktop.ui.wheel_guard import guard_wheel

log = logging.getLogger(__name__)

KIOSK_NOTE = (
    "The kiosk (Tools > Kiosk mode, or evcms-desktop --kiosk) needs this PIN:"
    " drivers' screens have a digits-only keypad for staff to leave it."
)

T = TypeVar("T")

TARIFF_FIELDS = (
    ("energy_price", "Energy price Ec (per kWh)"),
    ("max_power_kw", "Charger max power Pmax (kW)"),
    ("efficiency", "Charging efficiency Ceff (0 to 1)"),
    ("peak_demand_charge", "Peak demand charge PDC (per session)"),
    ("service_charge", "Service charge SC (per session)"),
)


PROFILE_0_WARNING = (
    "Profile 0: chargers connect without a password, so anything on the site network can"
    " act as any registered charger. Use it only on a closed lab network."
)


def _error(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setObjectName("fieldError")
    label.setWordWrap(True)
    return label


class SettingsView(QWidget):
    saved = Signal()
    sign_in_wanted = Signal()
    chargers_changed = Signal()

    def __init__(
        self,
        station: Station,
        session: Session,
        approver: Callable[[str, Station], object] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.station = station
        self.session = session
        self.task: asyncio.Task[None] | None = None
        self.approver = approver or charger_admin.approve
        self.locked = QLabel("Settings can be changed by an operator.")
        self.sign_in = QPushButton("Sign in as operator…")
        self.sign_in.clicked.connect(self.sign_in_wanted)
        lock_row = QHBoxLayout()
        lock_row.addWidget(self.locked)
        lock_row.addWidget(self.sign_in)
        lock_row.addStretch(1)

        self.body = QWidget()
        columns = QHBoxLayout(self.body)
        left, right = QVBoxLayout(), QVBoxLayout()
        columns.addLayout(left, 1)
        columns.addLayout(right, 1)
        left.addWidget(self._station_box())
        left.addWidget(self._peak_box())
        right.addWidget(self._chargers_box())
        right.addWidget(self._server_box())
        right.addWidget(self._kiosk_box())
        right.addWidget(self._privacy_box())
        self.save_button = QPushButton("Save settings")
        self.save_button.clicked.connect(self.save)
        self.message = QLabel()
        self.message.setWordWrap(True)
        left.addWidget(self.save_button)
        left.addWidget(self.message)
        left.addStretch(1)
        right.addStretch(1)
        self.scroll = scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.body)
        self._wheel_guard = guard_wheel(self.body)
        layout = QVBoxLayout(self)
        layout.addLayout(lock_row)
        layout.addWidget(scroll)
        session.role_changed.connect(self._role_changed)
        self.load()
        self._role_changed()

    # Building
    def _station_box(self) -> QGroupBox:
        box = QGroupBox("Station and tariff (Eq. 8)")
        form = QFormLayout(box)
        self.name = QLineEdit()
        self.timezone = QComboBox(editable=True)
        self.timezone.addItems(sorted(available_timezones()))
        self.field_errors: dict[str, QLabel] = {}
        self._field_row(form, "name", "Station name", self.name)
        self._field_row(form, "timezone", "Time zone", self.timezone)
        self.tariff: dict[str, QLineEdit] = {}
        for field, label in TARIFF_FIELDS:
            self.tariff[field] = QLineEdit()
            self._field_row(form, field, label, self.tariff[field])
        self.currency = QComboBox(editable=True)
        self.currency.addItems(["GBP", "EUR", "USD"])
        self._field_row(form, "currency", "Currency", self.currency)
        self.site_limit = QDoubleSpinBox(minimum=0, maximum=100_000, decimals=1, suffix=" kW")
        self.site_limit.setSpecialValueText("none")
        self.site_limit.setToolTip(
            "The site's power limit: the live schedule keeps the chargers under it. Pick a"
            " point of the Analysis tab's cost–peak frontier to set it from a real schedule."
        )
        self.site_limit_hint = QLabel()
        self.site_limit_hint.setObjectName("hint")
        form.addRow("Site power limit", self.site_limit)
        self.continue_past = QCheckBox(
            "Booked sessions at this site continue past their booked energy (the extra is billed)"
        )
        form.addRow(self.continue_past)
        form.addRow(self.site_limit_hint)
        return box

    def _peak_box(self) -> QGroupBox:
        box = QGroupBox("Peak On windows (local time, e.g. 08:00-11:00, 16:00-22:00)")
        form = QFormLayout(box)
        self.peak: dict[str, QLineEdit] = {}
        for day in WEEKDAYS:
            self.peak[day] = QLineEdit(placeholderText="none: Peak Off all day")
            self._field_row(form, day, day, self.peak[day])
        return box

    def _chargers_box(self) -> QGroupBox:
        box = QGroupBox("Chargers")
        layout = QVBoxLayout(box)
        self.chargers = QListWidget()
        self.chargers.setMinimumHeight(140)
        layout.addWidget(self.chargers)
        form = QFormLayout()
        self.charger_id = QLineEdit(placeholderText="chargePointId, e.g. CP-C")
        self.charger_password = QLineEdit(placeholderText="16 to 40 characters (profiles 1 and 2)")
        self.charger_password.setEchoMode(QLineEdit.EchoMode.Password)
        self.charger_connectors = QSpinBox(minimum=1, maximum=16, value=2)
        form.addRow("Charger id", self.charger_id)
        form.addRow("Password", self.charger_password)
        form.addRow("Connectors", self.charger_connectors)
        layout.addLayout(form)
        buttons = QHBoxLayout()
        self.add_button = QPushButton("Add")
        self.password_button = QPushButton("Set password")
        self.approve_button = QPushButton("Approve")
        self.remove_button = QPushButton("Remove")
        self.unlock_button = QPushButton("Unlock")
        self.unlock_button.setToolTip("Lift a lockout after repeated wrong passwords")
        for button, handler in (
            (self.add_button, self.add_charger),
            (self.password_button, self.set_charger_password),
            (self.approve_button, self.approve_charger),
            (self.remove_button, self.remove_charger),
            (self.unlock_button, self.unlock_charger),
        ):
            button.clicked.connect(handler)
            buttons.addWidget(button)
        layout.addLayout(buttons)
        self.charger_message = _error()
        layout.addWidget(self.charger_message)
        self.chargers.currentTextChanged.connect(
            lambda text: self.charger_id.setText(text.split("  ")[0]) if text else None
        )
        return box

    def _server_box(self) -> QGroupBox:
        box = QGroupBox("Central system (applied at the next start)")
        self.server_box = box
        self.server_form = form = QFormLayout(box)
        self.port = QSpinBox(minimum=1, maximum=65535)
        self.profile = QComboBox()
        self.profile.addItems(
            ["0: no authentication (lab)", "1: HTTP Basic auth", "2: TLS and Basic auth"]
        )
        self.tls_cert = QLineEdit(placeholderText="PEM file; empty: a self-signed one is made")
        self.tls_key = QLineEdit(placeholderText="PEM file")
        self.accept_unknown = QCheckBox("Unknown chargers wait as Pending for approval")
        self.strict = QCheckBox(
            "Read chargers strictly (refuse what the tolerant reading would repair)"
        )
        self.ping_interval = QSpinBox(minimum=0, maximum=MAX_PING_SECONDS, suffix=" s")
        self.ping_interval.setSpecialValueText("off")
        self.ping_timeout = QSpinBox(minimum=0, maximum=MAX_PING_SECONDS, suffix=" s")
        self.ping_timeout.setSpecialValueText("off")
        self.listening = QLabel("")
        self.listening.setObjectName("counterTitle")
        self.listening.setWordWrap(True)
        form.addRow("Now", self.listening)
        form.addRow("Listening port", self.port)
        form.addRow("Security profile", self.profile)
        self.running_warning = _error()
        self.running_warning.setVisible(False)
        form.addRow(self.running_warning)
        self.profile_warning = _error(PROFILE_0_WARNING)
        self.profile.currentIndexChanged.connect(
            lambda index: self.profile_warning.setVisible(index == 0)
        )
        form.addRow(self.profile_warning)
        self._field_row(form, "tls_cert", "TLS certificate", self.tls_cert)
        self._field_row(form, "tls_key", "TLS key", self.tls_key)
        form.addRow(self.accept_unknown)
        form.addRow(self.strict)
        form.addRow("Ping chargers every", self.ping_interval)
        form.addRow("Dead after no pong for", self.ping_timeout)
        self.max_connections = QLineEdit(placeholderText=f"1 to {MAX_CONNECTIONS_LIMIT}")
        self.max_connections.setToolTip(
            "Chargers connected (or connecting) at once, at most; more are refused with"
            " HTTP 503. The same as --max-connections."
        )
        self._field_row(form, "max_connections", "Chargers connected at most", self.max_connections)
        self.event_retention = QSpinBox(minimum=1, maximum=MAX_EVENT_RETENTION_DAYS, suffix=" days")
        self.event_retention.setToolTip("Events older than this are deleted (checked hourly).")
        form.addRow("Keep events for", self.event_retention)
        return box

    def _kiosk_box(self) -> QGroupBox:
        box = QGroupBox("Kiosk")
        form = QFormLayout(box)
        self.kiosk_pin = QLineEdit(placeholderText="4 to 12 digits")
        self.kiosk_pin.setEchoMode(QLineEdit.EchoMode.Password)
        self.kiosk_pin_button = QPushButton("Set kiosk PIN")
        self.kiosk_pin_button.clicked.connect(self.set_kiosk_pin)
        self.kiosk_message = QLabel(KIOSK_NOTE)
        self.kiosk_message.setWordWrap(True)
        form.addRow("PIN", self.kiosk_pin)
        form.addRow(self.kiosk_pin_button)
        form.addRow(self.kiosk_message)
        return box

    def _privacy_box(self) -> QGroupBox:
        box = QGroupBox("Drivers' personal data")
        form = QFormLayout(box)
        self.retention = QSpinBox(
            minimum=driver_data.MIN_RETENTION_DAYS,
            maximum=driver_data.MAX_RETENTION_DAYS,
            suffix=" days",
        )
        self.retention.setToolTip(
            "After this many days past a booking's end its driver's name and contact are"
            " blanked; its times, energy and price are kept."
        )
        form.addRow("Keep name and contact", self.retention)
        return box

    def _field_row(self, form: QFormLayout, key: str, label: str, widget: QWidget) -> None:
        """A field with its own error line under it (hidden while there is nothing to say)."""
        form.addRow(label, widget)
        error = _error()
        error.setVisible(False)
        form.addRow(error)
        self.field_errors[key] = error

    def _show_errors(self, errors: dict[str, str]) -> None:
        for key, label in self.field_errors.items():
            label.setText(errors.get(key, ""))
            label.setVisible(key in errors)

    def set_running_warning(self, text: str) -> None:
        """What is wrong with how the central system runs now (e.g. profile 0)."""
        self.running_warning.setText(f"Now: {text}" if text else "")
        self.running_warning.setVisible(bool(text))

    def show_listening(self, port: int) -> None:
        """The console's own central system listens: its port is the one shown."""
        self.port.setValue(port)

    def show_attached(self, nodes: dict[str, datetime]) -> None:
        """An attached console listens nowhere: no port, but the deployment's live nodes
        (from the registry) and since when each runs."""
        self.server_form.setRowVisible(self.port, False)
        self.server_box.setTitle("Central system (the nodes'; applied at their next start)")
        tz = station_calendar(self.station).tz
        running = "Its nodes: " + ", ".join(
            f"{name} (since {since.astimezone(tz):%d %b %H:%M})"
            for name, since in sorted(nodes.items())
        )
        if not nodes:
            running = "No node of the deployment is running."
        self.listening.setText(f"Attached: this console listens on no port. {running}")

    def ask_for_kiosk_pin(self, why: str) -> None:
        """Say why a kiosk PIN is wanted where it is typed, scrolled into view (the Kiosk
        box is below the fold of a 1366x768 screen, so the words went unseen)."""
        self.kiosk_message.setText(why)
        self.kiosk_pin.setFocus()
        self.layout().activate()  # the page's geometry, if it was only just shown
        self.scroll.ensureWidgetVisible(self.kiosk_message)

    def set_kiosk_pin(self) -> None:
        pin = self.kiosk_pin.text()
        if (error := pin_error(pin)) is not None:
            self.kiosk_message.setText(error)
            return

        async def go() -> None:
            await self.session.credentials.set_secret(kiosk_pin_key(self.station.id), pin)
            self.kiosk_pin.clear()
            self.kiosk_message.setText(f"Kiosk PIN of {self.station.name} set.")

        self.task = asyncio.ensure_future(go())

    # Loading and saving
    def load(self) -> None:
        s = self.station
        self.name.setText(s.name)
        self.timezone.setCurrentText(s.timezone)
        for field, _ in TARIFF_FIELDS:
            self.tariff[field].setText(str(getattr(s, field)))
        self.currency.setCurrentText(s.currency)
        limit = s.site_power_limit_kw
        self.site_limit.setValue(float(limit) if limit is not None else 0.0)
        self.retention.setValue(driver_data.retention_days())
        described = station_calendar(s).describe()
        for day in WEEKDAYS:
            self.peak[day].setText(", ".join(described.get(day, [])))
        server = server_settings()
        self.port.setValue(int(server.get("port", DEFAULT_PORT)))
        self.profile.setCurrentIndex(int(server.get("security_profile", DEFAULT_SECURITY_PROFILE)))
        self.profile_warning.setVisible(self.profile.currentIndex() == 0)
        self.tls_cert.setText(server.get("tls_cert") or "")
        self.tls_key.setText(server.get("tls_key") or "")
        self.accept_unknown.setChecked(bool(server.get("accept_unknown", False)))
        self.strict.setChecked(bool(server.get("strict", False)))
        self.continue_past.setChecked(bool(s.continue_past_booked_energy))
        self.ping_interval.setValue(ping_seconds(server.get("ping_interval"), DEFAULT_PING) or 0)
        self.ping_timeout.setValue(ping_seconds(server.get("ping_timeout"), DEFAULT_PING) or 0)
        self.event_retention.setValue(retention_days(server.get("event_retention_days")))
        self.max_connections.setText(str(saved_max_connections(server.get("max_connections"))))
        self.load_chargers()

    def load_chargers(self) -> None:
        self.chargers.clear()
        now = utcnow()
        for info in charger_admin.list_chargers(station=self.station):
            online = "online" if info.connected else "offline"
            password = "password set" if info.has_password else "no password"
            locked = info.locked_until is not None and info.locked_until > now
            lockout = f", LOCKED OUT until {info.locked_until:%H:%M} UTC" if locked else ""
            self.chargers.addItem(
                f"{info.ident}  ({info.state}, {info.connectors} connectors, {online},"
                f" {password}{lockout})"
            )

    def save(self) -> bool:
        """Check every field, each error under its field; save only when all are right."""
        errors: dict[str, str] = {}

        def check(key: str, read: Callable[[], T]) -> T | None:
            try:
                return read()
            except SettingError as exc:
                errors[key] = str(exc)[:1].upper() + str(exc)[1:] + "."
                return None

        name = check("name", lambda: station_name(self.name.text()))
        tz_name = check("timezone", lambda: time_zone(self.timezone.currentText()))
        currency = check("currency", lambda: currency_code(self.currency.currentText()))
        values: dict[str, Decimal] = {}
        for field, _ in TARIFF_FIELDS:
            value = check(field, lambda f=field: tariff_value(f, self.tariff[f].text()))  # type: ignore[misc]
            if value is not None:
                values[field] = value
        windows = {
            day: [w.strip() for w in self.peak[day].text().split(",") if w.strip()]
            for day in WEEKDAYS
        }
        for day in WEEKDAYS:
            try:
                PeakCalendar.from_description("UTC", {day: windows[day]})
            except ValueError as exc:
                errors[day] = str(exc)
        cap = check("max_connections", lambda: max_connections(self.max_connections.text()))
        self._check_tls(errors)
        if errors:
            self._show_errors(errors)
            self.message.setText(
                f"Nothing saved: {len(errors)} field(s) to correct, each marked in red."
            )
            return False
        self._show_errors({})
        assert name is not None and tz_name is not None and currency is not None
        s = self.station
        s.name, s.timezone, s.currency, s.peak_windows = (name, tz_name, currency, windows)
        for field, value in values.items():
            setattr(s, field, value)
        s.site_power_limit_kw = self._site_limit()
        s.continue_past_booked_energy = self.continue_past.isChecked()
        s.save()
        write_setting(
            SERVER_KEY,
            {
                "port": self.port.value(),
                "security_profile": self.profile.currentIndex(),
                "tls_cert": self.tls_cert.text().strip() or None,
                "tls_key": self.tls_key.text().strip() or None,
                "accept_unknown": self.accept_unknown.isChecked(),
                "strict": self.strict.isChecked(),
                "ping_interval": self.ping_interval.value(),
                "ping_timeout": self.ping_timeout.value(),
                "event_retention_days": self.event_retention.value(),
                "max_connections": cap,
            },
        )
        driver_data.set_retention_days(self.retention.value())
        log.info("Settings saved")
        self.message.setText("Saved. The listener's options apply at the next start.")
        self.saved.emit()
        return True

    def _check_tls(self, errors: dict[str, str]) -> None:
        """A certificate and its key go together, and must be files that are there."""
        cert, key = self.tls_cert.text().strip(), self.tls_key.text().strip()
        if bool(cert) != bool(key):
            errors["tls_cert" if cert else "tls_key"] = (
                "The certificate and its key go together: give both, or neither."
            )
            return
        for field, path in (("tls_cert", cert), ("tls_key", key)):
            if path and not Path(path).is_file():
                errors[field] = f"No file at {path[:200]}."

    def _site_limit(self) -> Decimal | None:
        value = self.site_limit.value()
        return Decimal(f"{value:.1f}") if value > 0 else None

    def choose_site_limit(self, limit_kw: Decimal, label: str) -> bool:
        """A point of the cost–peak frontier becomes the site power limit (operators only)."""
        if not self.session.is_operator:
            self.site_limit_hint.setText("Sign in as operator to set the site power limit.")
            return False
        if not (Decimal(0) < limit_kw <= Decimal(100_000)):
            self.site_limit_hint.setText(f"{limit_kw} kW is not a site power limit.")
            return False
        self.station.site_power_limit_kw = limit_kw
        self.station.save()
        self.site_limit.setValue(float(limit_kw))
        self.site_limit_hint.setText(f"From the cost–peak frontier: {label}.")
        log.info("Site power limit set to %s kW (%s)", limit_kw, label)
        self.saved.emit()
        return True

    # Chargers
    def _charger_action(self, work: Callable[[], object], done: str) -> None:
        """Run an admin function in a thread (password hashing is slow) and report."""

        async def go() -> None:
            try:
                await asyncio.get_running_loop().run_in_executor(None, work)
            except charger_admin.ChargerAdminError as exc:
                self.charger_message.setText(str(exc))
                return
            self.charger_message.setObjectName("")
            self.charger_message.setStyleSheet("")
            self.charger_message.setText(done)
            self.charger_password.clear()  # stored (hashed); no need to keep it on screen
            self.load_chargers()
            self.chargers_changed.emit()

        self.task = asyncio.ensure_future(go())

    def add_charger(self) -> None:
        ident, password = self.charger_id.text().strip(), self.charger_password.text()
        connectors = self.charger_connectors.value()
        self._charger_action(
            lambda: charger_admin.add_charger(
                ident, password or None, self.station, connectors=connectors
            ),
            f"Added {ident}.",
        )

    def set_charger_password(self) -> None:
        ident, password = self.charger_id.text().strip(), self.charger_password.text()
        self._charger_action(
            lambda: charger_admin.set_password(ident, password, self.station),
            f"New password for {ident}.",
        )

    def approve_charger(self) -> None:
        ident = self.charger_id.text().strip()
        try:
            self.approver(ident, self.station)
        except charger_admin.ChargerAdminError as exc:
            self.charger_message.setText(str(exc))
            return
        self.charger_message.setText(f"Approved {ident}.")
        self.load_chargers()
        self.chargers_changed.emit()

    def remove_charger(self) -> None:
        ident = self.charger_id.text().strip()
        self._charger_action(lambda: charger_admin.remove(ident, self.station), f"Removed {ident}.")

    def unlock_charger(self) -> None:
        ident = self.charger_id.text().strip()

        def unlock() -> None:
            if not charger_admin.unlock(ident, self.station):
                raise charger_admin.ChargerAdminError(f"{ident} was not locked out.")

        self._charger_action(unlock, f"Unlocked {ident}; its next login is checked again.")

    def showEvent(self, event: QShowEvent) -> None:
        self.load_chargers()  # connection state and new Pending chargers
        super().showEvent(event)

    def _role_changed(self) -> None:
        operator = self.session.is_operator
        if not operator:  # what the last operator did is not the next person's business
            self.charger_message.clear()
            self.message.clear()
            self.charger_password.clear()  # nor are the secrets they typed
            self.kiosk_pin.clear()
            self.kiosk_message.setText(KIOSK_NOTE)
        self.body.setEnabled(operator)
        self.locked.setVisible(not operator)
        self.sign_in.setVisible(not operator)
