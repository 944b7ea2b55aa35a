"""`otwatch-records`: master records (list, show, verify, KPIs, export; transition, sign,
comment, update), the people who work them (``users``) and their API tokens (``tokens``).

The database is ``--db``, else ``$OTWATCH_RECORDS_DB`` (or the file ``$OTWATCH_RECORDS_DB_FILE``
names), else ``.demo/records.db`` (the demo's,
relative to the current directory). A SQLite file that does not exist is an error (exit 2);
this tool never creates one. ``--config`` (or ``$OTWATCH_RECORDS_CONFIG``) is the records
service's config, for its identity settings (password cost, lockout, LDAP).

Reads (list, show, verify, kpis, export) are open to whoever can open the database: its file
permissions or its DSN's password are the access control there, and a sign-in would add
nothing a plain SQL client does not bypass. Every write signs in first (an API token, or a
user name and password) and acts as that user; there is no ``--actor``.

``verify`` and ``checkpoints`` are `detectors.records_checkpoints_cli`.

Exit codes: 0 ok, 1 refused or broken (wrong password, no permission, a refused transition,
``verify`` found anything tampered with), 2 usage or database problems, and a signature that cannot
be given (none needed here, a role not held, one person twice).

Example::

    otwatch-records list
    otwatch-records show NC-2026-000001 --json
    otwatch-records --user qa.lee transition NC-2026-000001 triage --reason "triaged"
    otwatch-records --user qa.lee sign NC-2026-000001 --as quality --meaning "plan approved"
    otwatch-records verify
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import start_http_server

from agent.runtime.cli import add_common_arguments, setup_logging_from
from detectors.errors import ClassifierConfigError
from detectors.identity import IdentityError, IdentitySettings, SignInRefused
from detectors.identity.cli import (
    add_people_commands,
    add_sign_in_arguments,
    run_people,
    sign_in,
    signature_proof,
)
from detectors.records import (
    AddComment,
    Command,
    Evidence,
    MasterRecord,
    PermissionDenied,
    RecordsError,
    RecordStore,
    Role,
    Sign,
    SignatureRefused,
    SignatureRequest,
    State,
    StoreUnavailable,
    Transition,
    UnknownActor,
    UpdateSection,
    WorkflowSettings,
    open_store,
)
from detectors.records.checkpoints import CheckpointKeyError
from detectors.records.export import FORMATS, render
from detectors.records.follow_up_topic import follow_up_messages, publish_follow_up
from detectors.records.notify import follow_up
from detectors.records.target import sqlite_path
from detectors.records_checkpoints_cli import (
    add_checkpoint_commands,
    add_verify,
    keygen,
    run_checkpoints,
    run_verify,
)
from detectors.records_db_env import ENV_DB, RecordsDbEnvError, records_db_from_env
from detectors.records_steps_cli import (
    STEP_WRITES,
    StepArgError,
    add_step_commands,
    manual_report,
    step_command,
)
from detectors.web.config import load_service_config

DEFAULT_DB = ".demo/records.db"
ENV_CONFIG = "OTWATCH_RECORDS_CONFIG"
WRITES = ("transition", "sign", "comment", "update", *STEP_WRITES)
SIGN_AS = [Role.QUALITY.value, Role.SECURITY.value]


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
    parser.add_argument("--config", help=f"records service config for the identity settings "
                        f"(else ${ENV_CONFIG}; else the defaults)")
    add_sign_in_arguments(parser)
    add_common_arguments(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("serve", help="the records API and web UI (`--config` for its address, "
                       "TLS, identity), on the same database as the other commands")
    p.add_argument("--host", help="address to bind (default: service.host, else 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to bind (default: service.port, else 8080)")
    p = sub.add_parser("list", help="all records as an aligned table (or --json)")
    p.add_argument("--json", action="store_true", help="a JSON array of the records")
    p = sub.add_parser("show", help="one record with evidence and trail")
    p.add_argument("id", help="record id, e.g. NC-2026-000001")
    p.add_argument("--json", action="store_true", help="the record as JSON")
    add_verify(sub)
    add_checkpoint_commands(sub)
    sub.add_parser("migrate", help="create or upgrade the schema")
    _add_transition(sub)
    _add_sign(sub)
    p = sub.add_parser("comment", help="comment on a record (kept in its audit trail)")
    p.add_argument("id")
    p.add_argument("text")
    _add_update(sub)
    add_step_commands(sub)
    add_people_commands(sub)
    p = sub.add_parser("follow-up", help="reminders, escalations and overdue counts now; "
                       "e-mailed as the config's workflow.email says")
    p.add_argument("--every", type=float, metavar="SECONDS",
                   help="repeat every SECONDS until stopped (default: one pass)")
    p.add_argument("--metrics-port", type=int, help="serve the overdue gauges for Prometheus "
                   "on this port (with --every)")
    p = sub.add_parser("kpis", help="KPIs computed from the audit trail")
    p.add_argument("--json", action="store_true", help="the KPIs as JSON")
    p = sub.add_parser("export", help="one record with its trail, for auditors")
    p.add_argument("id")
    p.add_argument("--format", choices=FORMATS, default="json")
    p.add_argument("--output", "-o", help="write to this file instead of standard output")
    p = sub.add_parser("dossier", help="one record's dossier for an auditor, as PDF (the "
                       "records service's /records/ID/dossier.pdf)")
    p.add_argument("id")
    p.add_argument("--pdf", required=True, metavar="FILE", help="write the PDF to this file")
    return parser


def _add_transition(sub: Any) -> None:
    p = sub.add_parser("transition", help="move a record along its lifecycle")
    p.add_argument("id")
    p.add_argument("state", choices=[s.value for s in State])
    p.add_argument("--reason", required=True, help="why (kept in the audit trail)")
    p.add_argument("--sign", choices=SIGN_AS, metavar="ROLE",
                   help="sign this step yourself as quality or security (plan approval, "
                        "closure); your password is asked")
    p.add_argument("--meaning", help="what your signature means (with --sign)")


def _add_sign(sub: Any) -> None:
    p = sub.add_parser("sign", help="sign the step out of the record's state (plan approval, "
                       "closure) as quality or security; your password is asked")
    p.add_argument("id")
    p.add_argument("--as", dest="role", required=True, choices=SIGN_AS)
    p.add_argument("--meaning", required=True, help="e.g. 'action plan approved'")
    p.add_argument("--reason", help="kept in the trail (default: the meaning)")


def _add_update(sub: Any) -> None:
    p = sub.add_parser("update", help="change one field of a record (value as JSON)")
    p.add_argument("id")
    p.add_argument("field", help="e.g. log.root_cause, containment, capa_actions")
    p.add_argument("value", help='JSON value, e.g. \'"operator error"\'')
    p.add_argument("--reason", required=True)


def resolve_db(arg: str | None, env: dict[str, str]) -> str:
    """``--db``, else the environment (``$OTWATCH_RECORDS_DB``, ``$OTWATCH_RECORDS_DB_FILE``),
    else the demo's database."""
    return arg or records_db_from_env(env) or DEFAULT_DB


