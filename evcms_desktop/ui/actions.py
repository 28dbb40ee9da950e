"""Operator actions on a connector: role check, confirmation, the command, its answer.

Every step is a dialog opened with open() and continued by its signals; the command runs
as an asyncio task, so the loop is never blocked while a charger takes its time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QDialog, QWidget

from evcms_desktop.store.models import Station, utcnow
from evcms_desktop.store.stations import station_calendar
from evcms_desktop.ui.dialogs.charger_tools import ChargerToolsDialog, Transfers
from evcms_desktop.ui.dialogs.confirm import ConfirmDialog
from evcms_desktop.ui.dialogs.remote_start import RemoteStartDialog
from evcms_desktop.ui.dialogs.sign_in import SignInDialog
from evcms_desktop.ui.models.chargers import ChargerRow
from evcms_desktop.ui.roles import Session

log = logging.getLogger(__name__)


class Result(Protocol):
    status: str
    ok: bool
    detail: str


class Commands(Protocol):
    """What the console asks of the central system's CommandService."""

    async def remote_start(
        self, cp_id: str, id_tag: str, connector_id: int | None = None
    ) -> Result: ...
    async def remote_stop(self, cp_id: str, transaction_id: int) -> Result: ...
    async def reset(self, cp_id: str, kind: str = "Soft") -> Result: ...
    async def unlock_connector(self, cp_id: str, connector_id: int) -> Result: ...
    async def change_availability(self, cp_id: str, connector_id: int, kind: str) -> Result: ...


STATUS_WORDS = {"TimedOut": "timed out", "Offline": "offline", "Error": "error"}


@dataclass(frozen=True)
class Outcome:
    action: str
    target: str
    status: str
    ok: bool
    detail: str = ""
    charge_point: str | None = None  # the charger acted on: its site's consoles see it

    @property
    def text(self) -> str:
        status = STATUS_WORDS.get(self.status, self.status)
        extra = f" ({self.detail})" if self.detail and not self.ok else ""
        return f"{self.action} on {self.target}: {status}{extra}"


