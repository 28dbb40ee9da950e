"""Schema versions and the steps between them.

A step takes the database from version N-1 to N. Before any step runs the file is backed
up next to itself, so a failed upgrade loses nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import peewee
from playhouse.migrate import SqliteMigrator, migrate

from evcms_desktop.store.fields import UTCDateTimeField

SCHEMA_VERSION = 2

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


STEPS: dict[int, MigrationStep] = {2: _to_2}
