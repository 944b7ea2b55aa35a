"""The rows a records batch builds (`detectors.records.ingest_rows`): the trail's evidence
entry is canonical JSON, written without asking orjson to sort each entry's keys."""

from __future__ import annotations

from datetime import timedelta

import orjson

from detectors.classification import ClassKind, Severity
from detectors.records import RecordStore
from detectors.records.tables import audit_trail
from detectors.records.trail import canonical_json, read_entries
from tests.support.events import RECORDS_T0 as T0
from tests.support.events import classified, record_event


def test_the_evidence_entry_is_canonical_json(store: RecordStore) -> None:
    kinds = [ClassKind.JOINT, ClassKind.QUALITY_ONLY, ClassKind.SECURITY_ONLY]
    severities = [Severity.HIGH, Severity.CRITICAL, Severity.MEDIUM]
    items = [(record_event(n, minutes=n / 10), classified(kinds[n % 3], severities[n % 3]))
             for n in range(12)]
    store.record_events(items[:1], now=T0 + timedelta(minutes=5))
    store.record_events(items[1:], now=T0 + timedelta(minutes=5))
    with store.database.read() as conn:
        entries = read_entries(conn, audit_trail.c.field == "evidence")
    assert len(entries) == 1 and entries[0].new is not None
    attached = orjson.loads(entries[0].new)
    assert [a["event_id"] for a in attached] == [f"ev-{n}" for n in range(1, 12)]
    assert entries[0].new == canonical_json(attached)
    assert store.verify_trail().ok
