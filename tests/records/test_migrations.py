"""The records migrations: a linear chain of numbered Alembic revisions; databases made by the
releases before Alembic (schema_version 1 or 2) are adopted and upgraded keeping what they hold,
byte for byte where the trail needs it; processes started together all open a new file."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory

from detectors.containment import CURSOR_SCHEMA_VERSION
from detectors.records import (
    HEAD_REVISION,
    FishboneCategory,
    PlaceHold,
    RecordRootCause,
    RecordStore,
    ReleaseHold,
    State,
    StoreUnavailable,
    TrailCursor,
    WhyAnswer,
    open_store,
)
from detectors.records.checkpoints import Interval
from detectors.records.migrate import SCRIPT_DIR
from detectors.records.tamper import verify_store
from tests.records.legacy_schema.build import copy_as_legacy, create_legacy, engine
from tests.records.lifecycle_steps import assess, at, drive
from tests.records.people import QA, enrol
from tests.support.events import RECORDS_T0 as T0
from tests.support.events import classified
from tests.support.events import record_event as event

#: What signatures made before revision 0004 do not have (they read back empty).
SIGNER: dict[str, Any] = {
    "signatures": {"__all__": {"user_id", "step", "trail_seq"}},
    "impact": {"contributions"},
    # ... nor lot holds who placed them (``held_by`` came with the lot_holds rows) ...
    "containment": {"lot_holds": {"__all__": {"held_by"}}},
    # ... nor evidence rows made before revision 0008 their classification (their
    # controller and tag are read from the stored event by the migration).
    "evidence": {"__all__": {"classification", "rules_fired"}}}

NOW = T0 + timedelta(minutes=1)
# The table exactly as `TrailCursor` created it before schema 2.
AD_HOC_CURSOR = ("CREATE TABLE IF NOT EXISTS containment_cursor (topic TEXT PRIMARY KEY, "
                 "seq BIGINT NOT NULL, updated_at TEXT NOT NULL)")


def test_revisions_are_one_numbered_chain() -> None:
    script = ScriptDirectory(str(SCRIPT_DIR))
    chain = [r.revision for r in reversed(list(script.walk_revisions()))]
    assert chain == [f"{n:04d}" for n in range(1, HEAD_REVISION + 1)]
    assert CURSOR_SCHEMA_VERSION == HEAD_REVISION


def populate(store: RecordStore) -> None:
    """Records in every shape the old store could write: edited sections, lot holds held and
    released, CAPA, signatures, a closed and a cancelled record, one never edited."""
    outs = store.record_events(
        [(event(1, approval=True), classified(key="a")), (event(2, minutes=1), classified(key="a")),
         (event(3, controller="press-02"), classified(key="b")),
         (event(4, controller="press-03"), classified(key="c"))],
        now=T0,
    )
    closed, held = outs[0].record_id or "", outs[2].record_id or ""
    drive(store, closed, State.CLOSED)
    store.update_field(held, "log.root_cause", "shared password", actor=QA, reason="RCA",
                       now=at(1))
    assess(store, held, at(1))  # impact contributions: rows the legacy schema never had
    store.update_field(held, "containment", {"release_freeze": True, "notes": "frozen"},
                       actor=QA, reason="freeze", now=at(2))
    for command in (PlaceHold(record_id=held, lot_id="LOT-7", reason="hold"),
                    PlaceHold(record_id=held, lot_id="LOT-8", reason="hold"),
                    ReleaseHold(record_id=held, lot_id="LOT-8", reason="released")):
        store.execute(command, actor=QA, now=at(2))
    store.execute(RecordRootCause(record_id=held, reason="RCA",
                                  five_whys=[WhyAnswer(answer="why")],
                                  fishbone={FishboneCategory.PEOPLE: ["x"]}),
                  actor=QA, now=at(2))
    store.update_field(held, "affected_lots", [{"lot_id": "LOT-7", "controller": "press-02"}],
                       actor=QA, reason="lots", now=at(2))
    store.transition(held, "cancelled", actor=QA, reason="duplicate",
                     now=at(3))


def legacy_copy(tmp_path: Path, target: str, schema: str | None, versions: int = 2) -> RecordStore:
    """A legacy database at ``target`` holding what a populated current store holds; returns
    the (open) source store to compare against."""
    source = open_store(str(tmp_path / "source.db"))
    source.migrate()
    enrol(source, T0)
    populate(source)
    create_legacy(target, schema, versions)
    copy_as_legacy(source, target, schema)
    return source


def same_records(upgraded: RecordStore, source: RecordStore) -> bool:
    """Every record equal, field for field; ``version`` is new (1 after the upgrade)."""
    got = upgraded.list_records()
    assert {r.version for r in got} == {1}
    assert {s.user_id for r in got for s in r.signatures} <= {""}
    return [r.model_dump(exclude={"version": True, **SIGNER}) for r in got] == [
        r.model_dump(exclude={"version": True, **SIGNER}) for r in source.list_records()]


def test_a_legacy_database_upgrades_and_every_record_reads_back_the_same(
    store_target: tuple[str, str | None], tmp_path: Path,
) -> None:
    target, schema = store_target
    with legacy_copy(tmp_path, target, schema) as source, \
            open_store(target, schema=schema) as upgraded:
        assert upgraded.schema_version() == 1  # the old schema 2 is revision 1
        assert upgraded.migrate() == list(range(2, HEAD_REVISION + 1))
        assert upgraded.schema_version() == HEAD_REVISION
        assert same_records(upgraded, source)
        assert upgraded.trail() == source.trail()
        result = upgraded.verify_trail()
        assert result.ok and result.entries == len(source.trail())
        # The rows 0003 moved are what the trail says. (This copy's signature entries name
        # users its legacy rows cannot: current code wrote them, so binding is not checked.)
        # Impact contributions, who held a lot and each evidence row's own decision came after
        # the legacy schema (its copy drops them, as SIGNER says): the trail has them, the rows
        # cannot.
        replayed = verify_store(upgraded.database, key=None, every=Interval())
        tampered = [p for p in replayed.problems if p.startswith("tampered")]
        newer = re.compile(r"field impact\.contributions \(|evidence ev-\d+ classification \(|"
                           r"field containment\.lot_holds\[\d+\]\.held_by \(")
        assert tampered and all(newer.search(p) for p in tampered), tampered
        held = upgraded.list_records()[1]
        assert [h.lot_id for h in held.containment.lot_holds] == ["LOT-7", "LOT-8"]
        assert held.containment.release_freeze and held.log.root_cause == "shared password"
        assert upgraded.migrate() == []


@pytest.mark.parametrize("ad_hoc_cursor", [False, True], ids=["no-cursor", "ad-hoc-cursor"])
def test_a_schema_1_database_migrates_forward_and_keeps_its_rows(
    store_target: tuple[str, str | None], tmp_path: Path, ad_hoc_cursor: bool,
) -> None:
    target, schema = store_target
    with legacy_copy(tmp_path, target, schema, versions=1) as source:
        expected = [r.model_dump(exclude={"version": True, **SIGNER})
                    for r in source.list_records()]
    if ad_hoc_cursor:  # the containment publisher of that time made its own table
        eng = engine(target, schema)
        with eng.begin() as conn:
            conn.exec_driver_sql(AD_HOC_CURSOR)
            conn.exec_driver_sql("INSERT INTO containment_cursor (topic, seq, updated_at) "
                                 f"VALUES ('otwatch.containment', 12, '{NOW.isoformat()}')")
        eng.dispose()
    with open_store(target, schema=schema) as store:
        assert store.schema_version() == 0
        assert store.migrate() == list(range(1, HEAD_REVISION + 1))
        assert store.schema_version() == CURSOR_SCHEMA_VERSION
        assert [r.model_dump(exclude={"version": True, **SIGNER})
                for r in store.list_records()] == expected
        assert store.verify_trail().ok
    cursor = TrailCursor.open(target, "otwatch.containment", schema=schema)
    try:
        assert cursor.load() == (12 if ad_hoc_cursor else 0)
        cursor.save(20, NOW)
        assert cursor.load() == 20
    finally:
        cursor.close()


@pytest.mark.parametrize("versions", [1, 2])
def test_the_cursor_refuses_a_database_not_at_the_current_schema(
    store_target: tuple[str, str | None], versions: int,
) -> None:
    target, schema = store_target
    create_legacy(target, schema, versions)
    with pytest.raises(StoreUnavailable,
                       match=f"schema version {versions - 1}; the trail relay needs "
                             f"{HEAD_REVISION}"):
        TrailCursor.open(target, "otwatch.containment", schema=schema)


def test_an_unmigrated_database_reads_as_not_migrated(tmp_path: Path) -> None:
    from detectors.records import NotMigrated

    create_legacy(str(tmp_path / "old.db"), None)
    with open_store(str(tmp_path / "old.db")) as old, pytest.raises(NotMigrated, match="migrate"):
        old.list_records()


OPEN_AND_MIGRATE = """
import sys, time
from detectors.records import open_store
start = float(sys.argv[2])
while time.time() < start:  # every process opens the new file at the same moment
    pass
