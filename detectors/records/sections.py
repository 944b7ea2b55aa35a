"""Writing a record's editable sections to their columns and tables.

Every value goes through pydantic's JSON dump first (`MasterRecord.model_dump(mode="json")`),
so a time is stored in exactly the text the trail entry shows for it and reads back equal.

Section → storage:

    description          records.description
    log, rca, affected_lots, effectiveness_check    records.<section> (JSON)
    impact               records.impact (JSON, without contributions) + impact_contributions
    containment          records.containment (JSON: the flags and notes) + lot_holds
                         + containment_decisions
    capa_actions         capa_actions
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table, delete, update

from detectors.records.models import MasterRecord
from detectors.records.tables import (
    capa_actions,
    containment_decisions,
    impact_contributions,
    lot_holds,
    records,
)
from detectors.records.trail import canonical_json

_JSON_COLUMNS = ("log", "rca", "affected_lots")


def save_section(conn: Connection, record: MasterRecord, section: str) -> None:
    """Store ``record``'s ``section`` (already validated) in place of what the database has."""
    data = record.model_dump(mode="json", include={section})[section]
    rid = record.id
    if section == "description":
        _set(conn, rid, description=data)
    elif section in _JSON_COLUMNS:
        _set(conn, rid, **{section: canonical_json(data)})
    elif section == "effectiveness_check":
        _set(conn, rid, effectiveness_check=None if data is None else canonical_json(data))
    elif section == "impact":
        contributions = data.pop("contributions")
        _set(conn, rid, impact=canonical_json(data))
        _replace(conn, impact_contributions, rid,
                 [contribution_row(rid, c) for c in contributions])
    elif section == "containment":
        holds, decisions = data.pop("lot_holds"), data.pop("decisions")
        _set(conn, rid, containment=canonical_json(data))
        _replace(conn, lot_holds, rid, [hold_row(rid, n, h) for n, h in enumerate(holds)])
        _replace(conn, containment_decisions, rid,
                 [decision_row(rid, n, d) for n, d in enumerate(decisions)])
    elif section == "capa_actions":
        _replace(conn, capa_actions, rid, [action_row(rid, n, a) for n, a in enumerate(data)])
    else:
        raise ValueError(f"no storage for section {section!r}")


def _set(conn: Connection, record_id: str, **values: Any) -> None:
    conn.execute(update(records).where(records.c.id == record_id).values(**values))


def _replace(conn: Connection, table: Table, record_id: str, rows: list[dict[str, Any]]) -> None:
    conn.execute(delete(table).where(table.c.record_id == record_id))
    if rows:
        conn.execute(table.insert(), rows)


def hold_row(record_id: str, position: int, hold: dict[str, Any]) -> dict[str, Any]:
    """A ``lot_holds`` row from a dumped `LotHold`."""
    return {"record_id": record_id, "position": position, **hold}


def decision_row(record_id: str, position: int, decision: dict[str, Any]) -> dict[str, Any]:
    """A ``containment_decisions`` row from a dumped `ContainmentDecision`."""
    return {"record_id": record_id, "position": position, **decision,
            "options": canonical_json(decision.get("options", []))}


def contribution_row(record_id: str, contribution: dict[str, Any]) -> dict[str, Any]:
    """An ``impact_contributions`` row from a dumped `ImpactContribution`."""
    rating = contribution.get("rating")
    return {"record_id": record_id, **contribution,
            "rating": None if rating is None else canonical_json(rating)}


def action_row(record_id: str, position: int, action: dict[str, Any]) -> dict[str, Any]:
    """A ``capa_actions`` row from a dumped `CapaAction`."""
    row = {key: value for key, value in action.items() if key not in ("id",
                                                                       "effectiveness_check")}
    check = action.get("effectiveness_check")
    return {
        "record_id": record_id, "position": position, "action_id": action["id"], **row,
        "effectiveness_check": None if check is None else canonical_json(check),
        "due_changes": canonical_json(action.get("due_changes", [])),
    }
