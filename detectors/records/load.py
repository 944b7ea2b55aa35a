"""Reading master records back from rows: the records, tickets, evidence and signatures."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import orjson

from detectors.records.db import Database, Row
from detectors.records.models import Evidence, MasterRecord, SecurityTicket, Signature

RECORD_COLUMNS = (
    "id, classification, state, security_ticket, controller, tag, site, line, severity, "
    "description, detected_at, created_at, last_event_at, rules_fired, criteria_version, "
    "correlation_key, cancel_reason, details"
)
_NAMES = [c.strip() for c in RECORD_COLUMNS.split(",")]


def load_records(db: Database, record_id: str | None = None) -> list[MasterRecord]:
    """All records (or one), oldest first, with their tickets, evidence and signatures."""
    where, params = ("WHERE id = ?", (record_id,)) if record_id else ("", ())
    rows = db.query(f"SELECT {RECORD_COLUMNS} FROM records {where} ORDER BY created_at, id", params)
    sub_where, sub_params = ("WHERE record_id = ?", (record_id,)) if record_id else ("", ())
    tickets = {
        r[1]: _ticket(r)
        for r in db.query(
            f"SELECT id, record_id, severity, status, indicators FROM tickets {sub_where}",
            sub_params,
        )
    }
    evidence = _group(db.query(
        "SELECT record_id, event_id, sha256, change_kind, verdict, severity, occurred_at, "
        f"detected_at, attached_at, raw FROM evidence {sub_where} "
        "ORDER BY attached_at, detected_at",
        sub_params,
    ))
    signatures = _group(db.query(
        "SELECT record_id, printed_name, role, meaning, signed_at FROM signatures "
        f"{sub_where} ORDER BY record_id, position",
        sub_params,
    ))
    return [
        _record(row, tickets.get(row[0]), evidence[row[0]], signatures[row[0]]) for row in rows
    ]


def _group(rows: list[Row]) -> defaultdict[str, list[Row]]:
    grouped: defaultdict[str, list[Row]] = defaultdict(list)
    for row in rows:
        grouped[row[0]].append(row)
    return grouped


def _ticket(row: Row) -> SecurityTicket:
    tid, rid, severity, status, indicators = row
    return SecurityTicket(
        id=tid, record_id=rid, severity=severity, status=status,
        indicators=orjson.loads(indicators),
    )


def _evidence(row: Sequence[Any]) -> Evidence:
    _, event_id, sha, kind, verdict, severity, occurred, detected, attached, raw = row
    event = orjson.loads(raw)
    return Evidence(
        event_id=event_id, sha256=sha, change_kind=kind, verdict=verdict, severity=severity,
        old_value=event.get("old_value"), new_value=event.get("new_value"),
        approval=event.get("approval"), context=event.get("context") or {},
        occurred_at=occurred, detected_at=detected, attached_at=attached, raw=event,
    )


def _record(
    row: Row, ticket: SecurityTicket | None, evidence: list[Row], signatures: list[Row]
) -> MasterRecord:
    fields = dict(zip(_NAMES, row, strict=True))
    details = orjson.loads(fields.pop("details"))
    fields["rules_fired"] = orjson.loads(fields["rules_fired"])
    return MasterRecord.model_validate({
        **fields, **details,
        "evidence": [_evidence(e) for e in evidence],
        "signatures": [
            Signature(printed_name=s[1], role=s[2], meaning=s[3], signed_at=s[4])
            for s in signatures
        ],
        "ticket": ticket,
    })
