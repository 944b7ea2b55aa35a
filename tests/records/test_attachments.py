"""Evidence attachments: content-addressed by SHA-256, stored once, and a chain-of-custody
entry in the trail for every download; a changed blob is refused, not served."""

from __future__ import annotations

import hashlib

import orjson
import pytest
from sqlalchemy import func, select, update

from detectors.records import AttachFile, InvalidUpdate, PermissionDenied, RecordStore
from detectors.records.tables import attachment_blobs
from tests.records.lifecycle_steps import at
from tests.records.people import OPERATOR, QA, SOC, VIEWER
from tests.support.events import RECORDS_T0 as T0
from tests.support.events import classified
from tests.support.events import record_event as event

SNAPSHOT = b'{"ZoneTemp": 215.0, "Recipe": "R-12"}\n'


def test_attach_download_and_custody(store: RecordStore) -> None:
    one, two = (o.record_id or "" for o in store.record_events(
        [(event(1), classified(key="a")), (event(2, controller="p2"), classified(key="b"))],
        now=T0))
    digest = hashlib.sha256(SNAPSHOT).hexdigest()
    for rid in (one, two):
        record = store.execute(AttachFile(record_id=rid, reason="preserve", content=SNAPSHOT,
                                          filename="snapshot.json", item="configuration_snapshot",
                                          media_type="application/json"), actor=SOC, now=at(1))
    (made,) = record.attachments
    assert (made.sha256, made.size, made.attached_by, made.item) == (
        digest, len(SNAPSHOT), "soc.kim", "configuration_snapshot")
    with store.database.read() as conn:
        assert conn.execute(select(func.count()).select_from(attachment_blobs)).scalar() == 1
    name, media, content = store.download(one, digest, actor=VIEWER, purpose="audit",
                                          now=at(2))
    assert (name, media, content) == ("snapshot.json", "application/json", SNAPSHOT)
    custody = store.trail(one)[-1]
    assert (custody.field, custody.actor, custody.reason) == ("custody", "view.vic", "audit")
    assert orjson.loads(custody.new or "") == {
        "sha256": digest, "filename": "snapshot.json", "accessed_by": "view.vic",
        "accessed_at": custody.at, "purpose": "audit"}
    assert store.get_record(one).version == record.version  # a read changes no record
    with pytest.raises(InvalidUpdate, match="needs its purpose"):
        store.download(one, digest, actor=QA, purpose=" ", now=at(2))
    with pytest.raises(InvalidUpdate, match="has no attachment"):
        store.download(one, "0" * 64, actor=QA, purpose="x", now=at(2))
    with pytest.raises(PermissionDenied):
        store.execute(AttachFile(record_id=one, reason="x", content=b"x", filename="x"),
                      actor=OPERATOR, now=at(2))
    with store.database.write() as conn:
        conn.execute(update(attachment_blobs).values(content=b"changed"))
    trail = store.trail()
    with pytest.raises(InvalidUpdate, match="does not match its SHA-256"):
        store.download(one, digest, actor=QA, purpose="x", now=at(3))
    assert store.trail() == trail and store.verify_trail().ok
