"""Who may ask what of a charger: the attendant and operator roles.

The console's window asks for the role before an action, but the rule holds where the
command is executed: the node serving the command queue checks the queued command's
operator against these rights (see `csms.command_queue`).
"""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    ATTENDANT = "attendant"
    OPERATOR = "operator"


# OCPP actions a role may send to a charger. An attendant sends none: every charger
# command in the console asks for operator mode.
_CHARGER_ACTIONS: dict[Role, frozenset[str] | None] = {
    Role.ATTENDANT: frozenset(),
    Role.OPERATOR: None,  # every action
}


def may_send(role: Role, action: str) -> bool:
    """Whether `role` may send `action` to a charger."""
    allowed = _CHARGER_ACTIONS[role]
    return allowed is None or action in allowed
