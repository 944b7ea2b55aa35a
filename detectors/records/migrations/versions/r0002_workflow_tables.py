"""The workflow sections the worklist queries become tables; a version on every record.

- ``records.version`` for optimistic concurrency, and one JSON column per remaining section
  (filled from ``details`` by revision 0003, which then drops ``details``);
- ``lot_holds``, ``capa_actions``, ``containment_decisions``, ``impact_contributions``, with
  the indexes "lots on hold", "my overdue actions" and "open records by state" need;
- ``containment_cursor`` becomes ``relay_cursor`` (``topic`` → ``name``): every trail relay
  (containment publisher, ticket outbox) keeps its position there.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _record_fk() -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["record_id"], ["records.id"])


def _sections() -> None:
    op.add_column("records", sa.Column("version", sa.Integer, nullable=False,
                                       server_default="1"))
    for name, empty in (("log", "{}"), ("impact", "{}"), ("affected_lots", "[]"),
                        ("containment", "{}"), ("rca", "{}")):
        op.add_column("records", sa.Column(name, sa.Text, nullable=False, server_default=empty))
    op.add_column("records", sa.Column("effectiveness_check", sa.Text))
    op.create_index("records_by_state", "records", ["state", "last_event_at"])


def _lot_holds() -> None:
    op.create_table(
        "lot_holds",
        sa.Column("record_id", sa.Text, nullable=False),
        sa.Column("position", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("lot_id", sa.Text, nullable=False),
        sa.Column("held_at", sa.Text, nullable=False),
        sa.Column("held_by", sa.Text),
        sa.Column("released_at", sa.Text),
        sa.Column("released_by", sa.Text),
        sa.PrimaryKeyConstraint("record_id", "position"), _record_fk(),
    )
    op.create_index("lot_holds_by_lot", "lot_holds", ["lot_id", "released_at"])


def _capa_actions() -> None:
    op.create_table(
        "capa_actions",
        sa.Column("record_id", sa.Text, nullable=False),
        sa.Column("position", sa.Integer, nullable=False, autoincrement=False),
        *(sa.Column(name, sa.Text, nullable=False) for name in (
            "action_id", "description", "owner", "domain", "original_due", "current_due",
            "status")),
        sa.Column("effectiveness_check", sa.Text),
        sa.PrimaryKeyConstraint("record_id", "position"), _record_fk(),
    )
    op.create_index("capa_actions_by_owner", "capa_actions", ["owner", "status", "current_due"])
    op.create_index("capa_actions_by_due", "capa_actions", ["status", "current_due"])


def _containment_decisions() -> None:
    op.create_table(
        "containment_decisions",
        sa.Column("record_id", sa.Text, nullable=False),
        sa.Column("position", sa.Integer, nullable=False, autoincrement=False),
        *(sa.Column(name, sa.Text, nullable=False) for name in ("kind", "status", "owner",
                                                                 "note")),
        sa.Column("decided_at", sa.Text),
        sa.Column("decided_by", sa.Text),
        sa.PrimaryKeyConstraint("record_id", "position"), _record_fk(),
    )
    op.create_index("containment_decisions_by_kind", "containment_decisions",
                    ["kind", "status"])


def _impact_contributions() -> None:
    op.create_table(
        "impact_contributions",
        sa.Column("record_id", sa.Text, nullable=False),
        sa.Column("function", sa.Text, nullable=False),
        *(sa.Column(name, sa.Text, nullable=False) for name in ("author", "assessment",
                                                                 "risk")),
        sa.Column("signed_off", sa.Boolean, nullable=False),
        sa.Column("updated_at", sa.Text),
        sa.PrimaryKeyConstraint("record_id", "function"), _record_fk(),
    )
    op.create_index("impact_contributions_open", "impact_contributions", ["signed_off"])


def _relay_cursor() -> None:
    op.create_table(
        "relay_cursor",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.Text, nullable=False),
    )
    op.execute("INSERT INTO relay_cursor (name, seq, updated_at) "
               "SELECT topic, seq, updated_at FROM containment_cursor")
    op.drop_table("containment_cursor")


def upgrade() -> None:
    _sections()
    _lot_holds()
    _capa_actions()
    _containment_decisions()
    _impact_contributions()
    _relay_cursor()


def downgrade() -> None:
    raise NotImplementedError("the records schema is not downgraded; restore a backup instead")
