"""Linked tickets in external tools, external references, and inbound webhook ids.

- ``external_tickets``: one row per record and ticket system (webhook, thehive, servicenow,
  jira): the remote id, key, URL and last known state and assignee, plus the outbox's delivery
  status (attempts, last error) so that a failing connector shows on the record.
- ``external_refs``: deviation reports, risk assessments, change controls and QMS records a
  record refers to (kind, system, id, URL), in the order they were added.
- ``inbound_webhooks``: the ``webhook-id`` of every inbound webhook accepted (replays refused).

Revision ID: 0007
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "external_tickets",
        sa.Column("record_id", sa.Text, sa.ForeignKey("records.id"), primary_key=True),
        sa.Column("system", sa.Text, primary_key=True),
        *(sa.Column(name, sa.Text, nullable=False, server_default="")
          for name in ("remote_id", "key", "url", "state", "assignee", "last_error")),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("updated_at", sa.Text, nullable=False),
    )
    op.create_table(
        "external_refs",
        sa.Column("record_id", sa.Text, sa.ForeignKey("records.id"), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
        *(sa.Column(name, sa.Text, nullable=False)
          for name in ("kind", "system", "ref_id", "url", "added_at", "added_by")),
    )
    op.create_table(
        "inbound_webhooks",
        sa.Column("webhook_id", sa.Text, primary_key=True),
        sa.Column("system", sa.Text, nullable=False),
        sa.Column("received_at", sa.Text, nullable=False),
        sa.Index("inbound_webhooks_by_time", "received_at"),
    )


def downgrade() -> None:
    raise NotImplementedError("the records schema is not downgraded; restore a backup instead")
