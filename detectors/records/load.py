"""Reading master records back: the record row, its section columns and tables, its ticket,
evidence and signatures, every value read by column name."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import orjson
from sqlalchemy import Connection, Row, Table, select

from detectors.records.models import Evidence, MasterRecord, SecurityTicket, Signature
from detectors.records.tables import (
    attachment_blobs,
    capa_actions,
    containment_decisions,
    evidence,
    impact_contributions,
    lot_holds,
    record_attachments,
    records,
    signatures,
    tickets,
)

#: Section columns of ``records`` that hold JSON.
JSON_SECTIONS = ("log", "impact", "affected_lots", "containment", "rca", "effectiveness_check")
_PLAIN = [c for c in records.c if c.name not in (*JSON_SECTIONS, "rules_fired")]


def load_records(conn: Connection, record_id: str | None = None) -> list[MasterRecord]:
    """All records (or one), oldest first, with everything that hangs off them."""
    query = select(records).order_by(records.c.created_at, records.c.id)
    if record_id is not None:
        query = query.where(records.c.id == record_id)
    rows = conn.execute(query).all()
    if not rows:
        return []
    parts = _Parts(conn, record_id)
    return [parts.record(row) for row in rows]


class _Parts:
    """The rows hanging off the records being loaded, grouped by record id."""

    def __init__(self, conn: Connection, record_id: str | None) -> None:
        def rows(table: Table, *order: str) -> defaultdict[str, list[Row[Any]]]:
            query = select(table).order_by(*(table.c[name] for name in order))
            if record_id is not None:
                query = query.where(table.c.record_id == record_id)
            return _group(conn.execute(query))

        self.tickets = {r.record_id: r for r in conn.execute(
            select(tickets).where(*(() if record_id is None else
                                    (tickets.c.record_id == record_id,))))}
        self.evidence = rows(evidence, "attached_at", "detected_at")
        self.signatures = rows(signatures, "record_id", "position")
        self.holds = rows(lot_holds, "record_id", "position")
        self.actions = rows(capa_actions, "record_id", "position")
        self.decisions = rows(containment_decisions, "record_id", "position")
        self.contributions = rows(impact_contributions, "record_id", "function")
        a, b = record_attachments, attachment_blobs
        query = (select(a, b.c.size).join(b, b.c.sha256 == a.c.sha256)
                 .order_by(a.c.record_id, a.c.position))
        if record_id is not None:
            query = query.where(a.c.record_id == record_id)
        self.attachments = _group(conn.execute(query))

    def record(self, row: Row[Any]) -> MasterRecord:
        rid = row.id
        data: dict[str, Any] = {c.name: row._mapping[c.name] for c in _PLAIN}
        data["rules_fired"] = orjson.loads(row.rules_fired)
        data.update(sections(row))
        data["containment"]["lot_holds"] = [lot_hold(h) for h in self.holds[rid]]
        data["containment"]["decisions"] = [decision(d) for d in self.decisions[rid]]
        data["impact"]["contributions"] = [contribution(c) for c in self.contributions[rid]]
        data["capa_actions"] = [capa_action(a) for a in self.actions[rid]]
        data["evidence"] = [_evidence(e) for e in self.evidence[rid]]
        data["attachments"] = [
            {"sha256": r.sha256, "filename": r.filename, "media_type": r.media_type,
             "item": r.item, "size": r.size, "attached_by": r.attached_by,
             "attached_at": r.attached_at} for r in self.attachments[rid]]
        data["signatures"] = [
            Signature(printed_name=s.printed_name, user_id=s.user_id, role=s.role,
                      meaning=s.meaning, signed_at=s.signed_at, step=s.step,
                      trail_seq=s.trail_seq)
            for s in self.signatures[rid]
        ]
        ticket = self.tickets.get(rid)
        data["ticket"] = None if ticket is None else SecurityTicket(
            id=ticket.id, record_id=ticket.record_id, severity=ticket.severity,
            status=ticket.status, indicators=orjson.loads(ticket.indicators),
        )
        return MasterRecord.model_validate(data)


def sections(row: Row[Any]) -> dict[str, Any]:
    """The JSON section columns of one ``records`` row, parsed."""
    found = {name: row._mapping[name] for name in JSON_SECTIONS}
    return {name: None if value is None else orjson.loads(value) for name, value in found.items()}


def lot_hold(row: Row[Any]) -> dict[str, Any]:
    return {"lot_id": row.lot_id, "held_at": row.held_at, "held_by": row.held_by,
            "released_at": row.released_at, "released_by": row.released_by}


def capa_action(row: Row[Any]) -> dict[str, Any]:
    check = row.effectiveness_check
    return {
        "id": row.action_id, "description": row.description, "owner": row.owner,
        "domain": row.domain, "original_due": row.original_due, "current_due": row.current_due,
        "status": row.status, "effectiveness_check": None if check is None else orjson.loads(check),
        "capa_type": row.capa_type, "owning_system": row.owning_system,
        "external_ref": row.external_ref, "priority": row.priority, "addresses": row.addresses,
        "revalidation_required": bool(row.revalidation_required),
        "change_control_ref": row.change_control_ref,
        "due_changes": orjson.loads(row.due_changes),
    }


def decision(row: Row[Any]) -> dict[str, Any]:
    return {"kind": row.kind, "status": row.status, "owner": row.owner, "note": row.note,
            "decided_at": row.decided_at, "decided_by": row.decided_by, "action": row.action,
            "coordination_note": row.coordination_note, "options": orjson.loads(row.options),
            "choice": row.choice, "risk_accepted": row.risk_accepted,
            "approved_by": row.approved_by}


def contribution(row: Row[Any]) -> dict[str, Any]:
    return {"function": row.function, "author": row.author, "assessment": row.assessment,
            "risk": row.risk, "signed_off": bool(row.signed_off), "updated_at": row.updated_at,
            "rating": None if row.rating is None else orjson.loads(row.rating)}


def _group(rows: Iterable[Row[Any]]) -> defaultdict[str, list[Row[Any]]]:
    grouped: defaultdict[str, list[Row[Any]]] = defaultdict(list)
    for row in rows:
        grouped[row.record_id].append(row)
    return grouped


def _evidence(row: Row[Any]) -> Evidence:
    event = orjson.loads(row.raw)
    return Evidence(
        event_id=row.event_id, sha256=row.sha256, controller=row.controller, tag=row.tag,
        change_kind=row.change_kind, verdict=row.verdict, severity=row.severity,
        classification=row.classification, rules_fired=orjson.loads(row.rules_fired),
        old_value=event.get("old_value"),
        new_value=event.get("new_value"), approval=event.get("approval"),
        context=event.get("context") or {}, occurred_at=row.occurred_at,
        detected_at=row.detected_at, attached_at=row.attached_at, raw=event,
    )