with open_store(sys.argv[1]) as store:
    store.migrate()
"""


@pytest.mark.integration
def test_processes_started_together_on_a_new_sqlite_file_all_open_it(tmp_path: Path) -> None:
    """Two classifiers (or a classifier and the records UI) started together on a fresh
    database: switching it to WAL made all but one fail with "database is locked"."""
    for attempt in range(3):
        target = tmp_path / f"records-{attempt}.db"
        start = time.time() + 2.0  # after every interpreter has imported
        procs = [
            subprocess.Popen([sys.executable, "-c", OPEN_AND_MIGRATE, str(target), str(start)],
                             stderr=subprocess.PIPE, text=True)
            for _ in range(3)
        ]
        try:
            errors = [p.communicate(timeout=60)[1] for p in procs]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait(timeout=5)
        assert [p.returncode for p in procs] == [0, 0, 0], errors
        with open_store(str(target)) as store:
            assert store.schema_version() == CURSOR_SCHEMA_VERSION


@pytest.mark.integration
def test_an_older_schema_visible_through_the_search_path_is_not_adopted(pg_dsn: str) -> None:
    """A role whose own schema comes first on its search path, with an older otwatch schema
    (``schema_version``) in a schema behind it that the role may not read: migrating works in
    the role's own schema and never touches the other one. (Seen: a leftover legacy schema in
    ``public`` made every classifier of such a role fail with "permission denied".)"""
    import uuid

    import psycopg

    role, other = f"otw_{uuid.uuid4().hex[:12]}", f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"CREATE SCHEMA {role} AUTHORIZATION {role}")
        conn.execute(f"CREATE SCHEMA {other}")
        conn.execute(f"GRANT USAGE ON SCHEMA {other} TO {role}")
        conn.execute(f"CREATE TABLE {other}.schema_version (version INTEGER PRIMARY KEY, "
                     "name TEXT NOT NULL, applied_at TEXT NOT NULL)")
        conn.execute(f"INSERT INTO {other}.schema_version VALUES (1, 'x', 'x'), (2, 'y', 'y')")
    try:
        dsn = (f"postgresql://{role}@127.0.0.1:5432/test"
               f"?options=-csearch_path%3D{role},{other}")
        with open_store(dsn) as store:
            assert store.schema_version() == 0
            store.migrate()
            assert store.schema_version() == HEAD_REVISION
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            left = conn.execute(f"SELECT count(*) FROM {other}.schema_version").fetchone()
            assert left == (2,)
            own = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = %s AND "
                               "tablename = 'alembic_version'", (role,)).fetchone()
            assert own == (1,)
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE usename = %s", (role,))
            conn.execute(f"DROP SCHEMA IF EXISTS {role} CASCADE")
            conn.execute(f"DROP SCHEMA IF EXISTS {other} CASCADE")
            conn.execute(f"DROP ROLE IF EXISTS {role}")
