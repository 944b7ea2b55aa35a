"""A quality-only record has no security ticket: ``records.security_ticket`` may be NULL.

Security tickets are opened for joint and security records only (issue 19); a quality-only
record gets one when evidence that concerns security joins it (`detectors.records.ingest`).
The column stays UNIQUE: NULLs do not collide on either dialect. Records opened before this
revision keep the ticket they were given, so their rows and trail are unchanged and the hash
chain still recomputes.

SQLite cannot alter a column in place, and `op.batch_alter_table` (copy the table, drop the
old one) fails here: `migrate` runs in one transaction with foreign keys on, where
``PRAGMA foreign_keys=OFF`` is a no-op, so dropping ``records`` trips the tickets', evidence's
and other tables' references. SQLite documents the other way for dropping a NOT NULL
constraint (https://www.sqlite.org/lang_altertable.html, "Making Other Kinds Of Table Schema
Changes"): edit the table's SQL in ``sqlite_schema`` under ``writable_schema`` and bump
``schema_version``; the rows' on-disk format does not change.

The downgrade is honest: it refuses while a record has no security ticket (the old schema
cannot hold it, and inventing ids would put tickets in the rows that no trail entry opened),
naming how many and what to do; with none, it puts NOT NULL back.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_NOT_NULL = re.compile(r"(security_ticket\s+TEXT)\s+NOT\s+NULL", re.IGNORECASE)
_NULLABLE = re.compile(r"(security_ticket\s+TEXT)(?!\s+NOT\s+NULL)", re.IGNORECASE)


def upgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        _rewrite_sqlite_records(_NOT_NULL, r"\1")
    else:
        op.alter_column("records", "security_ticket", existing_type=sa.Text, nullable=True)


def downgrade() -> None:
    without = op.get_bind().execute(
        sa.text("SELECT count(*) FROM records WHERE security_ticket IS NULL")).scalar_one()
    if without:
        raise RuntimeError(
            f"records schema downgrade below 0009 refused: {without} record(s) have no "
            "security ticket (quality-only records since revision 0009), which the older "
            "schema cannot hold; restore a backup taken before the upgrade instead")
    if op.get_context().dialect.name == "sqlite":
        _rewrite_sqlite_records(_NULLABLE, r"\1 NOT NULL")
    else:
        op.alter_column("records", "security_ticket", existing_type=sa.Text, nullable=False)


def _rewrite_sqlite_records(pattern: re.Pattern[str], replacement: str) -> None:
    """Swap the column's definition in the stored CREATE TABLE of ``records`` (see above)."""
    bind = op.get_bind()
    sql = bind.execute(sa.text(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'records'")).scalar_one()
    new_sql, found = pattern.subn(replacement, sql)
    if found != 1:
        raise RuntimeError("records schema revision 0009: the records table's definition does "
                           f"not have one security_ticket column as expected: {sql}")
    version = int(bind.exec_driver_sql("PRAGMA schema_version").scalar_one())
    bind.exec_driver_sql("PRAGMA writable_schema=ON")
    try:
        bind.execute(sa.text("UPDATE sqlite_master SET sql = :sql "
                             "WHERE type = 'table' AND name = 'records'"), {"sql": new_sql})
        bind.exec_driver_sql(f"PRAGMA schema_version={version + 1}")
    finally:
        bind.exec_driver_sql("PRAGMA writable_schema=OFF")
