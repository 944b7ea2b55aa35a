"""Indexes for the worklist (`detectors.records.worklist`): records newest first, and a
person's records by lead or co-lead, so a page of 25 out of 10,000 is an index walk.

Revision ID: 0010
Revises: 0008
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_INDEXES = (
    ("records_by_detected_at", ["detected_at"]),
    ("records_by_lead", ["lead", "state"]),
    ("records_by_co_lead", ["co_lead", "state"]),
)


def upgrade() -> None:
    for name, columns in _INDEXES:
        op.create_index(name, "records", columns)


def downgrade() -> None:
    for name, _ in reversed(_INDEXES):
        op.drop_index(name, table_name="records")
