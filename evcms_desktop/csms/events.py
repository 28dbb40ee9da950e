"""The central system's events and the small bus that carries them to front ends.

Front ends (the Qt console, the headless log) subscribe; they never reach into the
protocol objects. Subscribers are called synchronously in the publisher's loop, so a
subscriber must be quick (the console only queues a Qt signal).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from evcms_desktop.store.models import utcnow

log = logging.getLogger(__name__)


class EventKind(enum.StrEnum):
    CHARGER_CONNECTED = "charger_connected"
    CHARGER_BOOTED = "charger_booted"
    CHARGER_PENDING = "charger_pending"
    STATUS_CHANGED = "status_changed"
    CHARGER_DISCONNECTED = "charger_disconnected"
    EV_CONNECTED = "ev_connected"
    CHARGING_STARTED = "charging_started"
    METER_VALUES = "meter_values"
    FULLY_CHARGED = "fully_charged"
    SESSION_STOPPED = "session_stopped"
    BOOKING_NO_SHOW = "booking_no_show"
    BOOKINGS_CHANGED = "bookings_changed"
    OCPP_MESSAGE = "ocpp_message"
    PROTOCOL_ERROR = "protocol_error"
    CHARGER_REPORT = "charger_report"  # DataTransfer, diagnostics and firmware status


# Kinds a person is told about (the Notifications list); the rest feed views and logs.
NOTIFICATION_KINDS = frozenset(
    {
        EventKind.CHARGER_CONNECTED,
        EventKind.CHARGER_PENDING,
        EventKind.CHARGER_DISCONNECTED,
        EventKind.EV_CONNECTED,
        EventKind.CHARGING_STARTED,
        EventKind.FULLY_CHARGED,
        EventKind.SESSION_STOPPED,
        EventKind.BOOKING_NO_SHOW,
    }
)

# Kinds kept in the store's Event table: the notifications, and what an audit needs.
PERSISTED_KINDS = NOTIFICATION_KINDS | {
    EventKind.CHARGER_BOOTED,
    EventKind.PROTOCOL_ERROR,
    EventKind.CHARGER_REPORT,
}


@dataclass(frozen=True)
class CsmsEvent:
    kind: EventKind
    message: str
    charge_point: str | None = None
    connector: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    timestamp: datetime = field(default_factory=utcnow)

    @property
    def is_notification(self) -> bool:
        return self.kind in NOTIFICATION_KINDS


Subscriber = Callable[[CsmsEvent], None]


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add a subscriber; returns the function that removes it."""
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    def publish(self, event: CsmsEvent) -> None:
        for subscriber in list(self._subscribers):
            try:
                subscriber(event)
            except Exception:
                log.exception("Event subscriber failed on %s", event.kind)