def open_existing(target: str, schema: str | None,
                  settings: WorkflowSettings | None = None) -> RecordStore:
    """Open without creating: a missing SQLite file is the user's to fix."""
    path = sqlite_path(target)
    if path is not None and not path.is_file():
        raise CliError(
            f"records database {str(path)!r} does not exist; pass --db PATH, set {ENV_DB}, "
            "or run the demo (which creates .demo/records.db)"
        )
    return open_store(target, schema=schema, settings=settings)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging_from(args)
    env = dict(os.environ)
    try:
        target = resolve_db(args.db, env)
    except RecordsDbEnvError as exc:
        print(f"otwatch-records: {exc}", file=sys.stderr)
        return 2
    if args.command == "serve":
        return _serve(args, env)
    try:
        if args.command == "checkpoints" and args.checkpoints_command == "keygen":
            return keygen(args)  # no database needed
        with open_existing(target, args.schema, workflow_settings(args, env)) as store:
            return _run(store, args, env)
    except (CliError, StepArgError, StoreUnavailable, SignatureRefused, CheckpointKeyError,
            ClassifierConfigError) as exc:
        print(f"otwatch-records: {exc}", file=sys.stderr)
        return 2
    except (SignInRefused, PermissionDenied, UnknownActor) as exc:
        print(f"otwatch-records: refused: {exc}", file=sys.stderr)
        return 1
    except IdentityError as exc:
        print(f"otwatch-records: {exc}", file=sys.stderr)
        return 2
    except RecordsError as exc:
        print(f"otwatch-records: {exc}", file=sys.stderr)
        return 1
    except (EOFError, KeyboardInterrupt):
        print("otwatch-records: no answer; nothing changed", file=sys.stderr)
        return 2


