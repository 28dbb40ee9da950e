"""One charger's tools: what its frames needed tolerated, its configuration (read and
edited), the charging profiles it holds drawn as its composite schedule, its firmware
update and diagnostics upload with their progress, its reservations per connector
(ReserveNow, CancelReservation), and the other commands (TriggerMessage, ClearCache,
DataTransfer).

Commands run as asyncio tasks; every answer is explained in words next to what asked.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from evcms_desktop.csms.tolerance import DEVIATION_KINDS
from evcms_desktop.store.deviations import deviations_of
from evcms_desktop.store.models import ChargePoint
from evcms_desktop.store.stations import connector_reservations
from evcms_desktop.ui.theme import POWER_PEN

log = logging.getLogger(__name__)

TRIGGERABLE = [
    "BootNotification",
    "DiagnosticsStatusNotification",
    "FirmwareStatusNotification",
    "Heartbeat",
    "MeterValues",
    "StatusNotification",
]
CHANGE_MEANINGS = {
    "Accepted": "changed; in effect now",
    "RebootRequired": "changed; in effect after the charger reboots",
    "Rejected": "refused by the charger (read-only, or a value it does not take)",
    "NotSupported": "the charger does not know this key",
}
# Standard OCPP 1.6 keys whose values are numbers or booleans (section 9).
_INTEGER_KEYS = frozenset(
    {
        "ClockAlignedDataInterval",
        "ConnectionTimeOut",
        "HeartbeatInterval",
        "LightIntensity",
        "MaxEnergyOnInvalidId",
        "MeterValueSampleInterval",
        "MinimumStatusDuration",
        "ResetRetries",
        "TransactionMessageAttempts",
        "TransactionMessageRetryInterval",
        "WebSocketPingInterval",
        "BlinkRepeat",
        "LocalAuthListMaxLength",
        "SendLocalListMaxLength",
        "ChargeProfileMaxStackLevel",
        "MaxChargingProfilesInstalled",
    }
)
_BOOLEAN_VALUES = ("true", "false")
SCHEDULE_SECONDS = 6 * 3600
PROGRESS_MS = 500  # how often the firmware and diagnostics progress is looked at
SHOWN_BYTES = 64 * 1024  # of a received diagnostics file
MANUAL_RESERVATIONS = 1_000_000_000  # reservation ids made here start here
RESERVE_MEANINGS = {
    "Accepted": "reserved",
    "Faulted": "the connector is faulted",
    "Occupied": "the connector is in use",
    "Rejected": "the charger does not take reservations there",
    "Unavailable": "the connector is unavailable",
}


class Answer(Protocol):
    status: str
    ok: bool
    detail: str
    payload: dict[str, Any]


class ChargerCommands(Protocol):
    """What this dialog asks of the central system's CommandService."""

    async def get_configuration(self, cp_id: str, keys: list[str] | None = None) -> Answer: ...
    async def change_configuration(self, cp_id: str, key: str, value: str) -> Answer: ...
    async def get_composite_schedule(
        self, cp_id: str, connector_id: int, duration: int, unit: str | None = None
    ) -> Answer: ...
    async def trigger_message(
        self, cp_id: str, message: str, connector_id: int | None = None
    ) -> Answer: ...
    async def clear_cache(self, cp_id: str) -> Answer: ...
    async def reserve_now(
        self,
        cp_id: str,
        connector_id: int,
        expiry: datetime,
        id_tag: str,
        reservation_id: int,
        parent_id_tag: str | None = None,
    ) -> Answer: ...
    async def cancel_reservation(self, cp_id: str, reservation_id: int) -> Answer: ...
    async def data_transfer(
        self, cp_id: str, vendor_id: str, message_id: str | None = None, data: str | None = None
    ) -> Answer: ...


def check_value(key: str, old: str | None, value: str) -> str | None:
    """Why `value` cannot be the new value of `key` (None: it can)."""
    if len(value) > 500:
        return "A configuration value has at most 500 characters."
    if key in _INTEGER_KEYS or (old is not None and old.isdigit() and key.endswith("Interval")):
        if not value.isdigit():
            return f"{key} takes a whole number of seconds or units, not {value!r}."
    elif old in _BOOLEAN_VALUES and value not in _BOOLEAN_VALUES:
        return f"{key} is true or false, not {value!r}."
    return None


def _result_label() -> QLabel:
    label = QLabel("")
    label.setObjectName("actionResult")
    label.setWordWrap(True)
    return label


