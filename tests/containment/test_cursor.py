"""The publisher's cursor in the records database: durable, per topic, forward only."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from detectors.containment import TrailCursor
from detectors.records import open_store

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str | None]]:
    """A migrated records database of either dialect (PostgreSQL: a schema of its own)."""
    if request.param == "sqlite":
        where: tuple[str, str | None] = (str(tmp_path / "records.db"), None)
    else:
        where = (request.getfixturevalue("pg_dsn"), f"t_{uuid.uuid4().hex}")
    with open_store(where[0], schema=where[1]) as store:
        store.migrate()
    yield where
    if where[1] is not None:
        with psycopg.connect(where[0], autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {where[1]} CASCADE")


def test_the_cursor_survives_a_reopen_and_only_moves_forward(
    target: tuple[str, str | None],
) -> None:
    first = TrailCursor.open(target[0], "otwatch.containment", schema=target[1])
    assert first.load() == 0
    first.save(12, NOW)
    first.save(7, NOW)  # a second, slower publisher never moves it back
    first.close()
    again = TrailCursor.open(target[0], "otwatch.containment", schema=target[1])
    other = TrailCursor.open(target[0], "site-b.containment", schema=target[1])
    try:
        assert again.load() == 12
        assert other.load() == 0
    finally:
        again.close()
        other.close()
