"""Alembic's environment for the records store: always run on a connection that
`detectors.records.migrate` opened, locked and passed in (never from an alembic.ini URL)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from detectors.records.tables import metadata


def run() -> None:
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError(
            "the records migrations run through `otwatch-records migrate` or "
            "RecordStore.migrate(), which pass their own connection"
        )
    context.configure(
        connection=connection, target_metadata=metadata, compare_type=True,
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
