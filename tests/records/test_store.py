"""The store opens one record per incident, attaches correlated evidence, and dedupes events."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from agent.contract import SuspectChange
from detectors.classification import ClassKind, Severity
from detectors.records import HEAD_REVISION, RecordNotFound, RecordStore, open_store
from tests.records.people import QA
from tests.support.events import RECORDS_T0 as T0
from tests.support.events import classified
from tests.support.events import record_event as event

NOW = T0 + timedelta(minutes=1)


def test_first_event_opens_linked_record_and_ticket(store: RecordStore) -> None:
    (out,) = store.record_events([(event(1, approval=True), classified())], now=NOW)
    assert out.created and not out.duplicate
    assert out.record_id == "NC-2026-000001" and out.ticket_id == "SEC-2026-000001"
    record = store.get_record(out.record_id)
    assert record.security_ticket == "SEC-2026-000001"
    assert record.ticket is not None and record.ticket.record_id == record.id
    assert record.classification == "joint" and record.state == "detected"
    assert (record.controller, record.tag, record.site, record.line) == (
        "press-01", "ZoneTemp", "plant-1", "line-a")
    assert record.rules_fired == ["ctq-setpoint"] and record.criteria_version == "c-1"
    (ev,) = record.evidence
    assert ev.sha256 == hashlib.sha256(event(1, approval=True).to_json()).hexdigest()
    assert (ev.old_value, ev.new_value, ev.verdict) == (200.0, 215.0, "unapproved")
    assert ev.approval is not None and ev.approval["id"] == "CC-1"
    assert "T0836" in record.ticket.indicators
    dumped = record.model_dump(mode="json")
    assert {"id", "classification", "state", "security_ticket", "controller", "tag"} <= set(dumped)


def test_correlated_events_attach_and_raise_severity(store: RecordStore) -> None:
    outs = store.record_events(
        [
            (event(1), classified(severity=Severity.MEDIUM)),
            (event(2, minutes=5), classified(severity=Severity.CRITICAL)),
        ],
        now=NOW,
    )
    assert [o.created for o in outs] == [True, False]
    assert outs[0].record_id == outs[1].record_id
    later = store.record_events(
        [(event(3, minutes=10), classified(severity=Severity.LOW))], now=NOW
    )
    assert later[0].record_id == outs[0].record_id and not later[0].created
    record = store.get_record(outs[0].record_id or "")
    assert record.severity == "critical" and len(record.evidence) == 3
    assert record.ticket is not None and record.ticket.severity == "critical"
    assert len(store.list_records()) == 1


def test_event_outside_window_or_other_key_opens_new_record(store: RecordStore) -> None:
    outs = store.record_events(
        [
            (event(1), classified()),
            (event(2, minutes=20), classified()),  # > 900 s after the last event
            (event(3, minutes=21), classified(key="k2")),
        ],
        now=NOW,
    )
    assert [o.created for o in outs] == [True, True, True]
    assert [o.record_id for o in outs] == ["NC-2026-000001", "NC-2026-000002", "NC-2026-000003"]


def _parsed(n: int, detected: datetime) -> SuspectChange:
    """Event ``n`` detected at ``detected``, as the classifier has it: parsed from its bytes
    (its times then carry pydantic's own tzinfo, not `datetime.timezone`)."""
    return SuspectChange.model_validate_json(
        event(n).model_copy(update={"detected_at": detected}).to_json())


def test_the_window_is_the_same_instant_whatever_offset_the_events_were_written_in(
    store: RecordStore,
) -> None:
    """Ingest compares each event with its record's last one in UTC (`_Batch.instant`): an
    event written in another offset joins at exactly the window's length, opens a new record
    a microsecond past it, in one batch and against a record read back from the store."""
    window = timedelta(seconds=900)
    plus_two, minus_five = timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))
    first = T0.replace(tzinfo=UTC)
    edge = (first + window).astimezone(plus_two)
    past = (edge + window + timedelta(microseconds=1)).astimezone(minus_five)
    outs = store.record_events(
        [(_parsed(1, first), classified()), (_parsed(2, edge), classified()),
         (_parsed(3, past), classified())], now=NOW, correlation_window_s=900.0)
    assert [(o.record_id, o.created) for o in outs] == [
        ("NC-2026-000001", True), ("NC-2026-000001", False), ("NC-2026-000002", True)]
    later = store.record_events(
        [(_parsed(4, (past + window).astimezone(plus_two)), classified())], now=NOW,
        correlation_window_s=900.0)
    assert (later[0].record_id, later[0].created) == ("NC-2026-000002", False)
    opened = store.get_record("NC-2026-000001")
    assert opened.last_event_at == edge and opened.last_event_at.utcoffset() == timedelta(0)
    assert [e.detected_at for e in opened.evidence] == [first, edge]
    assert store.get_record("NC-2026-000002").last_event_at == past + window


