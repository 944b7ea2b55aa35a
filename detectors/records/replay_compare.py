"""Comparing the replayed trail (`replay.replay`) with the database: every record row and
section, its security ticket, evidence rows (their bytes against their SHA-256), linked
tickets, external references and attachment blobs (their bytes against their address).

Rows that are not audited are not compared: the outbox's delivery status of a linked ticket
(``attempts``, ``last_error``, `links`), and the placeholder row the outbox writes while a
ticket is not created yet.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from sqlalchemy import Connection, select

from detectors.records.links import TICKET_FIELDS
from detectors.records.load import load_records
from detectors.records.replay import Expected, Finding, Replay
from detectors.records.tables import (
    attachment_blobs,
    evidence,
    external_refs,
    external_tickets,
    records,
    tickets,
)


def compare(conn: Connection, state: Replay) -> list[Finding]:
    """Every difference between the live rows and the replayed state, first bad item first."""
    findings = list(state.findings)
    live_rows = {row.id: row for row in conn.execute(select(records))}
    live_records = {r.id: r for r in load_records(conn)}
    for rid in sorted(live_rows.keys() - state.records.keys()):
        findings.append(Finding(0, rid, "record row", "the database holds a record that no "
                                "trail entry opened (inserted outside otwatch)"))
    for rid, exp in state.records.items():
        row = live_rows.get(rid)
        if row is None:
            findings.append(Finding(exp.set_by["created_at"], rid, "record row",
                                    "the trail opened this record but its row is gone"))
            continue
        findings += _record_findings(exp, row._mapping)
        dumped = live_records[rid].model_dump(mode="json")
        findings += _section_findings(exp, dumped)
    findings += _ticket_findings(conn, state)
    findings += _evidence_findings(conn, state)
    findings += external_ticket_findings(conn, state)
    findings += external_ref_findings(conn, state)
    findings += blob_findings(conn, state)
    return sorted(findings)


def _record_findings(exp: Expected, row: Any) -> list[Finding]:
    out = []
    for name, want in exp.values.items():
        if name in exp.unknown:
            continue
        have = f"{row['controller']}/{row['tag']}" if name == "headline" else row[name]
        if name == "rules_fired":
            have = orjson.loads(have)
        if have != want:
            out.append(Finding(exp.set_by[name], exp.record_id, f"field {name}",
                               f"the database has {have!r}; the trail says {want!r}"))
    return out


def _section_findings(exp: Expected, dumped: dict[str, Any]) -> list[Finding]:
    out = []
    for name, want in exp.sections.items():
        if name in exp.unknown:
            continue
        have = dumped.get(name)
        if have == want:
            continue
        item, have, want = first_difference(name, have, want)
        out.append(Finding(exp.set_by[name], exp.record_id, f"field {item}",
                           f"the database has {_short(have)}; the trail says {_short(want)}"))
    return out


def first_difference(path: str, have: Any, want: Any) -> tuple[str, Any, Any]:
    """The deepest place where two JSON values differ: ``capa_actions[0].status``."""
    if isinstance(have, dict) and isinstance(want, dict):
        key = next((k for k in sorted({*have, *want}) if have.get(k) != want.get(k)), None)
        if key is not None:
            return first_difference(f"{path}.{key}", have.get(key), want.get(key))
    if isinstance(have, list) and isinstance(want, list) and len(have) == len(want):
        index = next((n for n, (a, b) in enumerate(zip(have, want, strict=True)) if a != b),
                     None)
        if index is not None:
            return first_difference(f"{path}[{index}]", have[index], want[index])
    return path, have, want


def _ticket_findings(conn: Connection, state: Replay) -> list[Finding]:
    out = []
    live = {row.record_id: row for row in conn.execute(select(tickets))}
    for rid, exp in state.records.items():
        row = live.get(rid)
        if exp.ticket.get("id") is None:  # a quality-only record: no security ticket
            if row is not None:
                out.append(Finding(exp.set_by["ticket.id"], rid, f"ticket {row.id}",
                                   "a security ticket the trail never opened (the record "
                                   "has none per the trail)"))
            continue
        if row is None:
            out.append(Finding(exp.set_by["ticket.id"], rid, "ticket",
                               f"the ticket {exp.ticket['id']} of this record is gone"))
            continue
        have = {"id": row.id, "severity": row.severity, "status": row.status,
                "indicators": orjson.loads(row.indicators)}
        for name, want in exp.ticket.items():
            if f"ticket.{name}" in exp.unknown or have[name] == want:
                continue
            out.append(Finding(exp.set_by[f"ticket.{name}"], rid, f"ticket {row.id} {name}",
                               f"the database has {have[name]!r}; the trail says {want!r}"))
    for rid in sorted(live.keys() - state.records.keys()):
        out.append(Finding(0, rid, f"ticket {live[rid].id}",
                           "a ticket of a record no trail entry opened"))
    return out


def _evidence_findings(conn: Connection, state: Replay) -> list[Finding]:
    out: list[Finding] = []
    seen: set[str] = set()
    for row in conn.execute(select(evidence).order_by(evidence.c.record_id)):
        seen.add(row.event_id)
        out += _one_evidence(state, row)
    for rid, exp in state.records.items():
        for event_id, want in exp.evidence.items():
            if event_id not in seen:
                out.append(Finding(want["seq"], rid, f"evidence {event_id}",
                                   "the trail lists this evidence but its row is gone"))
    return out


def _one_evidence(state: Replay, row: Any) -> list[Finding]:
    rid, event_id = row.record_id, row.event_id
    exp = state.records.get(rid)
    want = None if exp is None else exp.evidence.get(event_id)
    item = f"evidence {event_id}"
    if want is None:
        return [Finding(0, rid, item, "an evidence row no trail entry lists for this record "
                                      "(added or moved outside otwatch)")]
    seq = int(want["seq"])
    actual = hashlib.sha256(row.raw.encode()).hexdigest()
    if row.sha256 != want["sha256"]:
        return [Finding(seq, rid, item, f"its sha256 column is {row.sha256}; the trail says "
                                        f"{want['sha256']}")]
    if actual != row.sha256:
        return [Finding(seq, rid, item, f"its bytes hash to {actual}, not to the SHA-256 "
                                        f"{row.sha256} the trail recorded (content edited)")]
    event = orjson.loads(row.raw)
    own = {"change_kind": event.get("change_kind"), "verdict": event.get("verdict"),
           "controller": (event.get("controller") or {}).get("id", ""),
           "tag": (event.get("tag") or {}).get("name", "")}
    for column, said in own.items():
        if row._mapping[column] != said:
            return [Finding(seq, rid, f"{item} {column}", f"the row says "
                            f"{row._mapping[column]!r}; its own bytes say {said!r}")]
    have = {"severity": row.severity, "classification": row.classification,
            "rules_fired": orjson.loads(row.rules_fired)}
    before_0008 = want.get("opening") and have["classification"] == "" \
        and have["rules_fired"] == []  # an opening row that kept no decision of its own
    for column, value in have.items():
        if want.get(column) is None or (before_0008 and column != "severity"):
            continue
        if value != want[column]:
            return [Finding(seq, rid, f"{item} {column}", f"the row says {value!r}; the "
                                                          f"trail says {want[column]!r}")]
    return []


#: The row `links.note_delivery` keeps for a ticket the remote tool has not created yet.
PENDING = {"remote_id": "", "key": "", "url": "", "state": "pending", "assignee": ""}


def external_ticket_findings(conn: Connection, state: Replay) -> list[Finding]:
    """Each linked ticket row against the last ``external_ticket`` entry of its system."""
    out: list[Finding] = []
    live = {(row.record_id, row.system): {k: str(row._mapping[k]) for k in TICKET_FIELDS}
            for row in conn.execute(select(external_tickets))}
    for rid, exp in state.records.items():
        for system, want in exp.external_tickets.items():
            seq = exp.set_by[f"external_ticket.{system}"]
            have = live.get((rid, system))
            item = f"{system} ticket"
            if have is None:
                out.append(Finding(seq, rid, item, "the trail links this ticket but its row "
                                                   "is gone"))
                continue
            name = next((k for k in TICKET_FIELDS if have[k] != str(want[k])), None)
            if name is not None:
                out.append(Finding(seq, rid, f"{item} {name}", f"the database has "
                                   f"{have[name]!r}; the trail says {want[name]!r}"))
    for (rid, system), have in sorted(live.items()):
        opened = state.records.get(rid)
        if opened is not None and system in opened.external_tickets:
            continue
        if {k: v for k, v in have.items() if k != "system"} != PENDING:
            out.append(Finding(0, rid, f"{system} ticket", "a linked ticket no trail entry "
                                                           "links (added outside otwatch)"))
    return out


def external_ref_findings(conn: Connection, state: Replay) -> list[Finding]:
    """The record's external references, in order, against its last ``external_refs``."""
    out: list[Finding] = []
    live: dict[str, list[dict[str, Any]]] = {}
    query = select(external_refs).order_by(external_refs.c.record_id, external_refs.c.position)
    for row in conn.execute(query):
        live.setdefault(row.record_id, []).append(
            {str(k): v for k, v in row._mapping.items() if k not in ("record_id", "position")})
    for rid in sorted(live.keys() - state.records.keys()):
        out.append(Finding(0, rid, "external_refs", "references of a record no trail entry "
                                                    "opened"))
    for rid, exp in state.records.items():
        have = live.get(rid, [])
        if have != exp.external_refs:
            item, have_at, want_at = first_difference("external_refs", have, exp.external_refs)
            out.append(Finding(exp.set_by["external_refs"], rid, item, f"the database has "
                               f"{_short(have_at)}; the trail says {_short(want_at)}"))
    return out


