"""Several central systems (nodes) on one database: who is alive, who holds which charger.

Each node beats (writes its heartbeat) every few seconds. A node whose heartbeat is older
than the expiry is dead: the chargers it held count as disconnected, and the next node to
look clears them. On PostgreSQL the nodes also tell each other of new queued commands
with NOTIFY (see `csms.nodes`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import peewee

from evcms_desktop.store.models import ChargePoint, Node, database_proxy

log = logging.getLogger(__name__)

COMMANDS_CHANNEL = "evcms_commands"
EVENTS_CHANNEL = "evcms_events"
OCPP_LOG_CHANNEL = "evcms_ocpp_log"  # the nodes' OCPP frames, for attached consoles


def database_now() -> datetime:
    """The database server's time on PostgreSQL, so that nodes on machines whose clocks
    differ still agree on whose heartbeat is stale; this machine's on SQLite."""
    db = database_proxy.obj
    if isinstance(db, peewee.PostgresqlDatabase):
        value = db.execute_sql("SELECT now()").fetchone()[0]
        return value.astimezone(UTC)
    return datetime.now(UTC)


def beat(name: str, now: datetime) -> None:
    """This node is alive (an upsert: the first beat registers it)."""
    Node.insert(name=name, started_at=now, heartbeat_at=now).on_conflict(
        conflict_target=[Node.name], update={Node.heartbeat_at: now}
    ).execute()


def leave(name: str) -> None:
    """This node stops: its chargers are no longer held, and it is no longer listed."""
    ChargePoint.update(connected=False, node=None).where(ChargePoint.node == name).execute()
    Node.delete().where(Node.name == name).execute()


def live_nodes(now: datetime, expiry: timedelta) -> set[str]:
    return {n.name for n in Node.select(Node.name).where(Node.heartbeat_at >= now - expiry)}


def live_since(now: datetime, expiry: timedelta) -> dict[str, datetime]:
    """The live nodes and when each started."""
    query = Node.select(Node.name, Node.started_at).where(Node.heartbeat_at >= now - expiry)
    return {n.name: n.started_at for n in query}


def expire(now: datetime, expiry: timedelta) -> list[str]:
    """Forget the nodes that stopped beating; the chargers they held, now disconnected."""
    dead = [n.name for n in Node.select(Node.name).where(Node.heartbeat_at < now - expiry)]
    if not dead:
        return []
    with database_proxy.atomic():
        idents = [
            cp.ident
            for cp in ChargePoint.select(ChargePoint.ident).where(ChargePoint.node.in_(dead))
        ]
        ChargePoint.update(connected=False, node=None).where(ChargePoint.node.in_(dead)).execute()
        Node.delete().where(Node.name.in_(dead)).execute()
    log.warning("Nodes %s stopped beating; %d charger(s) they held released", dead, len(idents))
    return idents


def release_unheld(name: str, now: datetime, expiry: timedelta) -> None:
    """At a node's start: chargers marked connected by this node before, by no node (one
    central system of old), or by a dead node, are not connected now."""
    alive = live_nodes(now, expiry) - {name}
    held_elsewhere = ChargePoint.node.in_(list(alive)) if alive else peewee.Value(False)
    ChargePoint.update(connected=False, node=None).where(
        ChargePoint.connected & ~held_elsewhere
    ).execute()


def hold(ident: str, name: str, now: datetime) -> None:
    """A charger connected to this node."""
    ChargePoint.update(connected=True, node=name, last_seen_at=now).where(
        ChargePoint.ident == ident
    ).execute()


def let_go(ident: str, name: str, now: datetime) -> None:
    """A charger left this node (unless it has since connected to another)."""
    ChargePoint.update(connected=False, node=None, last_seen_at=now).where(
        (ChargePoint.ident == ident) & ((ChargePoint.node == name) | ChargePoint.node.is_null())
    ).execute()


def holder(ident: str, now: datetime, expiry: timedelta) -> str | None:
    """The live node that holds this charger's connection, if any."""
    row = (
        ChargePoint.select(ChargePoint.node)
        .join(Node, on=(ChargePoint.node == Node.name))
        .where(
            (ChargePoint.ident == ident)
            & ChargePoint.connected
            & (Node.heartbeat_at >= now - expiry)
        )
        .first()
    )
    return None if row is None else row.node


def held_by_others(name: str, now: datetime, expiry: timedelta) -> dict[str, str]:
    """The chargers live nodes other than `name` hold (ident: node), one per charger."""
    query = (
        ChargePoint.select(ChargePoint.ident, ChargePoint.node)
        .join(Node, on=(ChargePoint.node == Node.name))
        .where(ChargePoint.connected & (Node.name != name) & (Node.heartbeat_at >= now - expiry))
    )
    return {cp.ident: str(cp.node) for cp in query}


def connected_idents(expiry: timedelta) -> set[str]:
    """The chargers the connection registry says are connected now: to a live node on
    PostgreSQL (a dead node's entries do not count), to the one central system on SQLite."""
    query = ChargePoint.select(ChargePoint.ident).where(ChargePoint.connected)
    if isinstance(database_proxy.obj, peewee.PostgresqlDatabase):
        query = query.join(Node, on=(ChargePoint.node == Node.name)).where(
            Node.heartbeat_at >= database_now() - expiry
        )
    return {row.ident for row in query}


def notify_commands(charge_point: str) -> None:
    """Wake the nodes' command queues (PostgreSQL; SQLite nodes poll)."""
    db = database_proxy.obj
    if isinstance(db, peewee.PostgresqlDatabase):
        db.execute_sql("SELECT pg_notify(%s, %s)", (COMMANDS_CHANNEL, charge_point[:200]))


def notify_ocpp_log(payload: str) -> None:
    """Pass a batch of OCPP frames (JSON, under 8000 bytes) to attached consoles."""
    db = database_proxy.obj
    if isinstance(db, peewee.PostgresqlDatabase):
        db.execute_sql("SELECT pg_notify(%s, %s)", (OCPP_LOG_CHANNEL, payload))


def notify_event(payload: str) -> None:
    """Pass an event (JSON, under 8000 bytes) to the other nodes (PostgreSQL only)."""
    db = database_proxy.obj
    if isinstance(db, peewee.PostgresqlDatabase):
        db.execute_sql("SELECT pg_notify(%s, %s)", (EVENTS_CHANNEL, payload))
