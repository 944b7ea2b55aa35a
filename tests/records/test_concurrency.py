"""Two classifier processes recording one incident at once still open one record (both stores)."""

from __future__ import annotations

import threading

import psycopg
import pytest

from detectors.records import RecordOutcome, open_store
from tests.support.events import RECORDS_T0 as T0
from tests.support.events import classified
from tests.support.events import record_event as event


def test_concurrent_writers_open_one_record_per_incident(
    store_target: tuple[str, str | None],
) -> None:
    target, schema = store_target
    with open_store(target, schema=schema) as setup:
        setup.migrate()
    barrier = threading.Barrier(2)
    results: list[list[RecordOutcome]] = []
    errors: list[BaseException] = []

    def worker(offset: int) -> None:
        try:
            with open_store(target, schema=schema) as store:
                for round_ in range(5):
                    items = [(event(offset + round_ * 100 + n), classified(key=f"inc-{round_}"))
                             for n in range(20)]
                    barrier.wait(timeout=30)
                    results.append(store.record_events(items, now=T0))
        except BaseException as exc:  # surfaced below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(k * 10_000,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    with open_store(target, schema=schema) as check:
        records = check.list_records()
        assert len(records) == 5
        assert sorted(len(r.evidence) for r in records) == [40] * 5
        assert sum(o.created for batch in results for o in batch) == 5
        assert len({r.security_ticket for r in records}) == 5
        assert check.verify_trail().ok


def test_same_events_from_two_writers_are_recorded_once(
    store_target: tuple[str, str | None],
) -> None:
    target, schema = store_target
    with open_store(target, schema=schema) as setup:
        setup.migrate()
    items = [(event(n), classified()) for n in range(30)]
    barrier = threading.Barrier(2)
    results: list[list[RecordOutcome]] = []

    def worker() -> None:
        with open_store(target, schema=schema) as store:
            barrier.wait(timeout=30)
            results.append(store.record_events(items, now=T0))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 2
    fresh = [o for batch in results for o in batch if not o.duplicate]
    assert len(fresh) == 30
    with open_store(target, schema=schema) as check:
        (record,) = check.list_records()
        assert len(record.evidence) == 30


@pytest.mark.integration
def test_a_batch_holds_the_lock_of_every_incident_key_until_it_commits(
    pg_dsn: str, pg_schema: str
) -> None:
    """PostgreSQL: the keys are locked in one statement, each until the transaction ends."""
    keys = [f"plant-1/press-{n:02d}" for n in range(30)]
    with open_store(pg_dsn, schema=pg_schema) as store:
        store.migrate()
        db = store.database
        with psycopg.connect(pg_dsn, autocommit=True) as other:

            def free(key: str) -> bool:
                row = other.execute(
                    "SELECT pg_try_advisory_lock(hashtext(%s)), pg_advisory_unlock_all()", (key,)
                ).fetchone()
                assert row is not None
                return bool(row[0])

            with db.write():
                db.advisory_locks(sorted(keys))
                assert [free(k) for k in keys] == [False] * len(keys)
                assert free("plant-1/not-in-the-batch")
            assert all(free(k) for k in keys)
