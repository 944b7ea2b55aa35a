"""The joint nonconformity workflow (issue 17): lead and co-lead, manual reporter, recurrence
link and the rules' impact texts on records; CAPA classification, owning system, due-date
moves and revalidation on actions; security-action and trade-off fields on containment
decisions; a risk rating on impact contributions.

Every new column has a default that reads back as the models' default, so records made
before this revision load unchanged; the trail is not touched, so its hashes still recompute.

Revision ID: 0006
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _text(name: str, default: str = "") -> sa.Column[str]:
    return sa.Column(name, sa.Text, nullable=False, server_default=default)


def upgrade() -> None:
    with op.batch_alter_table("records") as batch:
        for name in ("lead", "co_lead", "reported_by", "recurrence_of", "quality_impact",
                     "security_impact"):
            batch.add_column(_text(name))
    op.create_index("records_by_controller_tag", "records", ["controller", "tag", "state"])
    with op.batch_alter_table("capa_actions") as batch:
        batch.add_column(_text("capa_type", "corrective"))
        batch.add_column(_text("owning_system", "qms"))
        batch.add_column(_text("external_ref"))
        batch.add_column(_text("priority", "medium"))
        batch.add_column(_text("addresses"))
        batch.add_column(sa.Column("revalidation_required", sa.Boolean, nullable=False,
                                   server_default=sa.false()))
        batch.add_column(_text("change_control_ref"))
        batch.add_column(_text("due_changes", "[]"))
    with op.batch_alter_table("containment_decisions") as batch:
        batch.add_column(sa.Column("action", sa.Text))
        batch.add_column(_text("coordination_note"))
        batch.add_column(_text("options", "[]"))
        batch.add_column(_text("choice"))
        batch.add_column(_text("risk_accepted"))
        batch.add_column(_text("approved_by"))
    with op.batch_alter_table("impact_contributions") as batch:
        batch.add_column(sa.Column("rating", sa.Text))
    _attachments()


def _attachments() -> None:
    op.create_table(
        "attachment_blobs",
        sa.Column("sha256", sa.Text, primary_key=True),
        sa.Column("size", BIG, nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "record_attachments",
        sa.Column("record_id", sa.Text, sa.ForeignKey("records.id"), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("sha256", sa.Text, sa.ForeignKey("attachment_blobs.sha256"), nullable=False),
        sa.Column("filename", sa.Text, nullable=False),
        sa.Column("media_type", sa.Text, nullable=False),
        sa.Column("item", sa.Text, nullable=False),
        sa.Column("attached_by", sa.Text, nullable=False),
        sa.Column("attached_at", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("record_attachments")
    op.drop_table("attachment_blobs")
    with op.batch_alter_table("impact_contributions") as batch:
        batch.drop_column("rating")
    with op.batch_alter_table("containment_decisions") as batch:
        for name in ("approved_by", "risk_accepted", "choice", "options", "coordination_note",
                     "action"):
            batch.drop_column(name)
    with op.batch_alter_table("capa_actions") as batch:
        for name in ("due_changes", "change_control_ref", "revalidation_required", "addresses",
                     "priority", "external_ref", "owning_system", "capa_type"):
            batch.drop_column(name)
    op.drop_index("records_by_controller_tag", "records")
    with op.batch_alter_table("records") as batch:
        for name in ("security_impact", "quality_impact", "recurrence_of", "reported_by",
                     "co_lead", "lead"):
            batch.drop_column(name)