def blob_findings(conn: Connection, state: Replay) -> list[Finding]:
    """Every attached file's bytes against the SHA-256 the trail recorded, like evidence."""
    out: list[Finding] = []
    wanted: dict[str, tuple[int, str, Any]] = {}
    for rid, exp in state.records.items():
        for attached in exp.sections.get("attachments") or []:
            wanted.setdefault(str(attached.get("sha256")),
                              (exp.set_by["attachments"], rid, attached.get("size")))
    live = {row.sha256: row for row in conn.execute(select(attachment_blobs))}
    for sha256, (seq, rid, size) in sorted(wanted.items()):
        item = f"attachment {sha256[:12]}…"
        row = live.get(sha256)
        if row is None:
            out.append(Finding(seq, rid, item, "the trail attached this file but its bytes "
                                               "are gone"))
            continue
        actual = hashlib.sha256(bytes(row.content)).hexdigest()
        if actual != sha256:
            out.append(Finding(seq, rid, item, f"its bytes hash to {actual}, not to the "
                                               f"SHA-256 the trail recorded (content edited)"))
        elif size is not None and not row.size == len(row.content) == size:
            out.append(Finding(seq, rid, f"{item} size", f"the row says {row.size} bytes for "
                               f"{len(row.content)} bytes held; the trail says {size}"))
    for sha256 in sorted(live.keys() - wanted.keys()):
        out.append(Finding(0, "-", f"attachment {sha256[:12]}…", "a stored file no trail "
                                                                  "entry attached"))
    return out


def _short(value: Any, limit: int = 120) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= limit else text[: limit - 1] + "…"