def test_duplicates_change_nothing_also_within_a_batch(store: RecordStore) -> None:
    first = store.record_events([(event(1), classified()), (event(1), classified())], now=NOW)
    assert [o.duplicate for o in first] == [False, True]
    assert first[1].record_id == first[0].record_id and first[1].ticket_id == first[0].ticket_id
    trail_before = store.trail()
    again = store.record_events([(event(1), classified())], now=NOW + timedelta(hours=1))
    assert again[0].duplicate and again[0].record_id == first[0].record_id
    assert again[0].ticket_id == "SEC-2026-000001"
    assert store.trail() == trail_before
    assert len(store.get_record(first[0].record_id or "").evidence) == 1


def test_redelivered_ids_are_recognised_whatever_they_hold(store: RecordStore) -> None:
    """The ids of a batch are looked up in one parameter (a JSON array on SQLite): ids with
    quotes, backslashes, characters outside the BMP or digits only are found as they are,
    and an id that differs by one character is not."""
    odd = ['ev-"quoted"', "ev\\back", "ev-\U0001f600", "12345", "ev-1 ", "ev-1"]
    items = []
    for n, event_id in enumerate(odd):
        ev = event(n, minutes=n / 10).model_copy(update={"event_id": event_id})
        items.append((ev, classified(kind=ClassKind.NONE if n % 2 else ClassKind.JOINT)))
    first = store.record_events(items, now=NOW)
    assert not any(o.duplicate for o in first)
    again = store.record_events([*items, (event(99), classified())], now=NOW)
    assert [o.duplicate for o in again] == [True] * len(odd) + [False]
    assert [(o.record_id, o.ticket_id) for o in again[:-1]] == [
        (o.record_id, o.ticket_id) for o in first]


def test_none_kind_is_only_marked_processed(store: RecordStore) -> None:
    (out,) = store.record_events([(event(1), classified(kind=ClassKind.NONE))], now=NOW)
    assert out.record_id is None and not out.created and not out.duplicate
    assert store.list_records() == []
    (again,) = store.record_events([(event(1), classified())], now=NOW)
    assert again.duplicate and again.record_id is None


def test_closed_record_is_not_reopened_by_new_events(store: RecordStore) -> None:
    (out,) = store.record_events([(event(1), classified())], now=NOW)
    store.transition(out.record_id or "", "cancelled", actor=QA,
                     reason="false positive: commissioning", now=NOW)
    (nxt,) = store.record_events([(event(2, minutes=1), classified())], now=NOW)
    assert nxt.created and nxt.record_id != out.record_id


def test_ids_follow_the_year_of_creation(store: RecordStore) -> None:
    store.record_events([(event(1), classified())], now=NOW)
    (out,) = store.record_events(
        [(event(2), classified(key="k9"))], now=NOW.replace(year=2027)
    )
    assert out.record_id == "NC-2027-000001" and out.ticket_id == "SEC-2027-000001"


def test_get_missing_record_raises(store: RecordStore) -> None:
    with pytest.raises(RecordNotFound, match="NC-2026-999999"):
        store.get_record("NC-2026-999999")


def test_migrate_is_idempotent_and_versioned(store_target: tuple[str, str | None]) -> None:
    target, schema = store_target
    with open_store(target, schema=schema) as first:
        assert first.migrate() == list(range(1, HEAD_REVISION + 1))
        assert first.migrate() == []
        assert first.schema_version() == HEAD_REVISION


