"""Auditor exports of one master record with its trail: JSON, CSV (flattened), printable HTML."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from html import escape
from typing import Any

from detectors.records.models import MasterRecord, TrailEntry
from detectors.records.trail import canonical_json

FORMATS = ("json", "csv", "html")


def export_json(record: MasterRecord, trail: Sequence[TrailEntry]) -> str:
    """The record and its trail entries as one JSON document."""
    body = {
        "record": record.model_dump(mode="json"),
        "trail": [e.model_dump(mode="json") for e in trail],
    }
    return canonical_json(body) + "\n"


def export_csv(record: MasterRecord, trail: Sequence[TrailEntry]) -> str:
    """One row per leaf value (``section,key,value``), then one row per trail entry."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["section", "key", "value"])
    data = record.model_dump(mode="json", exclude={"evidence"})
    for key, value in _flatten("", data):
        section, _, rest = key.partition(".")
        writer.writerow(["record" if not rest else section, rest or section, value])
    for n, ev in enumerate(record.evidence):
        for key in ("event_id", "sha256", "controller", "tag", "change_kind", "verdict",
                    "classification", "severity", "rules_fired", "occurred_at", "detected_at"):
            writer.writerow([f"evidence[{n}]", key, _text(ev.model_dump(mode="json")[key])])
    writer.writerow([])
    writer.writerow(["seq", "at", "actor", "field", "old", "new", "reason", "prev_hash", "hash"])
    for e in trail:
        writer.writerow([e.seq, e.at, e.actor, e.field, e.old or "", e.new or "", e.reason,
                         e.prev_hash, e.hash])
    return out.getvalue()


def _flatten(prefix: str, value: Any) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict) and value:
        for key, inner in value.items():
            yield from _flatten(f"{prefix}.{key}" if prefix else str(key), inner)
    elif isinstance(value, list) and value and any(isinstance(v, dict | list) for v in value):
        for n, inner in enumerate(value):
            yield from _flatten(f"{prefix}[{n}]", inner)
    else:
        yield prefix, _text(value)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return canonical_json(value)


_CSS = """
body { font-family: sans-serif; font-size: 10pt; margin: 2em; }
h1 { font-size: 16pt; } h2 { font-size: 12pt; border-bottom: 1px solid #444; }
table { border-collapse: collapse; width: 100%; margin-bottom: 1em; }
th, td { border: 1px solid #999; padding: 2px 4px; text-align: left; vertical-align: top; }
td.hash { font-family: monospace; font-size: 7pt; word-break: break-all; }
@media print {
  body { margin: 0; } h2 { page-break-after: avoid; } tr { page-break-inside: avoid; }
}
"""


def _ticket_title(record: MasterRecord) -> str:
    if record.security_ticket is None:
        return "no security ticket (quality-only record)"
    return f"security ticket {record.security_ticket}"


def export_html(record: MasterRecord, trail: Sequence[TrailEntry]) -> str:
    """A printable, self-contained record: fields, evidence, CAPA, signatures and full trail."""
    data = record.model_dump(mode="json", exclude={"evidence", "signatures", "capa_actions"})
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{escape(record.id)}</title>"
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Nonconformity {escape(record.id)} / {escape(_ticket_title(record))}</h1>",
        "<h2>Record</h2>", _table(["field", "value"], list(_flatten("", data))),
        "<h2>Evidence</h2>",
        _table(["event", "SHA-256", "controller", "tag", "change", "verdict", "classification",
                "severity", "rules", "old", "new", "detected"],
               [(e.event_id, e.sha256, e.controller, e.tag, e.change_kind, e.verdict,
                 e.classification, e.severity.value, ", ".join(e.rules_fired),
                 _text(e.old_value), _text(e.new_value), e.detected_at.isoformat())
                for e in record.evidence], hash_cols={1}),
        "<h2>CAPA actions</h2>",
        _table(["id", "description", "owner", "domain", "original due", "current due", "status"],
               [(a.id, a.description, a.owner, a.domain.value, a.original_due.isoformat(),
                 a.current_due.isoformat(), a.status.value) for a in record.capa_actions]),
        "<h2>Electronic signatures</h2>",
        _table(["printed name", "user id", "signed as", "meaning", "step", "signed at (UTC)",
                "trail entry"],
               [(s.printed_name, s.user_id, s.role.value, s.meaning, s.step,
                 s.signed_at.isoformat() if s.signed_at else "",
                 "" if s.trail_seq is None else str(s.trail_seq)) for s in record.signatures]),
        "<h2>Audit trail</h2>",
        _table(["seq", "at", "actor", "field", "old", "new", "reason", "hash"],
               [(str(e.seq), e.at, e.actor, e.field, e.old or "", e.new or "", e.reason, e.hash)
                for e in trail], hash_cols={7}),
        "</body></html>\n",
    ]
    return "\n".join(parts)


def _table(
    header: Sequence[str], rows: Sequence[Sequence[str]], hash_cols: set[int] | None = None
) -> str:
    if not rows:
        return "<p>none</p>"
    cols = hash_cols or set()
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(
            f"<td{' class=hash' if i in cols else ''}>{escape(str(v))}</td>"
            for i, v in enumerate(row)
        ) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def render(record: MasterRecord, trail: Sequence[TrailEntry], fmt: str) -> str:
    """Dispatch on ``fmt`` (one of `FORMATS`)."""
    return {"json": export_json, "csv": export_csv, "html": export_html}[fmt](record, trail)
