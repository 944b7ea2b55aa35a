"""The audit trail is append-only in the database and `verify` catches a row edited directly."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable

import psycopg
import pytest

from detectors.records import RecordStore, State, open_store
from detectors.records.trail import GENESIS, verify_entries
from detectors.records_cli import main
from tests.records.lifecycle_steps import at, drive
from tests.support.events import RECORDS_T0 as T0
from tests.support.events import classified
from tests.support.events import record_event as event


def populated(store: RecordStore) -> str:
    outs = store.record_events(
        [(event(1), classified()), (event(2, minutes=1), classified()),
         (event(3), classified(key="other"))],
        now=T0,
    )
    rid = outs[0].record_id or ""
    drive(store, rid, State.INVESTIGATION)
    return rid


def raw_sql(target: tuple[str, str | None]) -> Callable[[str], None]:
    """Execute SQL on a raw connection, bypassing the store (as an attacker would)."""
    path, schema = target

    def run(sql: str) -> None:
        if schema is None:
            with sqlite3.connect(path) as conn:
                conn.executescript(sql)
        else:
            with psycopg.connect(path, autocommit=True,
                                 options=f"-c search_path={schema}") as conn:
                conn.execute(sql)

    return run


def test_every_write_is_chained_and_verifies(store: RecordStore) -> None:
    rid = populated(store)
    trail = store.trail()
    assert trail[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(trail))
    assert [e.seq for e in trail] == list(range(1, len(trail) + 1))
    fields = [e.field for e in store.trail(rid)]
    assert fields[:2] == ["record", "evidence"] and "state" in fields
    assert {e.actor for e in trail if e.field in ("record", "evidence")} == {"otwatch-classifier"}
    result = store.verify_trail()
    assert result.ok and result.entries == len(trail)


def test_database_refuses_update_and_delete_on_the_trail(
    store: RecordStore, store_target: tuple[str, str | None]
) -> None:
    populated(store)
    run = raw_sql(store_target)
    for sql in ("UPDATE audit_trail SET reason = 'x' WHERE seq = 1",
                "DELETE FROM audit_trail WHERE seq = 1"):
        with pytest.raises((sqlite3.DatabaseError, psycopg.Error), match="append-only"):
            run(sql)
    assert store.verify_trail().ok


def _tamper(run: Callable[[str], None], sqlite: bool, seq: int) -> None:
    if sqlite:
        run("DROP TRIGGER audit_trail_no_update;"
            f"UPDATE audit_trail SET reason = 'nothing to see' WHERE seq = {seq};"
            "CREATE TRIGGER audit_trail_no_update BEFORE UPDATE ON audit_trail BEGIN "
            "SELECT RAISE(ABORT, 'audit_trail is append-only: UPDATE refused'); END;")
    else:
        run("DROP TRIGGER audit_trail_no_update ON audit_trail;"
            f"UPDATE audit_trail SET reason = 'nothing to see' WHERE seq = {seq};"
            "CREATE TRIGGER audit_trail_no_update BEFORE UPDATE ON audit_trail "
            "FOR EACH ROW EXECUTE FUNCTION audit_trail_refuse_change();")


def test_verify_names_a_row_edited_directly(
    store: RecordStore, store_target: tuple[str, str | None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    populated(store)
    _tamper(raw_sql(store_target), store_target[1] is None, seq=4)
    result = store.verify_trail()
    assert not result.ok and result.first_broken_seq == 4
    assert "edited" in result.problem
    target, schema = store_target
    argv = ["--db", target, *(["--schema", schema] if schema else []), "verify"]
    assert main(argv) == 1
    assert "entry 4" in capsys.readouterr().out


def test_verify_catches_rehashed_row_and_gaps() -> None:
    """Recomputing an edited row's own hash still breaks the next link; a gap is named."""
    from detectors.records.trail import TrailWriter

    writer = TrailWriter.starting_at(None)
    for n in range(4):
        writer.append("NC-1", "a", at(n).isoformat(), "f", None, f'"{n}"', "r")
    rows = list(writer.rows)
    forged = TrailWriter.starting_at((1, rows[0][9]))
    forged.append("NC-1", "a", rows[1][3], "f", None, '"forged"', "r")
    tampered = [rows[0], forged.rows[0], rows[2], rows[3]]
    result = verify_entries(tampered)
    assert not result.ok and result.first_broken_seq == 3 and "prev_hash" in result.problem
    gap = verify_entries([rows[0], rows[2], rows[3]])
    assert gap.first_broken_seq == 3 and "missing" in gap.problem


def test_two_stores_on_one_database_keep_one_chain(
    store: RecordStore, store_target: tuple[str, str | None]
) -> None:
    target, schema = store_target
    with open_store(target, schema=schema) as other:
        store.record_events([(event(1), classified(key="a"))], now=T0)
        other.record_events([(event(2), classified(key="b"))], now=T0)
        store.record_events([(event(3), classified(key="c"))], now=T0)
    assert store.verify_trail().ok
