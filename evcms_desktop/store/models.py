"""The tables. Times are aware UTC datetimes, money and energy are exact Decimals.

Every change here needs a step in `store.migrations` and a bump of SCHEMA_VERSION.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, ClassVar

import peewee

from evcms_desktop.store.fields import DecimalTextField, JSONField, UTCDateTimeField

database_proxy = peewee.DatabaseProxy()


def utcnow() -> datetime:
    return datetime.now(UTC)


class BaseModel(peewee.Model):
    # Made by peewee for every model; declared for the type checker only (on the class
    # `id` is the field, on a row its value).
    id: Any
    DoesNotExist: ClassVar[type[peewee.DoesNotExist]]

    class Meta:
        database = database_proxy
        legacy_table_names = False


class SchemaVersion(BaseModel):
    version = peewee.IntegerField()
    applied_at = UTCDateTimeField(default=utcnow)


class Setting(BaseModel):
    """Application-wide key/value settings (operator password hash, listening port, ...)."""

    key = peewee.CharField(primary_key=True)
    value = JSONField(null=True)


class Station(BaseModel):
    """A site: its own tariff, Peak On calendar, time zone, chargers and power limit."""

    name = peewee.CharField(unique=True)  # schema 4: how --site chooses it
    timezone = peewee.CharField(default="Europe/London")
    currency = peewee.CharField(default="GBP")
    energy_price = DecimalTextField(default="0.50")
    max_power_kw = DecimalTextField(default="22")
    efficiency = DecimalTextField(default="0.8")
    peak_demand_charge = DecimalTextField(default="3.00")
    service_charge = DecimalTextField(default="0.20")
    # {"Mon": ["08:00-11:00", "16:00-22:00"], ...}; null means the default calendar.
    peak_windows = JSONField(null=True)
    step_minutes = peewee.IntegerField(default=15)
    horizon_hours = peewee.IntegerField(default=24)
    authorize_grace_minutes = peewee.IntegerField(default=15)
    site_power_limit_kw = DecimalTextField(null=True)
    # schema 6: booked sessions go on past their booked energy, the extra billed (null
    # as False: SQLite adds a NOT NULL column by rebuilding the table, cascading deletes)
    continue_past_booked_energy = peewee.BooleanField(null=True, default=False)


class ChargePointState(enum.StrEnum):
    PENDING = "pending"  # connected without being known; waits for an operator
    APPROVED = "approved"
    REMOVED = "removed"


class ChargePoint(BaseModel):
    ident = peewee.CharField(unique=True, max_length=48)  # the OCPP chargePointId
    # None while Pending (schema 10): approving it gives it a site.
    station = peewee.ForeignKeyField(
        Station, backref="charge_points", on_delete="CASCADE", null=True
    )
    station_id: int | None  # the foreign key column, for the type checker
    password_hash = peewee.CharField(null=True)
    state = peewee.CharField(default=ChargePointState.APPROVED.value)
    vendor = peewee.CharField(null=True)
    model = peewee.CharField(null=True)
    serial_number = peewee.CharField(null=True)
    firmware_version = peewee.CharField(null=True)
    supports_reservation = peewee.BooleanField(default=False)
    strict = peewee.BooleanField(null=True)  # schema 3; None: the central system's setting
    timezone = peewee.CharField(null=True)  # schema 3; offset-less times; None: the station's
    connected = peewee.BooleanField(default=False)
    last_boot_at = UTCDateTimeField(null=True)
    last_seen_at = UTCDateTimeField(null=True)
    node = peewee.CharField(null=True)  # schema 5: the central system holding its connection
    locked_until = UTCDateTimeField(null=True)  # schema 7: refused after wrong passwords
    created_at = UTCDateTimeField(default=utcnow)


def connector_label(charge_point_ident: str, number: int) -> str:
    return f"{charge_point_ident} #{number}"


class Connector(BaseModel):
    charge_point = peewee.ForeignKeyField(ChargePoint, backref="connectors", on_delete="CASCADE")
    number = peewee.IntegerField()  # OCPP connectorId, 1-based
    max_power_kw = DecimalTextField(default="22")
    status = peewee.CharField(default="Unavailable")  # OCPP ChargePointStatus
    error_code = peewee.CharField(default="NoError")
    status_at = UTCDateTimeField(null=True)

    class Meta:
        indexes = ((("charge_point", "number"), True),)

    @property
    def label(self) -> str:
        return connector_label(self.charge_point.ident, self.number)


class BookingState(enum.StrEnum):
    CONFIRMED = "confirmed"
    CHECKED_IN = "checked_in"
    CHARGING = "charging"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"


BLOCKING_STATES = (BookingState.CONFIRMED, BookingState.CHECKED_IN, BookingState.CHARGING)


class Booking(BaseModel):
    code = peewee.CharField(unique=True, max_length=20)  # the booking ID, used as idTag
    station = peewee.ForeignKeyField(Station, backref="bookings", on_delete="CASCADE")
    connector = peewee.ForeignKeyField(Connector, backref="bookings", on_delete="CASCADE")
    start = UTCDateTimeField()
    end = UTCDateTimeField()
    requested_start = UTCDateTimeField()
    requested_end = UTCDateTimeField()
    energy_kwh = DecimalTextField()
    power_kw = DecimalTextField()
    plan = peewee.IntegerField()  # 1..4, or 0 for a booking made as asked
    peak_on = peewee.BooleanField()
    overlapped = peewee.BooleanField()
    acm = DecimalTextField()
    rule = peewee.CharField(default="optimized")
    price_energy = DecimalTextField()
    price_time_of_use = DecimalTextField()
    price_service = DecimalTextField()
    price_total = DecimalTextField()
    state = peewee.CharField(default=BookingState.CONFIRMED.value, index=True)
    driver_name = peewee.CharField(null=True)
    driver_contact = peewee.CharField(null=True)
    created_at = UTCDateTimeField(default=utcnow)
    checked_in_at = UTCDateTimeField(null=True)  # schema 2
    closed_at = UTCDateTimeField(null=True)
    reservation_sent = peewee.BooleanField(default=False)

    class Meta:
        indexes = (
            # covers the planner's query (schema 2), so it never touches the table rows
            (("station", "start", "end", "state", "connector"), False),
            (("connector", "start"), False),
        )


class TransactionState(enum.StrEnum):
    ACTIVE = "active"
    FINISHED = "finished"
    REFUSED = "refused"  # a StartTransaction answered with a status other than Accepted


class ChargingTransaction(BaseModel):
    """One OCPP transaction. Its auto-increment id is the transactionId sent to the charger."""

    charge_point = peewee.ForeignKeyField(ChargePoint, backref="transactions", on_delete="CASCADE")
    connector_number = peewee.IntegerField()
    booking = peewee.ForeignKeyField(Booking, backref="transactions", null=True)
    booking_id: int | None  # the foreign key column, for the type checker
    id_tag = peewee.CharField(max_length=20)
    reservation_id = peewee.IntegerField(null=True)
    meter_start_wh = peewee.IntegerField()
    meter_stop_wh = peewee.IntegerField(null=True)
    started_at = UTCDateTimeField()
    stopped_at = UTCDateTimeField(null=True)
    stop_reason = peewee.CharField(null=True)  # schema 2
    state = peewee.CharField(default=TransactionState.ACTIVE.value, index=True)
    energy_kwh = DecimalTextField(null=True)
    price_energy = DecimalTextField(null=True)
    price_time_of_use = DecimalTextField(null=True)
    price_service = DecimalTextField(null=True)
    price_total = DecimalTextField(null=True)
    last_soc = peewee.FloatField(null=True)
    last_power_kw = peewee.FloatField(null=True)
    last_energy_wh = peewee.FloatField(null=True)
    # Schema 12: why the session was flagged for review (None: it was not), and why a
    # refused start was refused; kept with the bill, not only in events that are pruned.
    review = peewee.TextField(null=True)
    refusal = peewee.TextField(null=True)

    class Meta:
        indexes = (
            # a retried StartTransaction is recognised by these four
            (("charge_point", "connector_number", "id_tag", "started_at"), True),
        )


class MeterValue(BaseModel):
    charge_point = peewee.ForeignKeyField(ChargePoint, on_delete="CASCADE")
    connector_number = peewee.IntegerField()
    transaction = peewee.ForeignKeyField(
        ChargingTransaction, backref="meter_values", null=True, on_delete="CASCADE"
    )
    timestamp = UTCDateTimeField()
    measurand = peewee.CharField(default="Energy.Active.Import.Register")
    value = peewee.CharField()  # as sent: OCPP values are strings
    unit = peewee.CharField(null=True)
    phase = peewee.CharField(null=True)
    context = peewee.CharField(null=True)
    location = peewee.CharField(null=True)

    class Meta:
        indexes = (
            (("transaction", "timestamp"), False),
            (("charge_point", "connector_number", "timestamp"), False),
        )


class Event(BaseModel):
    """A notification or protocol event, kept for the console and for audit."""

    timestamp = UTCDateTimeField(default=utcnow, index=True)
    kind = peewee.CharField(index=True)
    charge_point = peewee.CharField(null=True)
    connector_number = peewee.IntegerField(null=True)
    booking_code = peewee.CharField(null=True)
    transaction_id = peewee.IntegerField(null=True)
    message = peewee.TextField()
    data = JSONField(null=True)
    acknowledged = peewee.BooleanField(default=False)  # schema 2


class ChargerDeviation(BaseModel):
    """What the tolerant reading had to bend for one charger: one row per kind (schema 3)."""

    charge_point = peewee.ForeignKeyField(ChargePoint, backref="deviations", on_delete="CASCADE")
    kind = peewee.CharField()
    count = peewee.IntegerField(default=0)
    last_example = peewee.TextField()
    first_at = UTCDateTimeField()
    last_at = UTCDateTimeField()

    class Meta:
        indexes = ((("charge_point", "kind"), True),)


class CommandState(enum.StrEnum):
    QUEUED = "queued"
    SENT = "sent"  # claimed by a central system and sent to the charger
    DONE = "done"  # the charger answered (result holds the answer)
    FAILED = "failed"  # refused, offline, timed out or expired (detail says which)


class Operator(BaseModel):
    """A person who signs in at a console (schema 8): a role and an Argon2id password hash.

    Schema 11: the one site they work at (an attendant has one; an operator without one
    works at every site), and their wrong sign-ins in a row and the lock they earned, kept
    here so that no console or command line starts counting afresh."""

    name = peewee.CharField(primary_key=True, max_length=40)
    role = peewee.CharField(max_length=20)
    password_hash = peewee.CharField()
    created_at = UTCDateTimeField(default=utcnow)
    site = peewee.ForeignKeyField(Station, null=True, on_delete="CASCADE")
    site_id: int | None  # the foreign key column, for the type checker
    wrong_sign_ins = peewee.IntegerField(default=0)
    locks = peewee.IntegerField(default=0)
    locked_until = UTCDateTimeField(null=True)


class QueuedCommand(BaseModel):
    """A command to a charger asked by another process (`evcms-desktop send`), carried out
    by the central system that holds the charger's connection (schema 3).

    Who asked: a signed-in operator (a real row, schema 9), or the system (a node's own
    work: auto-stop, no-shows, re-planning), never a free-text name."""

    created_at = UTCDateTimeField(default=utcnow)
    charge_point = peewee.CharField(max_length=48)
    action = peewee.CharField(max_length=40)
    payload = JSONField()
    requested_by = peewee.CharField(null=True)
    state = peewee.CharField(default=CommandState.QUEUED.value)
    claimed_by = peewee.CharField(null=True)
    claimed_at = UTCDateTimeField(null=True)
    finished_at = UTCDateTimeField(null=True)
    status = peewee.CharField(null=True)  # the charger's status, or Offline / TimedOut / ...
    result = JSONField(null=True)
    detail = peewee.TextField(null=True)
    operator = peewee.ForeignKeyField(  # schema 9: the signed-in asker
        Operator, field=Operator.name, null=True, column_name="operator_id"
    )
    operator_id: str | None  # the foreign key column, for the type checker
    system = peewee.BooleanField(default=False)  # schema 9: a node's own work

    class Meta:
        indexes = ((("state", "created_at"), False),)


class Node(BaseModel):
    """A central system serving this database (schema 5), alive while it beats."""

    name = peewee.CharField(primary_key=True)
    started_at = UTCDateTimeField(default=utcnow)
    heartbeat_at = UTCDateTimeField(default=utcnow)


ALL_MODELS: tuple[type[BaseModel], ...] = (
    SchemaVersion,
    Setting,
    Station,
    ChargePoint,
    Connector,
    Booking,
    ChargingTransaction,
    MeterValue,
    Event,
    ChargerDeviation,
    Operator,
    QueuedCommand,
    Node,
)
