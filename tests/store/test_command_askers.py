"""Who may queue a command as whom, on PostgreSQL: a console's database role queues as
the operator of its own name only; the nodes' role (the tables' owner) as anyone and as
the system."""

from __future__ import annotations

import psycopg
import pytest

from evcms_desktop.store import operators
from evcms_desktop.store.database import open_database
from evcms_desktop.store.models import Station

pytestmark = pytest.mark.postgresql

INSERT = (
    "INSERT INTO queued_command (created_at, charge_point, action, payload, state,"
    " operator_id, system) VALUES (now(), 'CP-1', 'Reset', '{\"type\": \"Soft\"}', 'queued',"
    " %s, %s) RETURNING id"
)


def test_a_consoles_database_role_queues_commands_as_itself_only(postgresql_url):
    # Roles belong to the whole server: this test's operator is named after its database.
    oli = "oli_" + postgresql_url.rsplit("/", 1)[1]
    db = open_database(postgresql_url)
    operators.add_operator(oli, "operator", "operator-pw")
    operators.add_operator("ann", "attendant", "attendant-pw", Station.get())
    db.close()
    with psycopg.connect(postgresql_url, autocommit=True) as owner:
        owner.execute(f'CREATE ROLE "{oli}" LOGIN')
        owner.execute(f'GRANT SELECT, INSERT, UPDATE ON queued_command TO "{oli}"')
        owner.execute(f'GRANT USAGE ON SEQUENCE queued_command_id_seq TO "{oli}"')
        owner.execute(INSERT, ("ann", False))  # the nodes' role: as anyone
        owner.execute(INSERT, (None, True))  # and as the system
    try:
        with psycopg.connect(postgresql_url.replace("//evcms@", f"//{oli}@")) as console:
            console.autocommit = True
            assert console.execute(INSERT, (oli, False)).fetchone()
            refused = []
            for operator, system in (("ann", False), (None, False), (oli, True)):
                with pytest.raises(psycopg.errors.InsufficientPrivilege) as caught:
                    console.execute(INSERT, (operator, system))
                refused.append(caught.value.diag.message_primary)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                console.execute("UPDATE queued_command SET operator_id = 'ann'")
        with psycopg.connect(postgresql_url) as owner:
            askers = owner.execute(
                "SELECT operator_id, system FROM queued_command ORDER BY id"
            ).fetchall()
    finally:
        with psycopg.connect(postgresql_url, autocommit=True) as owner:
            owner.execute(f'DROP OWNED BY "{oli}"')
            owner.execute(f'DROP ROLE "{oli}"')
    assert refused == [
        f"database role {oli} queues commands as operator {oli}, not as ann",
        f"database role {oli} queues commands as operator {oli}, not as nobody",
        f"database role {oli} may not queue the system's commands",
    ]
    assert askers == [("ann", False), (None, True), (oli, False)]
