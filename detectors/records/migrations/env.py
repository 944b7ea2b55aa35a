"""Alembic's environment for the records store: always run on a connection that
`detectors.records.migrate` opened, locked and passed in (never from an alembic.ini URL)."""

from __future__ import annotations

from typing import Any

from alembic import context
from alembic.operations import ops
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text

from detectors.records.tables import metadata


def _is_pk_nullability(op: Any) -> bool:
    return (isinstance(op, ops.AlterColumnOp) and op.modify_nullable is not None
            and metadata.tables[op.table_name].c[op.column_name].primary_key)


def ignore_sqlite_pk_nullability(
    migration: MigrationContext, _revision: Any, directives: list[Any]
) -> None:
    """SQLite reports a single-column primary key declared without NOT NULL (``id TEXT
    PRIMARY KEY``, as the first schema has it) as nullable; PostgreSQL never does. That is
    SQLite's quirk, not drift: leave those columns out of the comparison."""
    if migration.dialect.name != "sqlite":
        return
    for upgrade in directives[0].upgrade_ops_list:
        for table in upgrade.ops:
            if isinstance(table, ops.ModifyTableOps):
                table.ops = [op for op in table.ops if not _is_pk_nullability(op)]
        upgrade.ops = [t for t in upgrade.ops
                       if not (isinstance(t, ops.ModifyTableOps) and not t.ops)]


def _not_the_version_table(
    _obj: Any, name: str | None, type_: str, _reflected: bool, _compare_to: Any
) -> bool:
    """Alembic's own table is not part of the records schema (with ``version_table_schema``
    set, autogenerate would otherwise report it as a table to drop)."""
    return not (type_ == "table" and name == "alembic_version")


def run() -> None:
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError(
            "the records migrations run through `otwatch-records migrate` or "
            "RecordStore.migrate(), which pass their own connection"
        )
    # PostgreSQL: Alembic's own table lives in the records schema, never one that is merely
    # visible through the search path (see `detectors.records.migrate._has_own_table`).
    here = None
    if connection.dialect.name == "postgresql":
        here = connection.execute(text("SELECT current_schema()")).scalar()
    context.configure(
        connection=connection, target_metadata=metadata, compare_type=True,
        version_table_schema=here, include_object=_not_the_version_table,
        transaction_per_migration=False,
        process_revision_directives=ignore_sqlite_pk_nullability,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
