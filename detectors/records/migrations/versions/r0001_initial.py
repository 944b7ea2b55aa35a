"""The records schema as releases before Alembic left it (their SQL migrations 0001 and 0002).

A database those releases created has a ``schema_version`` table with versions 1 and 2 and no
``alembic_version``; `detectors.records.migrate` recognises it and stamps it at this revision
instead of running it. So this revision must build exactly that schema, triggers included.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

SQLITE_TRIGGERS = (
    """CREATE TRIGGER audit_trail_no_update BEFORE UPDATE ON audit_trail
BEGIN
    SELECT RAISE(ABORT, 'audit_trail is append-only: UPDATE refused');
END""",
    """CREATE TRIGGER audit_trail_no_delete BEFORE DELETE ON audit_trail
BEGIN
    SELECT RAISE(ABORT, 'audit_trail is append-only: DELETE refused');
END""",
)

POSTGRESQL_TRIGGERS = (
    """CREATE FUNCTION audit_trail_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_trail is append-only: % refused', TG_OP;
END;
$$""",
    """CREATE TRIGGER audit_trail_no_update BEFORE UPDATE ON audit_trail
    FOR EACH ROW EXECUTE FUNCTION audit_trail_refuse_change()""",
    """CREATE TRIGGER audit_trail_no_delete BEFORE DELETE ON audit_trail
    FOR EACH ROW EXECUTE FUNCTION audit_trail_refuse_change()""",
    """CREATE TRIGGER audit_trail_no_truncate BEFORE TRUNCATE ON audit_trail
    FOR EACH STATEMENT EXECUTE FUNCTION audit_trail_refuse_change()""",
)


def _text(name: str, **kw: Any) -> sa.Column[str]:
    return sa.Column(name, sa.Text, nullable=False, **kw)


def _key(name: str, kind: Any = sa.Text) -> sa.Column[Any]:
    """A single-column primary key declared as the first schema did: ``name TYPE PRIMARY KEY``
    without NOT NULL (SQLite then reports it nullable; PostgreSQL makes it NOT NULL anyway)."""
    return sa.Column(name, kind, primary_key=True, nullable=True, autoincrement=False)


def upgrade() -> None:
    op.create_table(
        "counters",
        _text("kind"), sa.Column("year", sa.Integer, nullable=False),
        sa.Column("value", BIG, nullable=False),
        sa.PrimaryKeyConstraint("kind", "year"),
    )
    op.create_table(
        "processed_events",
        _key("event_id"), sa.Column("record_id", sa.Text),
        _text("processed_at"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "records",
        _key("id"),
        *(_text(name) for name in ("classification", "state")),
        _text("security_ticket", unique=True),
        *(_text(name) for name in (
            "controller", "tag", "site", "line", "severity", "description", "detected_at",
            "created_at", "last_event_at", "rules_fired", "criteria_version",
            "correlation_key")),
        _text("cancel_reason", server_default=""),
        _text("details", server_default="{}"),
    )
    op.create_index("records_open_by_key", "records", ["correlation_key", "state"])
    op.create_table(
        "tickets",
        _key("id"),
        _text("record_id", unique=True), _text("severity"), _text("status"), _text("indicators"),
        sa.ForeignKeyConstraint(["record_id"], ["records.id"]),
    )
    op.create_table(
        "evidence",
        *(_text(name) for name in (
            "event_id", "record_id", "sha256", "change_kind", "verdict", "severity",
            "occurred_at", "detected_at", "attached_at", "raw")),
        sa.ForeignKeyConstraint(["record_id"], ["records.id"]),
    )
    op.create_index("evidence_by_record", "evidence", ["record_id"])
    op.create_table(
        "signatures",
        _text("record_id"), sa.Column("position", sa.Integer, nullable=False),
        *(_text(name) for name in ("printed_name", "role", "meaning", "signed_at")),
        sa.PrimaryKeyConstraint("record_id", "position"),
        sa.ForeignKeyConstraint(["record_id"], ["records.id"]),
    )
    op.create_table(
        "audit_trail",
        _key("seq", BIG),
        *(_text(name) for name in ("record_id", "actor", "at", "field")),
        sa.Column("old", sa.Text), sa.Column("new", sa.Text),
        *(_text(name) for name in ("reason", "prev_hash", "hash")),
    )
    op.create_index("audit_trail_by_record", "audit_trail", ["record_id"])
    write_lock = op.create_table(
        "write_lock", _key("id", sa.Integer),
    )
    op.bulk_insert(write_lock, [{"id": 1}])
    for statement in (
        POSTGRESQL_TRIGGERS if op.get_context().dialect.name == "postgresql" else SQLITE_TRIGGERS
    ):
        op.execute(statement)
    # Schema 2 of the SQL migrations: the containment publisher's cursor.
    op.create_table(
        "containment_cursor",
        _key("topic"),
        sa.Column("seq", sa.BigInteger, nullable=False), _text("updated_at"),
    )


def downgrade() -> None:
    raise NotImplementedError("the records schema is not downgraded; restore a backup instead")
