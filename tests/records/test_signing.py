"""A signature cannot be copied to another record, edited, or cut away without `verify`
naming it (21 CFR 11.70): each row is checked against the trail entry that binds it."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, insert, select, update

from detectors.records import RecordStore, State
from detectors.records.tables import signatures
from detectors.records_cli import main
from tests.records.lifecycle_steps import at, drive, sign_both
from tests.support.events import RECORDS_T0 as T0
from tests.support.events import classified
from tests.support.events import record_event as event


@pytest.fixture
def signed(store: RecordStore) -> tuple[str, str]:
    """Two records; the first signed for plan approval by qa.lee and soc.kim."""
    outs = store.record_events([(event(1), classified(key="a")),
                                (event(2, controller="press-02"), classified(key="b"))], now=T0)
    first, second = (o.record_id or "" for o in outs)
    drive(store, first, State.ACTION_PLAN)
    sign_both(store, first, at(9))
    assert store.verify_signatures() == []
    return first, second


def test_a_signature_copied_to_another_record_is_found(
    store: RecordStore, signed: tuple[str, str],
) -> None:
    first, second = signed
    with store.database.write() as conn:
        row = dict(conn.execute(select(signatures).where(signatures.c.record_id == first))
                   .first()._mapping)  # type: ignore[union-attr]
        conn.execute(insert(signatures).values({**row, "record_id": second, "position": 0}))
    (problem,) = store.verify_signatures()
    assert f"record {second}" in problem and "copied or forged" in problem


def test_an_edited_or_cut_signature_is_found(store: RecordStore, signed: tuple[str, str],
                                             store_target: tuple[str, str | None]) -> None:
    first, _ = signed
    with store.database.write() as conn:
        conn.execute(update(signatures).where(signatures.c.record_id == first,
                                              signatures.c.position == 0)
                     .values(meaning="approved, honestly"))
        conn.execute(delete(signatures).where(signatures.c.position == 1))
    problems = store.verify_signatures()
    assert any("'qa.lee' as quality differs" in p and "(edited)" in p for p in problems)
    assert any("'soc.kim'" in p and "cut away" in p for p in problems)
    target, schema = store_target
    argv = ["--db", target, *(["--schema", schema] if schema else [])]
    assert main([*argv, "verify"]) == 1
