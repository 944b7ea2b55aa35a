"""Record-store fixtures: one store per test on SQLite (tmp_path) and on PostgreSQL (own schema)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from detectors.records import RecordStore, open_store
from tests.records.people import enrol
from tests.support.events import RECORDS_T0 as T0


@pytest.fixture
def pg_schema(pg_dsn: str) -> Iterator[str]:
    """A schema of its own, dropped after the test, so parallel runs never collide."""
    name = f"t_{uuid.uuid4().hex}"
    yield name
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def store_target(request: pytest.FixtureRequest, tmp_path: Any) -> tuple[str, str | None]:
    """(target, schema) for a fresh, unmigrated database of either dialect."""
    if request.param == "sqlite":
        return str(tmp_path / "records.db"), None
    dsn: str = request.getfixturevalue("pg_dsn")
    schema: str = request.getfixturevalue("pg_schema")
    return dsn, schema


@pytest.fixture
def store(store_target: tuple[str, str | None]) -> Iterator[RecordStore]:
    target, schema = store_target
    opened = open_store(target, schema=schema)
    opened.migrate()
    enrol(opened, T0)
    yield opened
    opened.close()