def _serve(args: argparse.Namespace, env: dict[str, str]) -> int:
    """`python -m detectors.web` with this tool's database default and ``--config``."""
    from detectors.identity import IdentityConfigError
    from detectors.web.__main__ import serve_config, settle_config

    args.config = args.config or env.get(ENV_CONFIG)
    try:
        config = settle_config(args)
        db = config.service.db
        path = sqlite_path(db) if db else None
        if path is not None and not path.is_file():
            raise CliError(f"records database {str(path)!r} does not exist; pass --db PATH, "
                           f"set {ENV_DB}, or run the demo (which creates .demo/records.db)")
    except (CliError, IdentityConfigError) as exc:
        print(f"otwatch-records: {exc}", file=sys.stderr)
        return 2
    return serve_config(config)


def identity_settings(args: argparse.Namespace, env: dict[str, str]) -> IdentitySettings:
    path = args.config or env.get(ENV_CONFIG)
    return load_service_config(path).identity if path else IdentitySettings()


def workflow_settings(args: argparse.Namespace, env: dict[str, str]) -> WorkflowSettings:
    path = args.config or env.get(ENV_CONFIG)
    return load_service_config(path).workflow if path else WorkflowSettings()


def _run(store: RecordStore, args: argparse.Namespace, env: dict[str, str]) -> int:
    if args.command == "migrate":
        applied = store.migrate()
        print(f"applied: {applied or 'nothing'}; schema version {store.schema_version()}")
        return 0
    if store.schema_version() == 0:
        raise CliError("the database has no records schema; run `otwatch-records migrate`")
    if args.command in ("users", "tokens"):
        return run_people(store.database, identity_settings(args, env), args, env)
    if args.command in WRITES:
        return _write(store, args, env)
    if args.command == "verify":
        return run_verify(store, args, env)
    if args.command == "checkpoints":
        return run_checkpoints(store, args, env)
    handler = {
        "list": _list, "show": _show, "kpis": _kpis, "export": _export,
        "look-back": _look_back, "follow-up": _follow_up, "dossier": _dossier,
    }[args.command]
    return handler(store, args)


def _write(store: RecordStore, args: argparse.Namespace, env: dict[str, str]) -> int:
    """Sign in, build the command, run it as the signed-in user."""
    settings = identity_settings(args, env)
    if args.command == "report":
        report = manual_report(args)
        signed = sign_in(store.database, settings, args, env)
        made = store.report(report, actor=signed.user.actor(), reason=args.reason,
                            now=datetime.now(UTC))
        print(f"{made.id}: reported by {signed.user.user_id}; now {made.state.value}"
              + (f", a recurrence of {made.recurrence_of}" if made.recurrence_of else ""))
        return 0
    if args.command == "download":
        signed = sign_in(store.database, settings, args, env)
        name, _, content = store.download(args.id, args.sha256, actor=signed.user.actor(),
                                          purpose=args.purpose, now=datetime.now(UTC))
        args.output.write_bytes(content)
        print(f"{args.id}: {name} ({len(content)} bytes, sha256 {args.sha256}) written to "
              f"{args.output}; custody entry by {signed.user.user_id}")
        return 0
    role = args.role if args.command == "sign" else getattr(args, "sign", None)
    command = _command(args)  # a bad value is reported before anyone is asked a password
    signed = sign_in(store.database, settings, args, env)
    if role is not None:
        meaning = (args.meaning or "").strip()
        request = SignatureRequest(Role(role), meaning,
                                   signature_proof(store.database, settings, signed))
        command = (Sign(record_id=args.id, reason=args.reason or meaning, signature=request)
                   if args.command == "sign" else
                   Transition(record_id=args.id, reason=args.reason, to=State(args.state),
                              signature=request))
    assert command is not None
    record = store.execute(command, actor=signed.user.actor(), now=datetime.now(UTC))
    print(f"{record.id}: {_done(args)} by {signed.user.user_id}; now {record.state.value}, "
          f"version {record.version}")
    return 0


