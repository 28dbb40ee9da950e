"""The command queue: commands to chargers asked by another process on the same database
(`evcms-desktop send`), carried out by the central system that holds the connection.

A row goes queued -> sent (claimed by one central system) -> done or failed. Claiming is
a conditional UPDATE, so that of several central systems on one database exactly one
sends each command.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from evcms_desktop.store.models import CommandState, QueuedCommand, utcnow
from evcms_desktop.store.nodes import notify_commands

DETAIL_MAX = 500


@dataclass(frozen=True)
class CommandOutcome:
    state: CommandState
    status: str | None
    result: dict[str, Any] | None
    detail: str | None


def enqueue(
    charge_point: str,
    action: str,
    payload: dict[str, Any],
    requested_by: str | None = None,
    operator: str | None = None,
    *,
    system: bool = False,
) -> int:
    """Queue a command (its payload already checked against the 1.6 schema); its id.
    `operator`: who signed in and asked (an operator's name: the database refuses any
    other), whose role the serving node checks; `system`: a node's own work instead.
    `requested_by` says which process asked (a user, a node, a console), for the log."""
    row = QueuedCommand.create(
        charge_point=charge_point,
        action=action,
        payload=payload,
        requested_by=requested_by,
        operator=operator,
        system=system,
        created_at=utcnow(),
    )
    notify_commands(charge_point)
    return int(row.id)


def queued(limit: int = 100) -> list[QueuedCommand]:
    """The oldest commands nobody has claimed yet."""
    return list(
        QueuedCommand.select()
        .where(QueuedCommand.state == CommandState.QUEUED)
        .order_by(QueuedCommand.created_at, QueuedCommand.id)
        .limit(limit)
    )


def claim(command_id: int, node: str, now: datetime) -> bool:
    """Take a queued command for sending; False if another took (or withdrew) it first."""
    return bool(
        QueuedCommand.update(state=CommandState.SENT.value, claimed_by=node, claimed_at=now)
        .where((QueuedCommand.id == command_id) & (QueuedCommand.state == CommandState.QUEUED))
        .execute()
    )


def finish(
    command_id: int,
    *,
    done: bool,
    status: str | None,
    result: dict[str, Any] | None,
    detail: str | None,
    now: datetime,
) -> None:
    """Record the charger's answer (done) or why there is none (failed)."""
    QueuedCommand.update(
        state=(CommandState.DONE if done else CommandState.FAILED).value,
        status=status,
        result=result,
        detail=detail[:DETAIL_MAX] if detail else detail,
        finished_at=now,
    ).where(QueuedCommand.id == command_id).execute()


def withdraw(command_id: int, detail: str, now: datetime) -> bool:
    """Fail a command still queued (its asker gave up waiting); False if it was claimed."""
    return bool(
        QueuedCommand.update(
            state=CommandState.FAILED.value, detail=detail[:DETAIL_MAX], finished_at=now
        )
        .where((QueuedCommand.id == command_id) & (QueuedCommand.state == CommandState.QUEUED))
        .execute()
    )


def outcome(command_id: int) -> CommandOutcome | None:
    """The state of a command; None while it is not finished."""
    row = QueuedCommand.get_or_none(QueuedCommand.id == command_id)
    if row is None or row.state in (CommandState.QUEUED, CommandState.SENT):
        return None
    return CommandOutcome(CommandState(row.state), row.status, row.result, row.detail)


def prune(now: datetime, keep: timedelta = timedelta(days=7)) -> int:
    """Forget finished commands older than `keep`."""
    return int(
        QueuedCommand.delete()
        .where(
            QueuedCommand.state.in_([CommandState.DONE.value, CommandState.FAILED.value])
            & (QueuedCommand.finished_at < now - keep)
        )
        .execute()
    )