class ConnectorActions(QObject):
    finished = Signal(object)  # Outcome
    denied = Signal(str)  # the action that needed an operator
    dialog_opened = Signal(object)  # every dialog this controller opens (tests, screenshots)

    def __init__(
        self,
        station: Station,
        session: Session,
        commands: Commands | None,
        parent_widget: QWidget,
        approver: Callable[[str, Station], object] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(parent_widget)
        self.station = station
        self.session = session
        self.commands = commands
        self.parent_widget = parent_widget
        self.approver = approver
        self.clock = clock
        self.tasks: set[asyncio.Task[None]] = set()
        self.dialog: QDialog | None = None
        self.transfers: Transfers | None = None  # firmware and diagnostics, when served
        self.retired = False  # its window was closed: it acts no more

    def _open(self, dialog: QDialog) -> None:
        self.dialog = dialog
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()
        self.dialog_opened.emit(dialog)

    def require_operator(self, action: str, then: Callable[[], None]) -> None:
        """Run `then` as operator; in attendant mode ask for a sign-in first."""
        if self.session.is_operator:
            then()
            return
        dialog = SignInDialog(
            self.session,
            f"{action} is an operator action. Sign in to continue.",
            self.parent_widget,
        )
        # A named attendant may sign in here too; the action is still theirs to be denied.
        # A sign-in that closed this window (its console now shows other sites) runs
        # nothing: what was asked here was asked of sites the one signed in may not see.
        dialog.accepted.connect(
            lambda: (
                None if self.retired else then() if self.session.is_operator else self._deny(action)
            )
        )
        dialog.rejected.connect(lambda: None if self.retired else self._deny(action))
        self._open(dialog)

    def _deny(self, action: str) -> None:
        log.info("%s refused: no operator sign-in", action)
        self.denied.emit(action)

    def _run(self, action: str, row: ChargerRow, command: Callable[[], Awaitable[Result]]) -> None:
        target, ident = row.label, row.ident
        if self.commands is None:
            self.finished.emit(
                Outcome(action, target, "Offline", False, "no central system", ident)
            )
            return

        async def go() -> None:
            result = await command()
            outcome = Outcome(action, target, result.status, result.ok, result.detail, ident)
            log.info("%s", outcome.text)
            self.finished.emit(outcome)

        task = asyncio.ensure_future(go())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _confirm(
        self,
        row: ChargerRow,
        action: str,
        text: str,
        command: Callable[[str], Callable[[], Awaitable[Result]]],
        choices: list[str] | None = None,
    ) -> None:
        def ask() -> None:
            dialog = ConfirmDialog(
                f"{action} on {row.label}", text, action, choices, self.parent_widget
            )
            dialog.accepted.connect(lambda: self._run(action, row, command(dialog.chosen)))
            self._open(dialog)

        self.require_operator(action, ask)

    # The actions
    def remote_start(self, row: ChargerRow) -> None:
        def ask() -> None:
            dialog = RemoteStartDialog(
                self.station, row.label, row.connector_id, self.clock(), self.parent_widget
            )
            dialog.accepted.connect(
                lambda: self._run(
                    "Remote start",
                    row,
                    lambda tag=dialog.chosen_tag: self.commands.remote_start(  # type: ignore[union-attr]
                        row.ident, tag, row.connector
                    ),
                )
            )
            self._open(dialog)

        self.require_operator("Remote start", ask)

    def remote_stop(self, row: ChargerRow) -> None:
        tx = row.transaction_id
        if tx is None:
            self.finished.emit(
                Outcome("Remote stop", row.label, "Rejected", False, "not charging", row.ident)
            )
            return
        self._confirm(
            row,
            "Remote stop",
            f"Stop the charging session on {row.label} (transaction {tx},"
            f" booking {row.booking_code or 'none'})?",
            lambda _: lambda: self.commands.remote_stop(row.ident, tx),  # type: ignore[union-attr]
        )

    def unlock(self, row: ChargerRow) -> None:
        self._confirm(
            row,
            "Unlock",
            f"Unlock the cable on {row.label}? A running session there stops.",
            lambda _: lambda: self.commands.unlock_connector(row.ident, row.connector),  # type: ignore[union-attr]
        )

    def charger_tools(self, row: ChargerRow) -> None:
        """A charger's tolerated deviations, configuration, profiles and other commands."""

        def open_tools() -> None:
            tz = station_calendar(self.station).tz
            self._open(
                ChargerToolsDialog(
                    row.ident,
                    row.connector,
                    self.commands,  # type: ignore[arg-type]
                    tz,
                    self.parent_widget,
                    self.transfers,
                )
            )

        self.require_operator("Charger tools", open_tools)

    def reset(self, row: ChargerRow) -> None:
        self._confirm(
            row,
            "Reset",
            f"Reset charger {row.ident}? Every session on it stops. Soft restarts the"
            " software, Hard the whole charger.",
            lambda kind: lambda: self.commands.reset(row.ident, kind),  # type: ignore[union-attr]
            ["Soft", "Hard"],
        )

    def change_availability(self, row: ChargerRow) -> None:
        self._confirm(
            row,
            "Change availability",
            f"Make {row.label} Operative (bookable, can charge) or Inoperative?",
            lambda kind: (
                lambda: self.commands.change_availability(  # type: ignore[union-attr]
                    row.ident, row.connector, kind
                )
            ),
            ["Inoperative", "Operative"],
        )

    def approve(self, row: ChargerRow) -> None:
        """Let a Pending charger in; it is accepted at its next BootNotification."""

        def approve() -> None:
            if self.approver is None:
                return
            try:
                self.approver(row.ident, self.station)  # it joins this console's site
            except ValueError as exc:
                self.finished.emit(
                    Outcome("Approve", row.ident, "Rejected", False, str(exc), row.ident)
                )
                return
            self.finished.emit(
                Outcome("Approve", row.ident, "Accepted", True, charge_point=row.ident)
            )

        def ask() -> None:
            dialog = ConfirmDialog(
                f"Approve {row.ident}",
                f"Let charger {row.ident} connect to this station from now on?",
                "Approve",
                parent=self.parent_widget,
            )
            dialog.accepted.connect(approve)
            self._open(dialog)

        self.require_operator("Approve", ask)
