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
    ChargingTransaction,
    Event,
    Node,
    Operator,
    QueuedCommand,
    Setting,
    Station,
)

SCHEMA_VERSION = 12

MigrationStep = Callable[[SqliteMigrator], None]

# PostgreSQL: who may queue a command as whom. The table's owner (the nodes' database
# role) queues as any operator and as the system; any other role (a console's) only as
# the operator of its own name, so that the operator of a queued command is the signed-in
# database user and not any text (see docs/deployment.md for the roles). `%%` is one `%`
# (the driver's placeholders).
_COMMAND_ASKER_SQL = (
    """
CREATE OR REPLACE FUNCTION evcms_command_asker() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF pg_has_role(session_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID),
                   'MEMBER') THEN
        RETURN NEW;
    END IF;
    IF NEW.system THEN
        RAISE EXCEPTION 'database role %% may not queue the system''s commands', session_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.operator_id IS DISTINCT FROM session_user::text THEN
        RAISE EXCEPTION 'database role %% queues commands as operator %%, not as %%',
            session_user, session_user, coalesce(NEW.operator_id, 'nobody')
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$
""",
    "DROP TRIGGER IF EXISTS queued_command_asker ON queued_command",
    "CREATE TRIGGER queued_command_asker BEFORE INSERT OR UPDATE OF operator_id, system"
    " ON queued_command FOR EACH ROW EXECUTE FUNCTION evcms_command_asker()",
)


def guard_command_askers(db: peewee.Database) -> None:
    """PostgreSQL only: a console's database role queues commands as itself only."""
    for statement in _COMMAND_ASKER_SQL:
        db.execute_sql(statement)


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
    if not columns & {"operator", "operator_id"}:  # a file from before 3 got today's at 3
        column = peewee.CharField(null=True, max_length=40)
        migrate(migrator.add_column("queued_command", "operator", column))
    migrator.database.create_tables([Operator])


def _to_9(migrator: SqliteMigrator) -> None:
    """9: a queued command's operator is a real operator (a foreign key, no longer any
    text), and a node's own commands are marked as the system's. A name that is no
    operator's is dropped: that command has no operator."""
    columns = {c.name for c in migrator.database.get_columns("queued_command")}
    if "operator_id" in columns:  # a file from before 3 got today's table at 3
        return
    operator = peewee.ForeignKeyField(
        Operator, field=Operator.name, null=True, column_name="operator_id"
    )
    migrate(
        migrator.add_column("queued_command", "operator_id", operator),
        migrator.add_column("queued_command", "system", peewee.BooleanField(default=False)),
    )
    migrator.database.execute_sql(
        "UPDATE queued_command SET operator_id = operator"
        " WHERE operator IN (SELECT name FROM operator)"
    )
    migrate(migrator.drop_column("queued_command", "operator"))
    if isinstance(migrator.database, peewee.PostgresqlDatabase):
        guard_command_askers(migrator.database)


def _to_10(migrator: SqliteMigrator) -> None:
    """10: a Pending charger has no site until one approves it (it was the first site's);
    SQLite rebuilds the table for it, with its foreign keys off (see `_apply_steps`)."""
    migrate(migrator.drop_not_null("charge_point", "station_id"))
    migrator.database.execute_sql(
        "UPDATE charge_point SET station_id = NULL WHERE state = 'pending'"
    )


def _to_11(migrator: SqliteMigrator) -> None:
    """11: the site an operator works at, and their wrong sign-ins and lock. An attendant
    from before works at the first site (the one a console without --site showed)."""
    columns = {c.name for c in migrator.database.get_columns("operator")}
    if "site_id" not in columns:  # a file from before 8 got today's table at 8
        site = peewee.ForeignKeyField(Station, null=True, on_delete="CASCADE", field=Station.id)
        migrate(
            migrator.add_column("operator", "site_id", site),
            migrator.add_column("operator", "wrong_sign_ins", peewee.IntegerField(default=0)),
            migrator.add_column("operator", "locks", peewee.IntegerField(default=0)),
            migrator.add_column("operator", "locked_until", UTCDateTimeField(null=True)),
        )
    first = Station.select(Station.id).order_by(Station.id).first()
    if first is not None:
        Operator.update(site=first.id).where(Operator.role == "attendant").execute()


def _to_12(migrator: SqliteMigrator) -> None:
    """12: a session's review flag and a refused start's reason live on the transaction
    (the events that said them are pruned after the retention period); those the events
    still say are carried over, the latest of each."""
    migrate(
        migrator.add_column("charging_transaction", "review", peewee.TextField(null=True)),
        migrator.add_column("charging_transaction", "refusal", peewee.TextField(null=True)),
    )
    for kind, key, column in (
        ("session_review", "review", ChargingTransaction.review),
        ("start_refused", "reason", ChargingTransaction.refusal),
    ):
        latest: dict[int, str] = {}
        events = (
            Event.select(Event.transaction_id, Event.data)
            .where((Event.kind == kind) & Event.transaction_id.is_null(False))
            .order_by(Event.id)
        )
        for event in events:
            said = event.data.get(key) if isinstance(event.data, dict) else None
            if event.transaction_id is not None:
                latest[event.transaction_id] = said[:2000] if isinstance(said, str) else "flagged"
        for transaction_id, why in latest.items():
            ChargingTransaction.update({column: why}).where(
                ChargingTransaction.id == transaction_id
            ).execute()


STEPS: dict[int, MigrationStep] = {
    2: _to_2,
    3: _to_3,
    4: _to_4,
    5: _to_5,
    6: _to_6,
    7: _to_7,
    8: _to_8,
    9: _to_9,
    10: _to_10,
    11: _to_11,
    12: _to_12,
}
