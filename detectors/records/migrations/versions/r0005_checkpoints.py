"""Checkpoints: signed heads of the audit trail (`detectors.records.checkpoints`).

Only a new table; the trail and its hashes are not touched.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "trail_checkpoints",
        sa.Column("seq", BIG, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.Text, nullable=False),
        sa.Column("previous", BIG, nullable=False),
        sa.Column("signed_at", sa.Text, nullable=False),
        sa.Column("key_id", sa.Text, nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("the records schema is not downgraded; restore a backup instead")
