"""`otwatch-records`: list, show, verify, transition, update, KPIs and export of master records.

The database is ``--db``, else ``$OTWATCH_RECORDS_DB``, else ``.demo/records.db`` (the demo's,
relative to the current directory). A SQLite file that does not exist is an error (exit 2);
this tool never creates one. Exit codes: 0 ok, 1 refused or broken (e.g. ``verify`` found an
edited entry), 2 usage or database problems.

Example::

    otwatch-records list
    otwatch-records show NC-2026-000001 --json
    otwatch-records transition NC-2026-000001 triage --actor jdoe --role quality --reason "triaged"
    otwatch-records verify
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from detectors.records import (
    MasterRecord,
    RecordsError,
    RecordStore,
    Signature,
    State,
    StoreUnavailable,
    open_store,
)
from detectors.records.export import FORMATS, render
from detectors.records.target import sqlite_path

DEFAULT_DB = ".demo/records.db"
ENV_DB = "OTWATCH_RECORDS_DB"


class CliError(Exception):
    """A problem the user fixes (bad database path, bad argument): exit 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otwatch-records",
        description="Work with otwatch master records (nonconformity + linked security ticket).",
        epilog=f"Database: --db, else ${ENV_DB}, else {DEFAULT_DB}. "
        "A SQLite path, sqlite:///abs/path, or a postgresql:// DSN.",
    )
    parser.add_argument("--db", help="records database (SQLite path or PostgreSQL DSN)")
    parser.add_argument("--schema", help="PostgreSQL schema (default: the DSN's search_path)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("list", help="all records as an aligned table (or --json)")
    p.add_argument("--json", action="store_true", help="a JSON array of the records")
    p = sub.add_parser("show", help="one record with evidence and trail")
    p.add_argument("id", help="record id, e.g. NC-2026-000001")
    p.add_argument("--json", action="store_true", help="the record as JSON")
    sub.add_parser("verify", help="check the audit trail's hash chain (exit 1 if broken)")
    sub.add_parser("migrate", help="create or upgrade the schema")
    _add_transition(sub)
    _add_update(sub)
    p = sub.add_parser("kpis", help="KPIs computed from the audit trail")
    p.add_argument("--json", action="store_true", help="the KPIs as JSON")
    p = sub.add_parser("export", help="one record with its trail, for auditors")
    p.add_argument("id")
    p.add_argument("--format", choices=FORMATS, default="json")
    p.add_argument("--output", "-o", help="write to this file instead of standard output")
    return parser


def _add_transition(sub: Any) -> None:
    p = sub.add_parser("transition", help="move a record along its lifecycle")
    p.add_argument("id")
    p.add_argument("state", choices=[s.value for s in State])
    p.add_argument("--actor", required=True, help="your user name")
    p.add_argument("--role", action="append", default=[], choices=["quality", "security"],
                   help="a role you hold (repeat for both)")
    p.add_argument("--reason", required=True, help="why (kept in the audit trail)")
    p.add_argument("--sign", action="append", default=[], metavar="NAME|ROLE|MEANING",
                   help="an electronic signature, e.g. 'Jane Doe|quality|plan approved'")


def _add_update(sub: Any) -> None:
    p = sub.add_parser("update", help="change one field of a record (value as JSON)")
    p.add_argument("id")
    p.add_argument("field", help="e.g. log.root_cause, containment, capa_actions")
    p.add_argument("value", help='JSON value, e.g. \'"operator error"\'')
    p.add_argument("--actor", required=True)
    p.add_argument("--reason", required=True)


def resolve_db(arg: str | None, env: dict[str, str]) -> str:
    """``--db``, else the environment, else the demo's database."""
    return arg or env.get(ENV_DB) or DEFAULT_DB


def open_existing(target: str, schema: str | None) -> RecordStore:
    """Open without creating: a missing SQLite file is the user's to fix."""
    path = sqlite_path(target)
    if path is not None and not path.is_file():
        raise CliError(
            f"records database {str(path)!r} does not exist; pass --db PATH, set {ENV_DB}, "
            "or run the demo (which creates .demo/records.db)"
        )
    return open_store(target, schema=schema)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    target = resolve_db(args.db, dict(os.environ))
    try:
        with open_existing(target, args.schema) as store:
            return _run(store, args)
    except (CliError, StoreUnavailable) as exc:
        print(f"otwatch-records: {exc}", file=sys.stderr)
        return 2
    except RecordsError as exc:
        print(f"otwatch-records: {exc}", file=sys.stderr)
        return 1


def _run(store: RecordStore, args: argparse.Namespace) -> int:
    if args.command == "migrate":
        applied = store.migrate()
        print(f"applied: {applied or 'nothing'}; schema version {store.schema_version()}")
        return 0
    if store.schema_version() == 0:
        raise CliError("the database has no records schema; run `otwatch-records migrate`")
    handler = {
        "list": _list, "show": _show, "verify": _verify, "transition": _transition,
        "update": _update, "kpis": _kpis, "export": _export,
    }[args.command]
    return handler(store, args)


def _list(store: RecordStore, args: argparse.Namespace) -> int:
    records = store.list_records()
    if args.json:
        print(orjson.dumps([r.model_dump(mode="json") for r in records]).decode())
    else:
        print(format_table(records))
    return 0


def format_table(records: Sequence[MasterRecord]) -> str:
    """An aligned table: id, classification, severity, state, ticket, controller/tag, detected."""
    header = ("ID", "CLASSIFICATION", "SEVERITY", "STATE", "TICKET", "CONTROLLER/TAG", "DETECTED")
    rows = [header] + [
        (r.id, r.classification, r.severity.value, r.state.value, r.security_ticket,
         f"{r.controller}/{r.tag}", r.detected_at.isoformat(timespec="seconds"))
        for r in records
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    if not records:
        lines.append("(no records)")
    return "\n".join(lines)


def _show(store: RecordStore, args: argparse.Namespace) -> int:
    record = store.get_record(args.id)
    if args.json:
        print(record.model_dump_json())
        return 0
    print(format_table([record]))
    print(f"\ndescription: {record.description}\nrules fired: {', '.join(record.rules_fired)}"
          f" (criteria {record.criteria_version})\nevidence: {len(record.evidence)} event(s)")
    for ev in record.evidence:
        print(f"  {ev.event_id}  {ev.change_kind}  {ev.verdict}  {ev.old_value!r} -> "
              f"{ev.new_value!r}  sha256={ev.sha256}")
    print("trail:")
    for entry in store.trail(record.id):
        print(f"  #{entry.seq} {entry.at} {entry.actor} {entry.field}: {entry.reason}")
    return 0


def _verify(store: RecordStore, args: argparse.Namespace) -> int:
    result = store.verify_trail()
    if result.ok:
        print(f"audit trail intact: {result.entries} entries verified")
        return 0
    print(f"audit trail BROKEN at entry {result.first_broken_seq}: {result.problem}")
    return 1


def parse_signature(text: str) -> Signature:
    """``NAME|ROLE|MEANING`` → `Signature` (time is set when the store records it)."""
    parts = [p.strip() for p in text.split("|")]
    if len(parts) != 3:
        raise CliError(f"--sign {text!r}: expected 'PRINTED NAME|ROLE|MEANING'")
    try:
        return Signature.model_validate(
            {"printed_name": parts[0], "role": parts[1], "meaning": parts[2]})
    except ValueError as exc:
        raise CliError(f"--sign {text!r}: {exc}") from exc


def _transition(store: RecordStore, args: argparse.Namespace) -> int:
    signatures = [parse_signature(s) for s in args.sign]
    record = store.transition(
        args.id, args.state, actor=args.actor, roles=set(args.role), reason=args.reason,
        now=datetime.now(UTC), signatures=signatures,
    )
    print(f"{record.id}: now {record.state.value}")
    return 0


def _update(store: RecordStore, args: argparse.Namespace) -> int:
    try:
        value = orjson.loads(args.value)
    except orjson.JSONDecodeError as exc:
        raise CliError(f"value {args.value!r} is not JSON ({exc}); quote text as '\"…\"'") from exc
    store.update_field(args.id, args.field, value, actor=args.actor, reason=args.reason,
                       now=datetime.now(UTC))
    print(f"{args.id}: {args.field} updated")
    return 0


def _kpis(store: RecordStore, args: argparse.Namespace) -> int:
    kpis = store.kpis(datetime.now(UTC))
    if args.json:
        print(kpis.model_dump_json())
        return 0
    for name, value in kpis.model_dump().items():
        shown = "n/a" if value is None else (f"{value:.2f}" if isinstance(value, float) else value)
        print(f"{name:34} {shown}")
    return 0


def _export(store: RecordStore, args: argparse.Namespace) -> int:
    record = store.get_record(args.id)
    text = render(record, store.trail(record.id), args.format)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"{record.id} exported to {args.output}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