def _command(args: argparse.Namespace) -> Command | None:
    """The command without its signature (a signing command gets it once the password is
    checked); bad arguments fail here, before anyone is asked a password."""
    if args.command in ("sign", "transition") and (args.role if args.command == "sign"
                                                   else args.sign):
        if not (args.meaning or "").strip():
            raise CliError("a signature needs --meaning (what it means, e.g. 'plan approved')")
    if args.command == "sign":
        return None  # made in _write, with the signature, once the password is checked
    if args.command == "transition":
        if args.meaning and not args.sign:
            raise CliError("--meaning goes with --sign ROLE")
        return Transition(record_id=args.id, reason=args.reason, to=State(args.state))
    if args.command == "comment":
        return AddComment(record_id=args.id, reason=args.text)
    if args.command in STEP_WRITES:
        return step_command(args)
    try:
        value = orjson.loads(args.value)
    except orjson.JSONDecodeError as exc:
        raise CliError(f"value {args.value!r} is not JSON ({exc}); quote text as "
                       "'\"…\"'") from exc
    return UpdateSection(record_id=args.id, reason=args.reason, field=args.field, value=value)


def _done(args: argparse.Namespace) -> str:
    if args.command in STEP_WRITES:
        return f"{args.command} done"
    return {"transition": f"moved to {getattr(args, 'state', '')}", "sign": "signed",
            "comment": "commented", "update": f"{getattr(args, 'field', '')} updated"}[
        args.command]


def _follow_up(store: RecordStore, args: argparse.Namespace) -> int:
    if args.metrics_port is not None:
        if args.every is None:
            raise CliError("--metrics-port goes with --every (a single pass exits at once)")
        start_http_server(args.metrics_port, addr="127.0.0.1")
    while True:
        now = datetime.now(UTC)
        done = follow_up(store.list_records(), store.settings, now)
        kafka = store.settings.kafka
        published = 0 if kafka is None else asyncio.run(publish_follow_up(
            kafka, store.settings.records_topic,
            follow_up_messages(done.reminders, done.escalations, now)))
        for reminder in done.reminders:
            print(f"reminder to {reminder.to_user}: {reminder.text(now.date())}")
        for escalation in done.escalations:
            print(f"escalation {escalation.rule} to {', '.join(escalation.roles)}: "
                  f"{escalation.record_id}: {escalation.why}")
        print(f"{len(done.sent)} e-mail(s) sent, {published} message(s) on "
              f"{store.settings.records_topic}"
              + (f"; no address for {', '.join(sorted(set(done.no_address)))}"
                 if done.no_address else ""), flush=True)
        if args.every is None:
            return 0
        time.sleep(args.every)


def _look_back(store: RecordStore, args: argparse.Namespace) -> int:
    found = store.look_back(args.id)
    if found is None:
        print(f"{args.id}: no evidence on its controller to propose a look-back start from")
        return 0
    print(f"{args.id}: look back from {found.start.isoformat()}\n  basis: {found.basis}")
    return 0


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
        (r.id, r.classification, r.severity.value, r.state.value, r.security_ticket or "-",
         f"{r.controller}/{r.tag}", r.detected_at.isoformat(timespec="seconds"))
        for r in records
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    if not records:
        lines.append("(no records)")
    return "\n".join(lines)


def _what_changed(ev: Evidence) -> str:
    """Old -> new, or for a monitoring gap its span (from the last sign of life to the next)."""
    gap = ev.raw.get("gap")
    if isinstance(gap, dict) and "start" in gap and "end" in gap:
        start, end = datetime.fromisoformat(gap["start"]), datetime.fromisoformat(gap["end"])
        return f"gap {gap['start']} -> {gap['end']} ({(end - start).total_seconds():.1f} s)"
    return f"{ev.old_value!r} -> {ev.new_value!r}"


def _show(store: RecordStore, args: argparse.Namespace) -> int:
    record = store.get_record(args.id)
    if args.json:
        print(record.model_dump_json())
        return 0
    print(format_table([record]))
    print(f"\ndescription: {record.description}\nrules fired: {', '.join(record.rules_fired)}"
          f" (criteria {record.criteria_version})\nevidence: {len(record.evidence)} event(s)")
    for ev in record.evidence:
        kind = f"  {ev.classification}" if ev.classification else ""
        print(f"  {ev.event_id}  {ev.controller}/{ev.tag}  {ev.change_kind}  {ev.verdict}{kind}"
              f"  {_what_changed(ev)}  sha256={ev.sha256}")
    print("trail:")
    for entry in store.trail(record.id):
        print(f"  #{entry.seq} {entry.at} {entry.actor} {entry.field}: {entry.reason}")
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


def _dossier(store: RecordStore, args: argparse.Namespace) -> int:
    from detectors.web.dossier import write_pdf

    by = f"{getpass.getuser()} (operating-system user, on the command line)"
    size = write_pdf(store, args.id, Path(args.pdf), by=by, now=datetime.now(UTC))
    print(f"dossier of {args.id} written to {args.pdf} ({size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
