"""Serving the store's command queue (`store.command_queue`): a command another process
asked for a charger connected here is claimed, sent and its answer written back.

The queue is polled (every `command_poll_seconds`); `wake` serves it at once, for a
notification path that learns of new commands sooner.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import peewee
from ocpp.exceptions import OCPPError
from ocpp.messages import Call
from ocpp.v16 import call

from evcms_desktop.csms.background import BackgroundTasks
from evcms_desktop.csms.commands import ERROR, OFFLINE, TIMED_OUT, CommandService
from evcms_desktop.csms.config import Clock
from evcms_desktop.csms.protocol import to_snake, validate_message
from evcms_desktop.csms.writer import StoreUnavailable
from evcms_desktop.domain.roles import may_send
from evcms_desktop.domain.text import log_safe
from evcms_desktop.store import command_queue, operators
from evcms_desktop.store.models import ChargePoint, QueuedCommand

log = logging.getLogger(__name__)

# Every OCPP 1.6 (core and feature profiles) message a central system may send.
CSMS_ACTIONS = (
    "CancelReservation",
    "ChangeAvailability",
    "ChangeConfiguration",
    "ClearCache",
    "ClearChargingProfile",
    "DataTransfer",
    "GetCompositeSchedule",
    "GetConfiguration",
    "GetDiagnostics",
    "GetLocalListVersion",
    "RemoteStartTransaction",
    "RemoteStopTransaction",
    "ReserveNow",
    "Reset",
    "SendLocalList",
    "SetChargingProfile",
    "TriggerMessage",
    "UnlockConnector",
    "UpdateFirmware",
)
REFUSED = "Refused"  # the operator's role may not send it
_NO_ANSWER = frozenset({OFFLINE, TIMED_OUT, ERROR, REFUSED})
# Fills in what only the serving central system knows (its own URLs); ValueError refuses.
Resolve = Callable[[str, str, dict[str, Any]], dict[str, Any]]
StoreJob = Callable[[Callable[[], Any], str], Awaitable[Any]]  # BatchWriter.run


class CommandPayloadError(ValueError):
    """An action or payload that is not a valid 1.6 CALL to a charger."""


def build_call(action: str, payload: dict[str, Any]) -> Any:
    """The call dataclass of `action` with `payload` (camelCase), checked against 1.6."""
    if action not in CSMS_ACTIONS:
        raise CommandPayloadError(
            f"{action!r} is not a 1.6 message to a charger; one of: {', '.join(CSMS_ACTIONS)}"
        )
    try:
        validate_message(Call(str(uuid.uuid4()), action, payload), action)
    except OCPPError as exc:
        raise CommandPayloadError(f"{exc.code}: {exc.description}") from exc
    return getattr(call, action)(**to_snake(payload))


class CommandQueueServer:
    def __init__(
        self,
        commands: CommandService,
        is_connected: Callable[[str], bool],
        tasks: BackgroundTasks,
        clock: Clock,
        poll_seconds: float,
        node: str,
        store: StoreJob,
        resolve: Resolve | None = None,
    ) -> None:
        self._commands = commands
        self._store = store
        self._is_connected = is_connected
        self._tasks = tasks
        self._clock = clock
        self._poll_seconds = poll_seconds
        self.node = node  # who claimed a command, when several serve one database
        self._wake = asyncio.Event()
        self._resolve = resolve

    def wake(self) -> None:
        """Serve the queue now rather than at the next poll."""
        self._wake.set()

    async def run_forever(self) -> None:
        store_trouble: str | None = None  # said once, not at every poll
        while True:
            try:
                await self.serve_once()
                store_trouble = None
            except (peewee.DatabaseError, StoreUnavailable) as exc:
                if str(exc) != store_trouble:
                    log.warning("The command queue is not served: %s", exc)
                store_trouble = str(exc)
            except Exception:
                log.exception("Serving the command queue failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_seconds)
            self._wake.clear()

    async def serve_once(self) -> None:
        """Claim and send the queued commands for chargers connected here; fail those
        for chargers that no central system has connected."""
        for row in command_queue.queued():
            if self._is_connected(row.charge_point):
                if await self._claim(row):
                    self._tasks.spawn(self._send(row))
            elif not _connected_anywhere(row.charge_point) and await self._claim(row):
                await self._finish(
                    row, done=False, status=OFFLINE, detail=f"{row.charge_point} is not connected"
                )

    async def _claim(self, row: QueuedCommand) -> bool:
        now = self._clock()
        claimed = await self._store(
            lambda: command_queue.claim(row.id, self.node, now), f"claim of command #{row.id}"
        )
        return bool(claimed)

    async def _finish(
        self,
        row: QueuedCommand,
        *,
        done: bool,
        status: str,
        detail: str | None,
        result: dict[str, Any] | None = None,
    ) -> None:
        now = self._clock()

        def finish() -> None:
            command_queue.finish(
                row.id, done=done, status=status, result=result, detail=detail, now=now
            )

        try:
            await self._store(finish, f"answer of command #{row.id}")
        except StoreUnavailable as exc:
            log.warning("The answer to queued %s #%s is not stored: %s", row.action, row.id, exc)

    async def _send(self, row: QueuedCommand) -> None:
        try:
            fields = row.payload
            if self._resolve is not None:
                fields = self._resolve(row.charge_point, row.action, fields)
            payload = build_call(row.action, fields)
        except ValueError as exc:  # CommandPayloadError too
            await self._finish(row, done=False, status=ERROR, detail=str(exc))
            return
        if (refusal := _refusal(row)) is not None:
            log.warning(
                "Refused queued %s #%s to %s: %s", row.action, row.id, row.charge_point, refusal
            )
            await self._finish(row, done=False, status=REFUSED, detail=refusal)
            return
        result = await self._commands.send(row.charge_point, payload)
        log.info(
            "Queued %s #%s to %s (asked by %s, %s): %s",
            row.action,
            row.id,
            row.charge_point,
            _asker(row),
            row.requested_by or "?",
            result.status,
        )
        await self._finish(
            row,
            done=result.status not in _NO_ANSWER,
            status=result.status,
            result=result.payload if result.status not in _NO_ANSWER else None,
            detail=result.detail or None,
        )


NO_OPERATOR = (
    "no operator asked for it; this database has operators, so a command must name one"
    " (evcms-desktop send --as NAME)"
)


def _asker(row: QueuedCommand) -> str:
    if row.system:
        return "the system"
    return log_safe(row.operator_id, 40) if row.operator_id else "no operator"


def _refusal(row: QueuedCommand) -> str | None:
    """Why the command may not be sent (checked here, where it is executed); None if it
    may. A node's own work (`system`) is not an operator's. Any other command names an
    operator whose role permits it, unless the database has no operators at all (a
    station PC's file, whose command line is its operator)."""
    if row.system:
        return None
    if row.operator_id is None:
        return NO_OPERATOR if operators.any_operator() else None
    role = operators.role_of(row.operator_id)
    if role is None:
        return f"{log_safe(row.operator_id, 40)} is not an operator of this deployment"
    if not may_send(role, row.action):
        return f"{log_safe(row.operator_id, 40)} ({role.value}) may not send {row.action}"
    refusal = operators.site_refusal(row.operator_id, row.charge_point)
    return None if refusal is None else log_safe(refusal, 200)


def _connected_anywhere(ident: str) -> bool:
    return bool(
        ChargePoint.select(ChargePoint.connected)
        .where((ChargePoint.ident == ident) & ChargePoint.connected)
        .exists()
    )
