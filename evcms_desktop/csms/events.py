"""The central system's events and the small bus that carries them to front ends.

Front ends (the Qt console, the headless log) subscribe; they never reach into the
protocol objects. Subscribers are called synchronously in the publisher's loop, so a
subscriber must be quick (the console only queues a Qt signal).
"""

from __future__ import annotations

import enum
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from evcms_desktop.domain.tariff import format_money
from evcms_desktop.domain.text import log_safe
from evcms_desktop.store.models import utcnow

if TYPE_CHECKING:
    from evcms_desktop.csms.sessions import StopOutcome

log = logging.getLogger(__name__)
CSMS = "evcms_desktop.csms"  # the logger of what no one module of it produced


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
    CHARGER_REPORT = "charger_report"  # DataTransfer from a charger
    CHARGER_DEVIATION = "charger_deviation"  # a kind of quirk first tolerated since start
    READING_REFUSED = "reading_refused"  # implausible meter values, not stored
    CLOCK_SKEW = "clock_skew"  # a charger's clock is far from the server's
    START_REFUSED = "start_refused"  # a StartTransaction refused (data: its reason)
    SESSION_REVIEW = "session_review"  # a session not billed from its raw meter numbers
    STORE_TROUBLE = "store_trouble"  # the store cannot commit (data: {"error": ... or None})
    ROWS_SET_ASIDE = "rows_set_aside"  # rows the store refused, kept in a file (data: count)
    BOOKED_ENERGY_REACHED = "booked_energy_reached"
    PLAN_NOT_LIMITED = "plan_not_limited"  # the charger took no TxProfile for a booking
    CAR_OVERSTAYING = "car_overstaying"  # still plugged in after its booking's end
    FIRMWARE_STATUS = "firmware_status"  # a step of a firmware update (csms.file_transfers)
    DIAGNOSTICS_STATUS = "diagnostics_status"  # a step of a diagnostics upload
    TRANSFER_FINISHED = "transfer_finished"  # firmware installed or failed; diagnostics stored
    CHARGER_LOCKED_OUT = "charger_locked_out"  # an id or address, after wrong passwords


# What the driver of a booking is told ("My booking"), besides the attendant.
DRIVER_KINDS = (
    EventKind.BOOKED_ENERGY_REACHED,
    EventKind.FULLY_CHARGED,
    EventKind.CAR_OVERSTAYING,
)

# Kinds a person is told about (the Notifications list); the rest feed views and logs.
NOTIFICATION_KINDS = frozenset(
    {
        EventKind.CHARGER_CONNECTED,
        EventKind.CHARGER_PENDING,
        EventKind.CHARGER_DISCONNECTED,
        EventKind.EV_CONNECTED,
        EventKind.CHARGING_STARTED,
        EventKind.FULLY_CHARGED,
        EventKind.BOOKED_ENERGY_REACHED,
        EventKind.CAR_OVERSTAYING,
        EventKind.PLAN_NOT_LIMITED,
        EventKind.TRANSFER_FINISHED,
        EventKind.SESSION_STOPPED,
        EventKind.BOOKING_NO_SHOW,
        EventKind.SESSION_REVIEW,
        EventKind.STORE_TROUBLE,
        EventKind.ROWS_SET_ASIDE,
        EventKind.CLOCK_SKEW,
        EventKind.CHARGER_LOCKED_OUT,
    }
)

# Kinds kept in the store's Event table: the notifications, and what an audit needs.
PERSISTED_KINDS = NOTIFICATION_KINDS | {
    EventKind.CHARGER_BOOTED,
    EventKind.PROTOCOL_ERROR,
    EventKind.CHARGER_REPORT,
    EventKind.FIRMWARE_STATUS,
    EventKind.DIAGNOSTICS_STATUS,
    EventKind.CHARGER_DEVIATION,
    EventKind.READING_REFUSED,
    EventKind.START_REFUSED,
}


@dataclass(frozen=True)
class CsmsEvent:
    kind: EventKind
    message: str
    charge_point: str | None = None
    connector: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    timestamp: datetime = field(default_factory=utcnow)
    origin: str | None = None  # the node it happened on, when not this one (csms.nodes)
    source: str | None = None  # the module that published it: the logger it is logged under

    @property
    def logger(self) -> logging.Logger:
        """The logger of the module that produced the event (another node's: csms.nodes)."""
        if self.source is not None:
            return logging.getLogger(self.source)
        return logging.getLogger(f"{CSMS}.nodes" if self.origin else CSMS)

    @property
    def is_notification(self) -> bool:
        return self.kind in NOTIFICATION_KINDS


Subscriber = Callable[[CsmsEvent], None]


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add a subscriber; returns the function that removes it (once or more)."""
        self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

        return unsubscribe

    def publish(self, event: CsmsEvent) -> None:
        for subscriber in list(self._subscribers):
            try:
                subscriber(event)
            except Exception:
                log.exception("Event subscriber failed on %s", event.kind)


class Publish(Protocol):
    """How the central system's parts announce what happened (see `Publisher`)."""

    def __call__(
        self,
        kind: EventKind,
        message: str,
        charge_point: str | None = None,
        connector: int | None = None,
        data: dict[str, Any] | None = None,
    ) -> None: ...


def _publishing_module() -> str:
    """The module that called the publisher, past this one's helpers."""
    frame = sys._getframe(2)
    while frame.f_back is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back
    return str(frame.f_globals.get("__name__", CSMS))


class Publisher:
    """Stamps events with the central system's clock and the module that published them,
    logs notifications under that module's logger, and publishes."""

    def __init__(self, bus: EventBus, clock: Callable[[], datetime]) -> None:
        self._bus = bus
        self._clock = clock

    def __call__(
        self,
        kind: EventKind,
        message: str,
        charge_point: str | None = None,
        connector: int | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        event = CsmsEvent(
            kind,
            message,
            charge_point,
            connector,
            data or {},
            self._clock(),
            source=_publishing_module(),
        )
        if event.is_notification:
            event.logger.info("%s", log_safe(message, len(message)))
        self._bus.publish(event)


def publish_session_stopped(publish: Publish, ident: str, outcome: StopOutcome) -> None:
    """Tell subscribers that a session ended, with its energy and cost."""
    tx = outcome.transaction
    if tx is None or outcome.already_stopped or outcome.price is None:
        return
    if outcome.review is not None:
        publish(
            EventKind.SESSION_REVIEW,
            f"Session {tx.id} at {ident} needs review: {outcome.review}",
            ident,
            tx.connector_number,
            data={"transaction_id": tx.id, "review": outcome.review},
        )
    publish(
        EventKind.SESSION_STOPPED,
        f"Session {tx.id} at {ident} #{tx.connector_number} stopped:"
        f" {tx.energy_kwh} kWh, {format_money(outcome.price.total, outcome.currency)}"
        + (f"; {outcome.explanation}" if outcome.explanation else ""),
        ident,
        tx.connector_number,
        data={
            "transaction_id": tx.id,
            "booking_code": outcome.booking_code,
            "energy_kwh": str(tx.energy_kwh),
            "cost": str(outcome.price.total),
            "currency": outcome.currency,
            "reason": tx.stop_reason,
            "quoted": None if outcome.quoted is None else str(outcome.quoted),
            "booked_kwh": None if outcome.booked_kwh is None else str(outcome.booked_kwh),
            "billed_kwh": str(outcome.billed_kwh),
            "explanation": outcome.explanation,
        },
    )
