"""A suspected joint nonconformity reported by hand (an operator saw something otwatch did
not): it opens a master record and its security ticket exactly as the classifier does, in
state ``detected``, so it enters the same workflow and guards.

The record names its reporter (``reported_by``), has no rules fired (``criteria_version``
``manual``) and no evidence (attach files later); its trail starts with a ``record`` entry
made by the reporter, with the same snapshot the classifier writes. A report on a controller
and tag that had a closed record links to it as a recurrence (`ingest.recurrence_of`).

    >>> report_nonconformity(conn, ManualReport(controller="press-01", tag="ZoneTemp",
    ...     description="oven ran hot on LOT-9", ...), actor=operator, now=now)
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, insert

from detectors.classification import Severity
from detectors.records.commands import Actor
from detectors.records.ingest import _NEXT_ID, recurrence_of
from detectors.records.models import State
from detectors.records.permissions import Permission, require
from detectors.records.tables import records, tickets
from detectors.records.trail import TrailWriter, append_rows, canonical_json, iso


class ManualReport(BaseModel):
    """What the reporter says: where, what, how bad, when it happened, and the impact they
    see on quality and on security (either may be empty)."""

    model_config = ConfigDict(extra="forbid")

    controller: str = Field(min_length=1, description="the controller's id")
    tag: str = Field(min_length=1, description="the setpoint, recipe or program concerned")
    site: str = Field(min_length=1)
    line: str = Field(min_length=1)
    description: str = Field(min_length=1, max_length=4000)
    severity: Severity = Severity.MEDIUM
    occurred_at: datetime | None = Field(default=None, description="when; default: now")
    quality_impact: str = ""
    security_impact: str = ""


def _next(conn: Connection, kind: str, year: int) -> int:
    return int(conn.execute(_NEXT_ID, {"kind": kind, "year": year}).scalar_one())


def report_nonconformity(
    conn: Connection, report: ManualReport, *, actor: Actor, reason: str, now: datetime,
) -> str:
    """Open the record (inside the caller's write transaction, trail head locked); returns
    its id. ``actor`` is the current user (checked by the caller against the users table)."""
    require(actor.user_id, actor.roles, Permission.REPORT)
    rid = f"NC-{now.year}-{_next(conn, 'NC', now.year):06d}"
    ticket = f"SEC-{now.year}-{_next(conn, 'SEC', now.year):06d}"
    detected = iso(report.occurred_at or now)
    recurs = recurrence_of(conn, report.controller, report.tag)
    facts = {
        "classification": "joint", "state": State.DETECTED.value, "security_ticket": ticket,
        "controller": report.controller, "tag": report.tag, "site": report.site,
        "line": report.line, "severity": report.severity.value,
        "correlation_key": f"manual:{rid}", "criteria_version": "manual",
        "quality_impact": report.quality_impact, "security_impact": report.security_impact,
        "recurrence_of": recurs, "reported_by": actor.user_id,
    }
    conn.execute(insert(records), [{
        **facts, "id": rid, "description": report.description, "detected_at": detected,
        "created_at": iso(now), "last_event_at": detected, "rules_fired": "[]"}])
    conn.execute(insert(tickets), [{"id": ticket, "record_id": rid,
                                    "severity": report.severity.value, "status": "open",
                                    "indicators": "[]"}])
    writer = TrailWriter.at_head(conn)
    snapshot = {**facts, "rules_fired": [], "description": report.description,
                "detected_at": detected, "indicators": []}
    writer.append(rid, actor.user_id, iso(now), "record", None, canonical_json(snapshot),
                  reason)
    append_rows(conn, writer)
    return rid
