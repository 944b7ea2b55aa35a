"""The records schema as SQLAlchemy Core tables: one `MetaData` for SQLite and PostgreSQL.

This is the schema at the newest migration; the migrations in ``migrations/versions`` build it
step by step, and a test (``alembic check``) fails when the two drift apart. Edit a table here
only together with a new revision.

Conventions:

- Times and dates are ISO 8601 text (UTC for times), so that audit-trail hashes recompute byte
  for byte on both dialects and text order is time order.
- JSON values are canonical JSON text (`detectors.records.trail.canonical_json`).
- Sections of a record that the worklist queries (lot holds, CAPA actions, containment
  decisions, impact contributions) are tables; the rest of a section (the 27001 log, the impact
  summary, the affected lots, containment flags, root cause, effectiveness check) is one JSON
  column per section, read and written only with its record.
- Identity (users, API tokens, browser sessions, lockouts, the security log) lives here too,
  so that a write and the user it is made by are checked in one transaction
  (`detectors.identity`). Secrets are never stored: passwords as argon2id hashes, tokens and
  session ids as SHA-256 hashes.
- ``audit_trail`` is append-only: triggers (created by the migrations, not by this module)
  refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    false,
)

metadata = MetaData()

#: BIGINT on PostgreSQL; INTEGER on SQLite, where ``INTEGER PRIMARY KEY`` is the rowid itself.
BIG = BigInteger().with_variant(Integer(), "sqlite")

counters = Table(
    "counters", metadata,
    Column("kind", Text, primary_key=True),
    Column("year", Integer, primary_key=True, autoincrement=False),
    Column("value", BIG, nullable=False),
)

processed_events = Table(
    "processed_events", metadata,
    Column("event_id", Text, primary_key=True),
    Column("record_id", Text),
    Column("processed_at", Text, nullable=False),
    sqlite_with_rowid=False,
)

records = Table(
    "records", metadata,
    Column("id", Text, primary_key=True),
    Column("classification", Text, nullable=False),
    Column("state", Text, nullable=False),
    # Revision 0009: NULL for a quality-only record (no security ticket); NULLs do not
    # collide under UNIQUE.
    Column("security_ticket", Text, unique=True),
    Column("controller", Text, nullable=False),
    Column("tag", Text, nullable=False),
    Column("site", Text, nullable=False),
    Column("line", Text, nullable=False),
    Column("severity", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("detected_at", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("last_event_at", Text, nullable=False),
    Column("rules_fired", Text, nullable=False),
    Column("criteria_version", Text, nullable=False),
    Column("correlation_key", Text, nullable=False),
    Column("cancel_reason", Text, nullable=False, server_default=""),
    # Optimistic concurrency: every command that changes the record adds one.
    Column("version", Integer, nullable=False, server_default="1"),
    # One JSON column per section that is only ever read with its record.
    Column("log", Text, nullable=False, server_default="{}"),
    Column("impact", Text, nullable=False, server_default="{}"),
    Column("affected_lots", Text, nullable=False, server_default="[]"),
    Column("containment", Text, nullable=False, server_default="{}"),
    Column("rca", Text, nullable=False, server_default="{}"),
    Column("effectiveness_check", Text),
    # The joint workflow (revision 0006): lead and co-lead, a manual reporter, the closed
    # record this one recurs, and the fired rules' impact texts.
    Column("lead", Text, nullable=False, server_default=""),
    Column("co_lead", Text, nullable=False, server_default=""),
    Column("reported_by", Text, nullable=False, server_default=""),
    Column("recurrence_of", Text, nullable=False, server_default=""),
    Column("quality_impact", Text, nullable=False, server_default=""),
    Column("security_impact", Text, nullable=False, server_default=""),
    Index("records_open_by_key", "correlation_key", "state"),
    Index("records_by_state", "state", "last_event_at"),
    # Recurrence: the closed records of a controller and tag.
    Index("records_by_controller_tag", "controller", "tag", "state"),
    # The worklist (revision 0010): newest first, and "my records" by lead or co-lead.
    Index("records_by_detected_at", "detected_at"),
    Index("records_by_lead", "lead", "state"),
    Index("records_by_co_lead", "co_lead", "state"),
)

tickets = Table(
    "tickets", metadata,
    Column("id", Text, primary_key=True),
    Column("record_id", Text, ForeignKey("records.id"), nullable=False, unique=True),
    Column("severity", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("indicators", Text, nullable=False),
)

# No unique index on event_id: processed_events (same transaction) already makes it unique,
# and a second index would cost a third of the insert time.
evidence = Table(
    "evidence", metadata,
    Column("event_id", Text, nullable=False),
    Column("record_id", Text, ForeignKey("records.id"), nullable=False),
    Column("sha256", Text, nullable=False),
    Column("change_kind", Text, nullable=False),
    Column("verdict", Text, nullable=False),
    Column("severity", Text, nullable=False),
    Column("occurred_at", Text, nullable=False),
    Column("detected_at", Text, nullable=False),
    Column("attached_at", Text, nullable=False),
    Column("raw", Text, nullable=False),
    # Revision 0008: each row names its controller and tag and what the criteria decided on
    # it (rows recorded before keep an empty classification and rule list).
    Column("controller", Text, nullable=False, server_default=""),
    Column("tag", Text, nullable=False, server_default=""),
    Column("classification", Text, nullable=False, server_default=""),
    Column("rules_fired", Text, nullable=False, server_default="[]"),
    Index("evidence_by_record", "record_id"),
)

#: Revision 0008: the record each correlation key's events attach to while it is open. The
#: primary key makes the claim unique, and it is taken inside the records transaction, so
#: classifier processes that share the partitions attach one incident to one record
#: (`detectors.records.ingest`). A record may hold several keys (its controller's, and its
#: line's when it is a burst).
open_incidents = Table(
    "open_incidents", metadata,
    Column("correlation_key", Text, primary_key=True),
    Column("record_id", Text, ForeignKey("records.id"), nullable=False),
)

signatures = Table(
    "signatures", metadata,
    Column("record_id", Text, ForeignKey("records.id"), primary_key=True),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("printed_name", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("meaning", Text, nullable=False),
    Column("signed_at", Text, nullable=False),
    # The signer's user id, the step signed (``action_plan->implementation``) and the trail
    # entry that binds the signature (its content is hashed into the chain there).
    Column("user_id", Text, nullable=False, server_default=""),
    Column("step", Text, nullable=False, server_default=""),
    Column("trail_seq", BIG),
)

audit_trail = Table(
    "audit_trail", metadata,
    Column("seq", BIG, primary_key=True, autoincrement=False),
    Column("record_id", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("at", Text, nullable=False),
    Column("field", Text, nullable=False),
    Column("old", Text),
    Column("new", Text),
    Column("reason", Text, nullable=False),
    Column("prev_hash", Text, nullable=False),
    Column("hash", Text, nullable=False),
    Index("audit_trail_by_record", "record_id"),
)

#: One row; PostgreSQL writers lock it so the trail chain has one head (kept on SQLite too).
write_lock = Table(
    "write_lock", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
)

#: How far each trail relay (containment publisher, later the ticket outbox) has got:
#: the last audit-trail seq it delivered, per relay name.
relay_cursor = Table(
    "relay_cursor", metadata,
    Column("name", Text, primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("updated_at", Text, nullable=False),
)

lot_holds = Table(
    "lot_holds", metadata,
    Column("record_id", Text, ForeignKey("records.id"), primary_key=True),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("lot_id", Text, nullable=False),
    Column("held_at", Text, nullable=False),
    Column("held_by", Text),
    Column("released_at", Text),
    Column("released_by", Text),
    # "Lots on hold": the holds not released yet, by lot.
    Index("lot_holds_by_lot", "lot_id", "released_at"),
)

capa_actions = Table(
    "capa_actions", metadata,
    Column("record_id", Text, ForeignKey("records.id"), primary_key=True),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("action_id", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("owner", Text, nullable=False),
    Column("domain", Text, nullable=False),
    Column("original_due", Text, nullable=False),
    Column("current_due", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("effectiveness_check", Text),
    # Revision 0006: what the action is, where it is tracked, its due-date moves (JSON).
    Column("capa_type", Text, nullable=False, server_default="corrective"),
    Column("owning_system", Text, nullable=False, server_default="qms"),
    Column("external_ref", Text, nullable=False, server_default=""),
    Column("priority", Text, nullable=False, server_default="medium"),
    Column("addresses", Text, nullable=False, server_default=""),
    Column("revalidation_required", Boolean, nullable=False, server_default=false()),
    Column("change_control_ref", Text, nullable=False, server_default=""),
    Column("due_changes", Text, nullable=False, server_default="[]"),
    # "My overdue actions": by owner and status, ordered by due date.
    Index("capa_actions_by_owner", "owner", "status", "current_due"),
    Index("capa_actions_by_due", "status", "current_due"),
)

containment_decisions = Table(
    "containment_decisions", metadata,
    Column("record_id", Text, ForeignKey("records.id"), primary_key=True),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("kind", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("owner", Text, nullable=False),
    Column("note", Text, nullable=False),
    Column("decided_at", Text),
    Column("decided_by", Text),
    # Revision 0006: a security action's kind and coordination note; a trade-off's options
    # (JSON list), choice, risk accepted and approver.
    Column("action", Text),
    Column("coordination_note", Text, nullable=False, server_default=""),
    Column("options", Text, nullable=False, server_default="[]"),
    Column("choice", Text, nullable=False, server_default=""),
    Column("risk_accepted", Text, nullable=False, server_default=""),
    Column("approved_by", Text, nullable=False, server_default=""),
    Index("containment_decisions_by_kind", "kind", "status"),
)

impact_contributions = Table(
    "impact_contributions", metadata,
    Column("record_id", Text, ForeignKey("records.id"), primary_key=True),
    Column("function", Text, primary_key=True),
    Column("author", Text, nullable=False),
    Column("assessment", Text, nullable=False),
    Column("risk", Text, nullable=False),
    Column("signed_off", Boolean, nullable=False),
    Column("updated_at", Text),
    Column("rating", Text),  # revision 0006: the contribution's RiskRating, JSON
    Index("impact_contributions_open", "signed_off"),
)


# --- evidence attachments (revision 0006) ------------------------------------------------------

#: Uploaded files, content-addressed: one row per distinct content, named by its SHA-256.
attachment_blobs = Table(
    "attachment_blobs", metadata,
    Column("sha256", Text, primary_key=True),
    Column("size", BIG, nullable=False),
    Column("content", LargeBinary, nullable=False),
)

#: A file attached to a record as preserved evidence (the content is in attachment_blobs);
#: every download is a ``custody`` entry in the audit trail.
record_attachments = Table(
    "record_attachments", metadata,
    Column("record_id", Text, ForeignKey("records.id"), primary_key=True),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("sha256", Text, ForeignKey("attachment_blobs.sha256"), nullable=False),
    Column("filename", Text, nullable=False),
    Column("media_type", Text, nullable=False),
    Column("item", Text, nullable=False),
    Column("attached_by", Text, nullable=False),
    Column("attached_at", Text, nullable=False),
)


# --- identity (revision 0004) ------------------------------------------------------------------

#: People who act on records. ``user_id`` is the sign-in name (lower case, never reused: a user
#: who leaves is disabled, not deleted); ``roles`` a canonical JSON list; ``source`` says where
#: the password is checked ("local": ``password_hash``, argon2id; "ldap": the directory).
users = Table(
    "users", metadata,
    Column("user_id", Text, primary_key=True),
    Column("printed_name", Text, nullable=False),
    Column("roles", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("password_hash", Text),
    Column("disabled", Boolean, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
)

#: API tokens for programs: ``otw_<token_id>_<secret>``; only the secret's SHA-256 is kept.
api_tokens = Table(
    "api_tokens", metadata,
    Column("token_id", Text, primary_key=True),
    Column("user_id", Text, ForeignKey("users.user_id"), nullable=False),
    Column("name", Text, nullable=False),
    Column("secret_sha256", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("expires_at", Text, nullable=False),
    Column("revoked_at", Text),
    Column("last_used_at", Text),
    Index("api_tokens_by_user", "user_id"),
)

#: Browser sessions, server side: the cookie holds a random id, this table its SHA-256.
sessions = Table(
    "sessions", metadata,
    Column("session_sha256", Text, primary_key=True),
    Column("user_id", Text, ForeignKey("users.user_id"), nullable=False),
    Column("csrf_token", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("last_seen_at", Text, nullable=False),
    Column("ended_at", Text),
    Column("ended_why", Text),
    Index("sessions_by_user", "user_id"),
)

#: Failed sign-ins in a row, per name typed (known or not), and the lock they led to.
lockouts = Table(
    "lockouts", metadata,
    Column("username", Text, primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("last_failure_at", Text, nullable=False),
    Column("locked_until", Text),
)

#: Every sign-in, failure, lockout, sign-out and change to users or tokens, with the user
#: (control characters stripped) and the source address.
security_log = Table(
    "security_log", metadata,
    Column("seq", BIG, primary_key=True, autoincrement=True),
    Column("at", Text, nullable=False),
    Column("event", Text, nullable=False),
    Column("username", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("detail", Text, nullable=False),
    Index("security_log_by_user", "username", "at"),
)


# --- checkpoints (revision 0005) ----------------------------------------------------------------

#: Signed heads of the audit trail (`detectors.records.checkpoints`): trail entry ``seq`` had
#: ``hash``; ``previous`` is the seq of the checkpoint before (0 for the first); the Ed25519
#: signature (base64) is made with a key kept outside the database. A copy of each goes to Kafka.
trail_checkpoints = Table(
    "trail_checkpoints", metadata,
    Column("seq", BIG, primary_key=True, autoincrement=False),
    Column("hash", Text, nullable=False),
    Column("previous", BIG, nullable=False),
    Column("signed_at", Text, nullable=False),
    Column("key_id", Text, nullable=False),
    Column("signature", Text, nullable=False),
)


# --- linked tickets and external references (revision 0007) ------------------------------------

#: One row per record and ticket system: the remote ticket's id, key, URL, last known state and
#: assignee (set through audited commands, `detectors.records.links`), and the outbox's delivery
#: status (``attempts``, ``last_error``: operational, not audited) so a failing connector shows.
external_tickets = Table(
    "external_tickets", metadata,
    Column("record_id", Text, ForeignKey("records.id"), primary_key=True),
    Column("system", Text, primary_key=True),
    *(Column(name, Text, nullable=False, server_default="")
      for name in ("remote_id", "key", "url", "state", "assignee", "last_error")),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("updated_at", Text, nullable=False),
)

#: Deviation reports, risk assessments, change controls, QMS records a record refers to.
external_refs = Table(
    "external_refs", metadata,
    Column("record_id", Text, ForeignKey("records.id"), primary_key=True),
    Column("position", Integer, primary_key=True, autoincrement=False),
    *(Column(name, Text, nullable=False)
      for name in ("kind", "system", "ref_id", "url", "added_at", "added_by")),
)

#: Inbound webhook ids accepted (Standard Webhooks ``webhook-id``): a replay is refused.
inbound_webhooks = Table(
    "inbound_webhooks", metadata,
    Column("webhook_id", Text, primary_key=True),
    Column("system", Text, nullable=False),
    Column("received_at", Text, nullable=False),
    Index("inbound_webhooks_by_time", "received_at"),
)
