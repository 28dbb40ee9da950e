"""Schema versions and the steps between them.

A step takes the database from version N-1 to N. Before any step runs the file is backed
up next to itself, so a failed upgrade loses nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import peewee
from playhouse.migrate import SqliteMigrator, migrate

from evcms_desktop.store.fields import UTCDateTimeField
from evcms_desktop.store.models import (
    ChargerDeviation,
    Node,
    Operator,
    QueuedCommand,
    Setting,
    Station,
)

SCHEMA_VERSION = 8

MigrationStep = Callable[[SqliteMigrator], None]


def _to_2(migrator: SqliteMigrator) -> None:
    """2: check-in time on bookings, stop reason on transactions, acknowledged events,
    and an index that covers the planner's booking query."""
    migrate(
        migrator.drop_index("booking", "booking_station_id_start"),
        migrator.add_index(
            "booking", ("station_id", "start", "end", "state", "connector_id"), unique=False
        ),
        migrator.add_column("booking", "checked_in_at", UTCDateTimeField(null=True)),
        migrator.add_column("charging_transaction", "stop_reason", peewee.CharField(null=True)),
        migrator.add_column("event", "acknowledged", peewee.BooleanField(default=False)),
    )


def _to_3(migrator: SqliteMigrator) -> None:
    """3: per-charger strictness and time zone, the tolerated deviations, the command queue."""
    migrate(
        migrator.add_column("charge_point", "strict", peewee.BooleanField(null=True)),
        migrator.add_column("charge_point", "timezone", peewee.CharField(null=True)),
    )
    migrator.database.create_tables([ChargerDeviation, QueuedCommand])


def _to_4(migrator: SqliteMigrator) -> None:
    """4: many sites in one database; a site (station) is chosen by its name, so names are
    unique. A file from before has one station, which stays the default site."""
    migrate(migrator.add_index("station", ("name",), unique=True))


def _to_5(migrator: SqliteMigrator) -> None:
    """5: several central systems (nodes) on one database: which holds each charger's
    connection, and their heartbeats."""
    migrate(migrator.add_column("charge_point", "node", peewee.CharField(null=True)))
    migrator.database.create_tables([Node])


def _to_6(migrator: SqliteMigrator) -> None:
    """6: whether booked sessions continue past their booked energy is a site's setting;
    the one setting of the whole application before becomes every site's."""
    column = peewee.BooleanField(null=True, default=False)
    migrate(migrator.add_column("station", "continue_past_booked_energy", column))
    before = Setting.get_or_none(Setting.key == "sessions")
    carried = (
        before is not None
        and isinstance(before.value, dict)
        and before.value.get("continue_past_booked_energy")
    )
    Station.update(continue_past_booked_energy=carried is True).execute()
    if before is not None:
        before.delete_instance()


def _to_7(migrator: SqliteMigrator) -> None:
    """7: a charger locked out after repeated wrong passwords, until when."""
    migrate(migrator.add_column("charge_point", "locked_until", UTCDateTimeField(null=True)))


def _to_8(migrator: SqliteMigrator) -> None:
    """8: operators who sign in, and the operator who asked for each queued command."""
    columns = {c.name for c in migrator.database.get_columns("queued_command")}
    if "operator" not in columns:  # a file from before 3 got today's table at 3
        column = peewee.CharField(null=True, max_length=40)
        migrate(migrator.add_column("queued_command", "operator", column))
    migrator.database.create_tables([Operator])


STEPS: dict[int, MigrationStep] = {
    2: _to_2,
    3: _to_3,
    4: _to_4,
    5: _to_5,
    6: _to_6,
    7: _to_7,
    8: _to_8,
}