def _show(label: QLabel, ok: bool, text: str) -> None:
    label.setStyleSheet(f"background: {'#dcf5e3' if ok else '#ffd9d6'};")
    label.setText(text)


class Step(Protocol):
    at: datetime
    what: str
    status: str
    detail: str


class Progress(Protocol):
    firmware_file: str | None
    firmware_status: str | None
    diagnostics_status: str | None
    steps: list[Any]


class Received(Protocol):
    path: Path
    size: int
    received: datetime


class Transfers(Protocol):
    """What this dialog asks of the central system's firmware and diagnostics server."""

    def firmware_files(self) -> list[str]: ...
    def add_firmware(self, source: Path) -> str: ...
    def received_files(self, ident: str) -> list[Any]: ...
    def state(self, ident: str) -> Progress: ...
    async def update_firmware(
        self, ident: str, name: str, retrieve_at: datetime | None = None, retries: int | None = None
    ) -> Answer: ...
    async def get_diagnostics(self, ident: str) -> Answer: ...


class ChargerToolsDialog(QDialog):
    def __init__(
        self,
        ident: str,
        connector: int,
        commands: ChargerCommands | None,
        tz: ZoneInfo,
        parent: QWidget | None = None,
        transfers: Transfers | None = None,
    ) -> None:
        super().__init__(parent)
        self.ident = ident
        self.transfers = transfers
        self.connector = max(connector, 1)
        self.commands = commands
        self.tz = tz
        self.tasks: set[asyncio.Task[None]] = set()
        self.setWindowTitle(f"Charger {ident}")
        self.resize(900, 560)
        self.tabs = QTabWidget()
        self.tabs.addTab(self._tolerated_tab(), "Tolerated")
        self.tabs.addTab(self._configuration_tab(), "Configuration")
        self.tabs.addTab(self._profiles_tab(), "Charging profiles")
        self.tabs.addTab(self._transfers_tab(), "Firmware and diagnostics")
        self.tabs.addTab(self._reservations_tab(), "Reservations")
        self.tabs.addTab(self._commands_tab(), "Commands")
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        self.load_deviations()
        self.load_reservations()
        self._shown_steps = -1
        self._progress_timer = QTimer(self)
        self._progress_timer.timeout.connect(self.show_progress)
        self._progress_timer.start(PROGRESS_MS)
        self.show_progress()

    # -- running commands ----------------------------------------------------------

    def _run(self, label: QLabel, command: Callable[[], Awaitable[Any]], then: Any) -> None:
        if self.commands is None:
            _show(label, False, "No central system is running in this console.")
            return
        label.setStyleSheet("")
        label.setText("Waiting for the charger…")

        async def go() -> None:
            try:
                then(await command())
            except Exception:
                log.exception("Charger tool command failed")
                _show(label, False, "The command failed; see the log.")

        task = asyncio.ensure_future(go())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # -- tolerated -----------------------------------------------------------------

    def _tolerated_tab(self) -> QWidget:
        page = QWidget()
        self.reading = QLabel("")
        self.reading.setWordWrap(True)
        self.deviations = QTableWidget(0, 5)
        self.deviations.setHorizontalHeaderLabels(
            ["Kind", "What was tolerated", "Count", "Last seen", "Last example"]
        )
        self.deviations.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.deviations.verticalHeader().setVisible(False)
        header = self.deviations.horizontalHeader()
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self.deviations.setWordWrap(True)
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.load_deviations)
        layout = QVBoxLayout(page)
        layout.addWidget(self.reading)
        layout.addWidget(self.deviations)
        layout.addWidget(refresh, alignment=Qt.AlignmentFlag.AlignRight)
        return page

    def load_deviations(self) -> None:
        cp = ChargePoint.get_or_none(ChargePoint.ident == self.ident)
        if cp is not None:
            mode = (
                "as the central system is set"
                if cp.strict is None
                else ("strictly" if cp.strict else "tolerantly")
            )
            zone = cp.timezone or "the station's"
            self.reading.setText(
                f"{self.ident} ({cp.vendor or '?'} {cp.model or ''}, firmware"
                f" {cp.firmware_version or '?'}) is read {mode}; its times without an offset"
                f" are in {zone} time zone. Tell the vendor what is below."
            )
        rows = deviations_of(self.ident)
        self.deviations.setRowCount(len(rows))
        for r, d in enumerate(rows):
            last = d.last_at.astimezone(self.tz).strftime("%Y-%m-%d %H:%M")
            for c, text in enumerate(
                [d.kind, DEVIATION_KINDS.get(d.kind, ""), str(d.count), last, d.example]
            ):
                item = QTableWidgetItem(text)
                if c == 2:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                self.deviations.setItem(r, c, item)
        for column in range(4):
            self.deviations.resizeColumnToContents(column)
        self.deviations.resizeRowsToContents()
        if not rows:
            self.reading.setText(self.reading.text() + " Nothing has needed tolerating.")

    # -- configuration -------------------------------------------------------------

    def _configuration_tab(self) -> QWidget:
        page = QWidget()
        self.config_table = QTableWidget(0, 3)
        self.config_table.setHorizontalHeaderLabels(["Key", "Value", "Access"])
        self.config_table.verticalHeader().setVisible(False)
        self.config_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.config_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.config_table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.config_table.itemSelectionChanged.connect(self._config_selected)
        read = QPushButton("Read from charger")
        read.clicked.connect(self.read_configuration)
        self.config_key = QLineEdit(readOnly=True)
        self.config_value = QLineEdit()
        self.config_apply = QPushButton("Change")
        self.config_apply.setEnabled(False)
        self.config_apply.clicked.connect(self.change_configuration)
        self.config_result = _result_label()
        edit = QHBoxLayout()
        edit.addWidget(QLabel("Key"))
        edit.addWidget(self.config_key, 2)
        edit.addWidget(QLabel("New value"))
        edit.addWidget(self.config_value, 2)
        edit.addWidget(self.config_apply)
        layout = QVBoxLayout(page)
        layout.addWidget(read, alignment=Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.config_table)
        layout.addLayout(edit)
        layout.addWidget(self.config_result)
        self._config: dict[str, tuple[str | None, bool]] = {}
        return page

    def read_configuration(self, announce: bool = True) -> None:
        """Read every key; `announce` False keeps the result line (after a change)."""
        label = self.config_result if announce else QLabel()
        self._run(
            label,
            lambda: self.commands.get_configuration(self.ident),  # type: ignore[union-attr]
            lambda answer: self._show_configuration(answer, label),
        )

    def _show_configuration(self, answer: Answer, label: QLabel) -> None:
        if not answer.ok:
            _show(label, False, f"GetConfiguration: {answer.detail}")
            return
        entries = [e for e in answer.payload.get("configurationKey", []) if isinstance(e, dict)]
        self._config = {
            str(e.get("key")): (e.get("value"), bool(e.get("readonly"))) for e in entries
        }
        self.config_table.setRowCount(len(self._config))
        for r, (key, (value, readonly)) in enumerate(sorted(self._config.items())):
            cells = [
                key,
                "" if value is None else str(value),
                "read-only" if readonly else "editable",
            ]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                if readonly:
                    item.setForeground(Qt.GlobalColor.darkGray)
                self.config_table.setItem(r, c, item)
        self.config_table.resizeColumnToContents(0)
        unknown = answer.payload.get("unknownKey") or []
        _show(
            label,
            True,
            f"{len(self._config)} keys read"
            + (f"; unknown to the charger: {', '.join(unknown)}" if unknown else ""),
        )

    def _config_selected(self) -> None:
        rows = self.config_table.selectionModel().selectedRows()
        if not rows:
            return
        key = self.config_table.item(rows[0].row(), 0).text()
        value, readonly = self._config.get(key, (None, True))
        self.config_key.setText(key)
        self.config_value.setText(value or "")
        self.config_value.setEnabled(not readonly)
        self.config_apply.setEnabled(not readonly)
        if readonly:
            _show(self.config_result, False, f"{key} is read-only on this charger.")

    def change_configuration(self) -> None:
        key, value = self.config_key.text(), self.config_value.text().strip()
        old, readonly = self._config.get(key, (None, True))
        if readonly:
            _show(self.config_result, False, f"{key} is read-only on this charger.")
            return
        problem = check_value(key, old, value)
        if problem:
            _show(self.config_result, False, problem)
            return

        def done(answer: Answer) -> None:
            meaning = CHANGE_MEANINGS.get(answer.status, answer.detail or answer.status)
            _show(self.config_result, answer.ok, f"{key} = {value}: {answer.status}, {meaning}")
            if answer.ok:
                self.read_configuration(announce=False)

        self._run(
            self.config_result,
            lambda: self.commands.change_configuration(self.ident, key, value),  # type: ignore[union-attr]
            done,
        )

    # -- charging profiles ---------------------------------------------------------

    def _profiles_tab(self) -> QWidget:
        page = QWidget()
        self.profile_connector = QSpinBox(minimum=0, maximum=16, value=self.connector)
        read = QPushButton("Read composite schedule")
        read.clicked.connect(self.read_schedule)
        self.schedule_result = _result_label()
        axis = pg.DateAxisItem(orientation="bottom")
        self.schedule_plot = pg.PlotWidget(axisItems={"bottom": axis})
        self.schedule_plot.setBackground("w")
        self.schedule_plot.showGrid(x=True, y=True, alpha=0.3)
        self.schedule_plot.setLabel("left", "Limit", units="kW")
        self.schedule_plot.setMouseEnabled(x=False, y=False)
        self.schedule_curve = self.schedule_plot.plot([], [], pen=POWER_PEN, stepMode="center")
        top = QHBoxLayout()
        top.addWidget(QLabel("Connector (0: the whole charger)"))
        top.addWidget(self.profile_connector)
        top.addWidget(read)
        top.addStretch(1)
        layout = QVBoxLayout(page)
        layout.addLayout(top)
        layout.addWidget(self.schedule_plot, 1)
        layout.addWidget(self.schedule_result)
        return page

    def read_schedule(self) -> None:
        connector = self.profile_connector.value()
        self._run(
            self.schedule_result,
            lambda: self.commands.get_composite_schedule(  # type: ignore[union-attr]
                self.ident, connector, SCHEDULE_SECONDS, "W"
            ),
            self._show_schedule,
        )

    def _show_schedule(self, answer: Answer) -> None:
        if not answer.ok:
            _show(self.schedule_result, False, f"GetCompositeSchedule: {answer.detail}")
            return
        schedule = answer.payload.get("chargingSchedule") or {}
        start_text = answer.payload.get("scheduleStart") or schedule.get("startSchedule")
        try:
            start = datetime.fromisoformat(str(start_text))
        except ValueError:
            _show(self.schedule_result, False, f"The charger sent no usable start: {start_text!r}")
            return
        duration = int(schedule.get("duration") or SCHEDULE_SECONDS)
        periods = sorted(
            (p for p in schedule.get("chargingSchedulePeriod", []) if isinstance(p, dict)),
            key=lambda p: p.get("startPeriod", 0),
        )
        unit = schedule.get("chargingRateUnit", "W")
        factor = 0.001 if unit == "W" else 0.69  # A on three phases of 230 V, in kW
        xs = [(start + timedelta(seconds=int(p["startPeriod"]))).timestamp() for p in periods]
        ys = [float(p["limit"]) * factor for p in periods]
        if not xs:
            _show(self.schedule_result, False, "The charger holds no schedule for this connector.")
            return
        xs.append((start + timedelta(seconds=duration)).timestamp())
        self.schedule_curve.setData(np.array(xs), np.array(ys))
        self.schedule_plot.setYRange(0, max(ys) * 1.15 + 0.1)
        local = start.astimezone(self.tz)
        _show(
            self.schedule_result,
            True,
            f"{len(periods)} period(s) from {local:%H:%M} for {duration // 3600} h;"
            f" lowest {min(ys):.1f} kW, highest {max(ys):.1f} kW",
        )

    # -- firmware and diagnostics --------------------------------------------------

    def _transfers_tab(self) -> QWidget:
        page = QWidget()
        self.firmware_choice = QComboBox()
        add = QPushButton("Add firmware file…")
        add.clicked.connect(self.choose_firmware)
        self.firmware_button = QPushButton("Update firmware")
        self.firmware_button.clicked.connect(self.update_firmware)
        self.diagnostics_button = QPushButton("Get diagnostics")
        self.diagnostics_button.clicked.connect(self.get_diagnostics)
        self.firmware_state = QLabel("")
        self.diagnostics_state = QLabel("")
        self.transfer_result = _result_label()
        self.steps = QTableWidget(0, 4)
        self.steps.setHorizontalHeaderLabels(["Time", "Of", "Status", "What happened"])
        self.steps.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.steps.verticalHeader().setVisible(False)
        self.steps.horizontalHeader().setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.received = QTableWidget(0, 3)
        self.received.setHorizontalHeaderLabels(["Diagnostics file received", "Bytes", "Time"])
        self.received.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.received.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.received.verticalHeader().setVisible(False)
        self.received.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.received.itemSelectionChanged.connect(self._show_received)
        self._received_paths: list[Path] = []
        self.received_text = QPlainTextEdit(readOnly=True)
        self.received_text.setPlaceholderText("Select a received file to read it here.")
        firmware = QHBoxLayout()
        firmware.addWidget(QLabel("Firmware file"))
        firmware.addWidget(self.firmware_choice, 1)
        firmware.addWidget(add)
        firmware.addWidget(self.firmware_button)
        diagnostics = QHBoxLayout()
        diagnostics.addWidget(self.diagnostics_state, 1)
        diagnostics.addWidget(self.diagnostics_button)
        files = QHBoxLayout()
        files.addWidget(self.received, 1)
        files.addWidget(self.received_text, 1)
        layout = QVBoxLayout(page)
        layout.addLayout(firmware)
        layout.addWidget(self.firmware_state)
        layout.addLayout(diagnostics)
        layout.addWidget(self.transfer_result)
        layout.addWidget(self.steps, 1)
        layout.addLayout(files, 1)
        self._fill_firmware_choice()
        return page

    def _fill_firmware_choice(self, selected: str | None = None) -> None:
        names = self.transfers.firmware_files() if self.transfers is not None else []
        self.firmware_choice.clear()
        self.firmware_choice.addItems(names)
        if selected in names:
            self.firmware_choice.setCurrentText(selected)
        self.firmware_button.setEnabled(bool(names) and self.transfers is not None)
        self.diagnostics_button.setEnabled(self.transfers is not None)
        if self.transfers is None:
            self.firmware_state.setText("Firmware and diagnostics are not served by this console.")
        elif not names:
            self.firmware_state.setText("No firmware file yet: add one to offer it.")

    def choose_firmware(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Firmware file for chargers")
        if path:
            self.add_firmware(Path(path))

    def add_firmware(self, source: Path) -> None:
        if self.transfers is None:
            return
        try:
            name = self.transfers.add_firmware(source)
        except (OSError, ValueError) as exc:
            _show(self.transfer_result, False, f"The file could not be added: {exc}")
            return
        self._fill_firmware_choice(name)
        _show(self.transfer_result, True, f"{name} is ready to send.")

    def update_firmware(self) -> None:
        name = self.firmware_choice.currentText()
        if self.transfers is None or not name:
            return
        transfers = self.transfers
        self._run(
            self.transfer_result,
            lambda: transfers.update_firmware(self.ident, name),
            self._explain_transfer(f"UpdateFirmware with {name}"),
        )

    def get_diagnostics(self) -> None:
        if self.transfers is None:
            return
        transfers = self.transfers
        self._run(
            self.transfer_result,
            lambda: transfers.get_diagnostics(self.ident),
            self._explain_transfer("GetDiagnostics"),
        )

    def _explain_transfer(self, action: str) -> Callable[[Answer], None]:
        def done(answer: Answer) -> None:
            if answer.ok:
                file_name = answer.payload.get("fileName")
                text = f"{action}: accepted" + (f"; {file_name} is coming" if file_name else "")
                _show(self.transfer_result, True, text)
            else:
                _show(self.transfer_result, False, f"{action}: {answer.detail or answer.status}")
            self.show_progress()

        return done

    def show_progress(self) -> None:
        """The firmware and diagnostics states, their steps and the files received."""
        if self.transfers is None:
            return
        state = self.transfers.state(self.ident)
        if len(state.steps) == self._shown_steps:
            return
        self._shown_steps = len(state.steps)
        if state.firmware_status is not None:
            self.firmware_state.setText(
                f"Firmware {state.firmware_file or ''}: {state.firmware_status}"
            )
        self.diagnostics_state.setText(
            f"Diagnostics: {state.diagnostics_status or 'none asked for yet'}"
        )
        steps = list(reversed(state.steps))
        self.steps.setRowCount(len(steps))
        for r, step in enumerate(steps):
            local = step.at.astimezone(self.tz).strftime("%H:%M:%S")
            for c, text in enumerate([local, step.what, step.status, step.detail]):
                self.steps.setItem(r, c, QTableWidgetItem(text))
        for column in range(3):
            self.steps.resizeColumnToContents(column)
        files = self.transfers.received_files(self.ident)
        self.received.setRowCount(len(files))
        self._received_paths = [f.path for f in files]
        for r, f in enumerate(files):
            cells = [f.path.name, str(f.size), f.received.astimezone(self.tz).strftime("%H:%M")]
            for c, text in enumerate(cells):
                self.received.setItem(r, c, QTableWidgetItem(text))

    def _show_received(self) -> None:
        rows = self.received.selectionModel().selectedRows()
        if not rows:
            return
        path = self._received_paths[rows[0].row()]
        try:
            with path.open("rb") as f:
                data = f.read(SHOWN_BYTES + 1)
        except OSError as exc:
            self.received_text.setPlainText(f"{path.name} cannot be read: {exc}")
            return
        text = data[:SHOWN_BYTES].decode("utf-8", "replace")
        if len(data) > SHOWN_BYTES:
            text += f"\n… (the first {SHOWN_BYTES // 1024} KiB of {path})"
        self.received_text.setPlainText(text)

    # -- reservations --------------------------------------------------------------

    def _reservations_tab(self) -> QWidget:
        page = QWidget()
        self.reservations = QTableWidget(0, 5)
        self.reservations.setHorizontalHeaderLabels(
            ["Connector", "Status", "Reservation", "For", "Until"]
        )
        self.reservations.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.reservations.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.reservations.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.reservations.verticalHeader().setVisible(False)
        self.reservations.horizontalHeader().setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.reserve_connector = QSpinBox(minimum=1, maximum=16, value=self.connector)
        self.reserve_id_tag = QLineEdit(placeholderText="idTag (a booking ID or a card)")
        self.reserve_id_tag.setMaxLength(20)
        self.reserve_minutes = QSpinBox(minimum=1, maximum=24 * 60, value=15, suffix=" min")
        reserve = QPushButton("Reserve")
        reserve.clicked.connect(self.reserve)
        cancel = QPushButton("Cancel the selected reservation")
        cancel.clicked.connect(self.cancel_reservation)
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.load_reservations)
        self.reservation_result = _result_label()
        row = QHBoxLayout()
        row.addWidget(QLabel("Connector"))
        row.addWidget(self.reserve_connector)
        row.addWidget(self.reserve_id_tag, 2)
        row.addWidget(QLabel("for"))
        row.addWidget(self.reserve_minutes)
        row.addWidget(reserve)
        buttons = QHBoxLayout()
        buttons.addWidget(cancel)
        buttons.addStretch(1)
        buttons.addWidget(refresh)
        layout = QVBoxLayout(page)
        layout.addWidget(self.reservations, 1)
        layout.addLayout(buttons)
        layout.addLayout(row)
        layout.addWidget(self.reservation_result)
        self._reserved: dict[int, tuple[int, str, datetime]] = {}  # made here, by connector
        self._reservation_ids: list[int | None] = []
        return page

    def load_reservations(self) -> None:
        """Each connector's status, and the reservation it holds (a booking's or one made
        here)."""
        rows = connector_reservations(self.ident)
        self.reservations.setRowCount(len(rows))
        self._reservation_ids = []
        for r, row in enumerate(rows):
            made = self._reserved.get(row.number)
            if made is not None and row.status != "Reserved":
                made = None  # used, expired or cancelled at the charger
            if made is not None:
                rid, who, until = made
                cells = [str(rid), who, until.astimezone(self.tz).strftime("%H:%M")]
                self._reservation_ids.append(rid)
            elif row.reservation_id is not None:
                start = row.booking_start.astimezone(self.tz) if row.booking_start else None
                cells = [
                    str(row.reservation_id),
                    f"booking {row.booking_code}",
                    f"its start {start:%H:%M}" if start else "",
                ]
                self._reservation_ids.append(row.reservation_id)
            else:
                cells = ["none", "", ""]
                self._reservation_ids.append(None)
            for c, text in enumerate([f"#{row.number}", row.status, *cells]):
                self.reservations.setItem(r, c, QTableWidgetItem(text))
        for column in (0, 1, 2, 4):
            self.reservations.resizeColumnToContents(column)

    def reserve(self) -> None:
        id_tag = self.reserve_id_tag.text().strip()
        if not id_tag or len(id_tag) > 20:
            _show(
                self.reservation_result, False, "ReserveNow needs an idTag of 1 to 20 characters."
            )
            return
        connector = self.reserve_connector.value()
        expiry = datetime.now(self.tz) + timedelta(minutes=self.reserve_minutes.value())
        # Bookings' reservations use the booking's id; these are kept far above them.
        reservation_id = MANUAL_RESERVATIONS + int(expiry.timestamp()) % MANUAL_RESERVATIONS

        def done(answer: Answer) -> None:
            if answer.ok:
                self._reserved[connector] = (reservation_id, id_tag, expiry)
            meaning = RESERVE_MEANINGS.get(answer.status, answer.detail or answer.status)
            _show(
                self.reservation_result,
                answer.ok,
                f"ReserveNow #{connector} for {id_tag}: {answer.status}, {meaning}",
            )
            self.load_reservations()

        self._run(
            self.reservation_result,
            lambda: self.commands.reserve_now(  # type: ignore[union-attr]
                self.ident, connector, expiry, id_tag, reservation_id
            ),
            done,
        )

    def cancel_reservation(self) -> None:
        rows = self.reservations.selectionModel().selectedRows()
        chosen = self._reservation_ids[rows[0].row()] if rows else None
        if chosen is None:
            _show(self.reservation_result, False, "Select a connector that holds a reservation.")
            return

        def done(answer: Answer) -> None:
            if answer.ok:
                for number, made in list(self._reserved.items()):
                    if made[0] == chosen:
                        del self._reserved[number]
            text = "cancelled" if answer.ok else "the charger holds no such reservation"
            _show(
                self.reservation_result,
                answer.ok,
                f"CancelReservation {chosen}: {answer.status}, {text}",
            )
            self.load_reservations()

        self._run(
            self.reservation_result,
            lambda: self.commands.cancel_reservation(self.ident, chosen),  # type: ignore[union-attr]
            done,
        )

    # -- other commands ------------------------------------------------------------

    def _commands_tab(self) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        self.trigger_message = QComboBox()
        self.trigger_message.addItems(TRIGGERABLE)
        trigger = QPushButton("Trigger")
        trigger.clicked.connect(self.trigger)
        row = QHBoxLayout()
        row.addWidget(self.trigger_message, 1)
        row.addWidget(trigger)
        form.addRow("Ask the charger to send", row)
        clear = QPushButton("Clear authorization cache")
        clear.clicked.connect(self.clear_cache)
        form.addRow(clear)
        self.vendor_id = QLineEdit(placeholderText="vendorId, e.g. com.example")
        self.message_id = QLineEdit(placeholderText="messageId (optional)")
        self.data = QLineEdit(placeholderText="data (optional)")
        transfer = QPushButton("DataTransfer")
        transfer.clicked.connect(self.data_transfer)
        form.addRow("Vendor", self.vendor_id)
        form.addRow("Message", self.message_id)
        form.addRow("Data", self.data)
        form.addRow(transfer)
        self.command_result = _result_label()
        form.addRow(self.command_result)
        return page

    def _explain(self, action: str) -> Callable[[Answer], None]:
        def done(answer: Answer) -> None:
            extra = f" ({answer.detail})" if answer.detail and not answer.ok else ""
            data = answer.payload.get("data") if action == "DataTransfer" else None
            _show(
                self.command_result,
                answer.ok,
                f"{action}: {answer.status}{extra}" + (f"; data: {data}" if data else ""),
            )

        return done

    def trigger(self) -> None:
        message = self.trigger_message.currentText()
        connector = self.connector if message in ("MeterValues", "StatusNotification") else None
        self._run(
            self.command_result,
            lambda: self.commands.trigger_message(self.ident, message, connector),  # type: ignore[union-attr]
            self._explain(f"TriggerMessage {message}"),
        )

    def clear_cache(self) -> None:
        self._run(
            self.command_result,
            lambda: self.commands.clear_cache(self.ident),  # type: ignore[union-attr]
            self._explain("ClearCache"),
        )

    def data_transfer(self) -> None:
        vendor = self.vendor_id.text().strip()
        if not vendor or len(vendor) > 255:
            _show(
                self.command_result, False, "DataTransfer needs a vendorId of 1 to 255 characters."
            )
            return
        message = self.message_id.text().strip()[:50] or None
        data = self.data.text() or None
        self._run(
            self.command_result,
            lambda: self.commands.data_transfer(self.ident, vendor, message, data),  # type: ignore[union-attr]
            self._explain("DataTransfer"),
        )
