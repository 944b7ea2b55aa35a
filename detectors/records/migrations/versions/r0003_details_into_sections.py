"""Data: move each record's ``details`` JSON into the section columns and tables, drop it.

``details`` held seven sections in one JSON text. The values move as they are (they were
written by pydantic's JSON dump, so times keep their text form): ``log``, ``impact``,
``affected_lots``, ``rca`` and ``effectiveness_check`` to their columns; ``containment`` to its
column without ``lot_holds``, which go to ``lot_holds`` rows; ``capa_actions`` to rows. The
audit trail is not touched, so its hashes still recompute.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# The tables as this revision sees them (frozen here: later revisions may change them).
RECORDS = sa.table(
    "records", sa.column("id", sa.Text), sa.column("details", sa.Text),
    *(sa.column(name, sa.Text) for name in (
        "log", "impact", "affected_lots", "containment", "rca", "effectiveness_check")),
)
LOT_HOLDS = sa.table("lot_holds", *(sa.column(name) for name in (
    "record_id", "position", "lot_id", "held_at", "held_by", "released_at", "released_by")))
CAPA_ACTIONS = sa.table("capa_actions", *(sa.column(name) for name in (
    "record_id", "position", "action_id", "description", "owner", "domain", "original_due",
    "current_due", "status", "effectiveness_check")))


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS).decode()


def _holds(record_id: str, holds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"record_id": record_id, "position": n, "lot_id": h["lot_id"], "held_at": h["held_at"],
         "held_by": h.get("held_by"), "released_at": h.get("released_at"),
         "released_by": h.get("released_by")}
        for n, h in enumerate(holds)
    ]


def _actions(record_id: str, actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"record_id": record_id, "position": n, "action_id": a["id"],
         "description": a["description"], "owner": a["owner"], "domain": a["domain"],
         "original_due": a["original_due"], "current_due": a["current_due"],
         "status": a.get("status", "open"),
         "effectiveness_check": None if a.get("effectiveness_check") is None
         else _json(a["effectiveness_check"])}
        for n, a in enumerate(actions)
    ]


def _sections(details: dict[str, Any]) -> dict[str, Any]:
    containment = dict(details.get("containment") or {})
    containment.pop("lot_holds", None)
    check = details.get("effectiveness_check")
    return {
        "log": _json(details.get("log") or {}), "impact": _json(details.get("impact") or {}),
        "affected_lots": _json(details.get("affected_lots") or []),
        "containment": _json(containment), "rca": _json(details.get("rca") or {}),
        "effectiveness_check": None if check is None else _json(check),
    }


def upgrade() -> None:
    conn = op.get_bind()
    updates: list[dict[str, Any]] = []
    holds: list[dict[str, Any]] = []
    actions: list[dict[str, Any]] = []
    for row in conn.execute(sa.select(RECORDS.c.id, RECORDS.c.details)):
        details = orjson.loads(row.details or "{}")
        updates.append({"rid": row.id, **_sections(details)})
        holds += _holds(row.id, (details.get("containment") or {}).get("lot_holds") or [])
        actions += _actions(row.id, details.get("capa_actions") or [])
    if updates:
        # The SET clause is every key of the parameters except the WHERE's "rid".
        conn.execute(RECORDS.update().where(RECORDS.c.id == sa.bindparam("rid")), updates)
    if holds:
        conn.execute(LOT_HOLDS.insert(), holds)
    if actions:
        conn.execute(CAPA_ACTIONS.insert(), actions)
    op.drop_column("records", "details")


def downgrade() -> None:
    raise NotImplementedError("the records schema is not downgraded; restore a backup instead")
