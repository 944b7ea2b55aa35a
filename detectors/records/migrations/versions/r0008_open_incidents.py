"""Open incidents claimed in the store; evidence rows that name their controller, tag and
classification.

``open_incidents`` holds one row per correlation key: the record that key's events attach to
while it is open (`detectors.records.ingest`). Its primary key is what makes one incident one
record when several classifier processes share the suspect topic's partitions: the key is
claimed inside the records transaction, so a second process finds the first one's record
instead of opening its own. Existing open records are claimed under their own key (the newest
one per key, as the classifier looked them up before).

Evidence rows gain ``controller``, ``tag`` (filled in from the stored event for existing rows),
``classification`` and ``rules_fired`` (empty for rows recorded before this revision: the
decision on them was not kept per event).

Revision ID: 0008
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

def _open_incidents() -> None:
    op.create_table(
        "open_incidents",
        sa.Column("correlation_key", sa.Text, primary_key=True),
        sa.Column("record_id", sa.Text, sa.ForeignKey("records.id"), nullable=False),
    )
    closed = "('closed', 'cancelled')"
    # Record ids (NC-<year>-<counter>) sort in the order they were opened: max(id) is the
    # newest record of a key, the one the classifier attached to before this revision.
    op.execute(
        "INSERT INTO open_incidents (correlation_key, record_id) "
        f"SELECT correlation_key, max(id) FROM records WHERE state NOT IN {closed} "
        "GROUP BY correlation_key"
    )


def _evidence_columns() -> None:
    with op.batch_alter_table("evidence") as batch:
        batch.add_column(sa.Column("controller", sa.Text, nullable=False, server_default=""))
        batch.add_column(sa.Column("tag", sa.Text, nullable=False, server_default=""))
        batch.add_column(sa.Column("classification", sa.Text, nullable=False,
                                   server_default=""))
        batch.add_column(sa.Column("rules_fired", sa.Text, nullable=False,
                                   server_default="[]"))
    if op.get_context().dialect.name == "sqlite":
        op.execute("UPDATE evidence SET controller = coalesce(json_extract(raw, "
                   "'$.controller.id'), ''), tag = coalesce(json_extract(raw, '$.tag.name'), '')")
    else:
        op.execute("UPDATE evidence SET controller = coalesce(raw::json #>> '{controller,id}', "
                   "''), tag = coalesce(raw::json #>> '{tag,name}', '')")


def upgrade() -> None:
    _open_incidents()
    _evidence_columns()


def downgrade() -> None:
    raise NotImplementedError("the records schema is not downgraded; restore a backup instead")