def test_sqlite_url_form(tmp_path: object) -> None:
    path = f"{tmp_path}/r.db"
    with open_store(f"sqlite:///{path}".replace("sqlite:////", "sqlite:///")) as s:
        s.migrate()
        s.record_events([(event(1), classified())], now=NOW)
    with open_store(path) as s:
        assert len(s.list_records()) == 1


def test_unmigrated_database_is_a_retryable_store_error(tmp_path: object) -> None:
    from detectors.records import StoreUnavailable

    with open_store(f"{tmp_path}/new.db") as fresh:
        with pytest.raises(StoreUnavailable, match="not migrated") as info:
            fresh.record_events([(event(1), classified())], now=NOW)
        assert info.value.retryable


@pytest.mark.integration
def test_unreachable_postgresql_is_store_unavailable() -> None:
    from detectors.records import StoreUnavailable
    from simulators.broker import free_port

    with pytest.raises(StoreUnavailable, match="cannot connect"):
        open_store(f"postgresql://postgres@127.0.0.1:{free_port()}/test")


def test_raw_message_bytes_are_kept_and_hashed(store: RecordStore) -> None:
    from detectors.records import RecordsError

    wire = event(1).to_json().replace(b'"seq":1', b'"seq":1 ')  # as received, not re-dumped
    (out,) = store.record_events([(event(1), classified())], now=NOW, raw=[wire])
    (ev,) = store.get_record(out.record_id or "").evidence
    assert ev.sha256 == hashlib.sha256(wire).hexdigest()
    with pytest.raises(RecordsError, match="raw has 0 entries for 1 items"):
        store.record_events([(event(2), classified())], now=NOW, raw=[])


def test_a_percent_sign_in_sql_is_safe_on_both_dialects(store: RecordStore) -> None:
    """The old layer turned every ``?`` into ``%s`` by string replace, so a ``%`` in SQL (a LIKE
    pattern) broke on PostgreSQL; bound parameters through SQLAlchemy have no such trap."""
    from sqlalchemy import text

    store.record_events([(event(1), classified()), (event(2, tag="Speed"), classified(key="k2"))],
                        now=NOW)
    query = text("SELECT id FROM records WHERE tag LIKE '%Temp' AND controller = :controller")
    with store.database.read() as conn:
        found = conn.execute(query, {"controller": "press-01"}).scalars().all()
    assert found == ["NC-2026-000001"]


def test_a_batch_the_database_refuses_half_way_leaves_nothing_and_records_once_after(
    tmp_path: object,
) -> None:
    """Evidence and processed rows go in as tuples, in one transaction with the rest: when
    the database refuses the batch after its evidence went in (a trigger refuses one
    processed row), nothing of the batch is left, and the same batch delivered again is
    recorded once, with a trail that verifies."""
    from detectors.records import RecordsError

    with open_store(f"{tmp_path}/refuse.db") as store:
        store.migrate()
        store.database.conn.exec_driver_sql(
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON processed_events "
            "WHEN NEW.event_id = 'ev-3' BEGIN SELECT RAISE(ABORT, 'poison'); END")
        store.database.conn.commit()
        batch = [(event(n, minutes=n / 10), classified()) for n in range(1, 5)]
        with pytest.raises(RecordsError):
            store.record_events(batch, now=NOW)
        assert store.list_records() == []
        assert store.trail() == []
        assert store.database.conn.exec_driver_sql(
            "SELECT (SELECT count(*) FROM evidence) + (SELECT count(*) FROM processed_events)"
        ).scalar() == 0
        store.database.conn.exec_driver_sql("DROP TRIGGER refuse_poison")
        store.database.conn.commit()
        outcomes = store.record_events(batch, now=NOW)
        again = store.record_events(batch, now=NOW)
        assert not any(o.duplicate for o in outcomes) and all(o.duplicate for o in again)
        (rec,) = store.list_records()
        assert sorted(e.event_id for e in store.get_record(rec.id).evidence) == [
            "ev-1", "ev-2", "ev-3", "ev-4"]
        assert store.verify_trail().ok
