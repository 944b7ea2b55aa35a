"""Build a database exactly as the releases before Alembic left it.

Their migrations ran the SQL files beside this module in order and recorded each version in
``schema_version``. Their store kept seven workflow sections in one JSON column
``records.details`` (pydantic's JSON dump of the sections, canonical JSON), written on the first
edit; a record never edited had ``'{}'``. `copy_as_legacy` writes the rows of a current store
into such a database the way that store wrote them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from detectors.records import MasterRecord, RecordStore
from detectors.records.tables import (
    audit_trail,
    counters,
    evidence,
    processed_events,
    records,
    signatures,
    tickets,
)
from detectors.records.trail import canonical_json

HERE = Path(__file__).parent
SECTIONS = ("log", "impact", "affected_lots", "containment", "rca", "capa_actions",
            "effectiveness_check")
RECORD_COLUMNS = (
    "id", "classification", "state", "security_ticket", "controller", "tag", "site", "line",
    "severity", "description", "detected_at", "created_at", "last_event_at", "rules_fired",
    "criteria_version", "correlation_key", "cancel_reason",
)


def engine(target: str, schema: str | None) -> sa.Engine:
    if schema is None:
        return sa.create_engine(f"sqlite:///{target}", poolclass=sa.NullPool)
    url = target.replace("postgresql://", "postgresql+psycopg://", 1)
    return sa.create_engine(url, poolclass=sa.NullPool,
                            connect_args={"options": f"-c search_path={schema}"})


def create_legacy(target: str, schema: str | None, versions: int = 2) -> None:
    """Run the old SQL migrations 1..``versions`` the way the old store did."""
    dialect = "sqlite" if schema is None else "postgresql"
    eng = engine(target, schema)
    try:
        with eng.begin() as conn:
            if schema is not None:
                conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS schema_version "
                                 "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                                 "applied_at TEXT NOT NULL)")
            for n, name in enumerate(("0001_init", "0002_containment_cursor")[:versions], 1):
                script = (HERE / f"{name}.{dialect}.sql").read_text(encoding="utf-8")
                _run_script(conn, script, dialect)
                conn.execute(sa.text("INSERT INTO schema_version VALUES (:v, :n, :at)"),
                             {"v": n, "n": f"{name}.{dialect}.sql",
                              "at": datetime.now(UTC).isoformat()})
    finally:
        eng.dispose()


def _run_script(conn: sa.Connection, script: str, dialect: str) -> None:
    if dialect == "postgresql":  # as the old store did: the script as one simple query
        with conn.connection.dbapi_connection.cursor() as cur:  # type: ignore[union-attr]
            cur.execute(script)
        return
    import sqlite3

    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            conn.exec_driver_sql(buf.strip())
            buf = ""


def legacy_details(record: MasterRecord, edited: bool) -> str:
    """``records.details`` as the old store wrote it (without the fields added since)."""
    if not edited:
        return "{}"
    data = record.model_dump(mode="json", include=set(SECTIONS))
    data["impact"].pop("contributions")
    data["containment"].pop("decisions")
    for hold in data["containment"]["lot_holds"]:
        hold.pop("held_by")
    return canonical_json(data)


LEGACY_SIGNATURE_COLUMNS = ("record_id", "position", "printed_name", "role", "meaning",
                            "signed_at")
#: Evidence rows named their controller, tag and classification from revision 0008.
LEGACY_EVIDENCE_COLUMNS = ("event_id", "record_id", "sha256", "change_kind", "verdict",
                           "severity", "occurred_at", "detected_at", "attached_at", "raw")


def copy_as_legacy(source: RecordStore, target: str, schema: str | None) -> None:
    """Write every row of ``source`` into the legacy database at ``target``."""
    edited = {e.record_id for e in source.trail() if e.field not in ("record", "evidence",
                                                                      "severity")}
    with source.database.read() as src:
        rows = {t.name: [dict(r._mapping) for r in src.execute(sa.select(t))]
                for t in (counters, processed_events, tickets, audit_trail)}
        rows["evidence"] = [dict(r._mapping) for r in src.execute(sa.select(
            *(evidence.c[name] for name in LEGACY_EVIDENCE_COLUMNS)))]
        # The signer's user id, step and trail entry came with revision 0004.
        rows["signatures"] = [dict(r._mapping) for r in src.execute(sa.select(
            *(signatures.c[name] for name in LEGACY_SIGNATURE_COLUMNS)))]
        plain = {r.id: dict(r._mapping) for r in src.execute(
            sa.select(*(records.c[name] for name in RECORD_COLUMNS)))}
    records_rows: list[dict[str, Any]] = [
        {**plain[record.id], "details": legacy_details(record, record.id in edited)}
        for record in source.list_records()
    ]
    eng = engine(target, schema)
    try:
        with eng.begin() as conn:
            conn.execute(_table("records", [*RECORD_COLUMNS, "details"]).insert(), records_rows)
            for name, table_rows in rows.items():
                if table_rows:
                    conn.execute(_table(name, list(table_rows[0])).insert(), table_rows)
    finally:
        eng.dispose()


def _table(name: str, columns: list[str]) -> sa.TableClause:
    return sa.table(name, *(sa.column(c) for c in columns))
