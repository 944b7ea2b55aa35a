"""The workflow as typed commands: every change to a master record is one command object.

`detectors.records.workflow.execute` (through `RecordStore.execute`) runs one command in ONE
write transaction, always in this order:

0. check the actor against the users table (an enabled user; act with the roles held there);
1. load the record (under the trail-head lock, so the version read is the current one);
2. refuse a stale ``expected_version`` (`ConcurrentUpdate`);
3. check the actor's roles against the permission table (`detectors.records.permissions`);
   a transition lists a missing role among its guards instead, with everything else missing;
4. check the guards (`detectors.records.lifecycle.missing_for` for transitions,
   `signature_refusal` for a signature; a final record takes no edits; a command's own
   checks, e.g. a lot already on hold);
5. write the change, add one to the record's ``version``, and append the trail entries.

A command that changes nothing writes nothing (no trail entry, no new version).

Trail fields stay those of the section a command touches, with the whole section as old and
new value (``containment.lot_holds``, ``capa_actions``, ``ticket.status``, …): the KPIs and the
containment publisher read those entries, and the chain stays one format.

Example::

    >>> qa = Actor("jdoe", {"quality"}, "Jane Doe")   # from detectors.identity
    >>> store.execute(PlaceHold(record_id=rid, lot_id="LOT-7", reason="made under the change",
    ...                         expected_version=record.version), actor=qa, now=now)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, ClassVar

from detectors.records.joint import (
    EvidenceChecklist,
    NotificationDecision,
    RiskRating,
    SecurityFinding,
    WhyAnswer,
)
from detectors.records.models import (
    CapaAction,
    ContainmentDecision,
    DecisionStatus,
    FishboneCategory,
    Role,
    State,
    SystemInScope,
)
from detectors.records.permissions import Permission

#: Sections of a record that `UpdateSection` changes (also as ``section.key``).
EDITABLE = (
    "description", "log", "impact", "affected_lots", "containment", "rca", "capa_actions",
    "effectiveness_check",
)
TICKET_STATUSES = ("open", "in_progress", "resolved", "closed", "cancelled")


@dataclass(frozen=True)
class Actor:
    """Who runs a command: an authenticated user's id, roles and printed name.

    The actor comes from the identity layer (a browser session, an API token, the password
    the CLI asked for), never from a request body. The workflow checks it again against the
    users table in the command's own transaction, and acts with the roles held there.
    """

    user_id: str
    roles: frozenset[str] = field(default_factory=frozenset)
    printed_name: str = ""

    def __init__(self, user_id: str, roles: Iterable[str] = (), printed_name: str = "") -> None:
        object.__setattr__(self, "user_id", user_id)
        object.__setattr__(self, "roles", frozenset(roles))
        object.__setattr__(self, "printed_name", printed_name or user_id)


@dataclass(frozen=True)
class Reauthentication:
    """That the signer entered their password again (or bound to the directory) just now,
    as 21 CFR 11.200(a)(1) asks of every signing; made by `detectors.identity` after the
    check, and taken by the workflow only within `REAUTH_WINDOW` of the command."""

    user_id: str
    printed_name: str
    method: str
    at: datetime


#: How long a re-entered password stays good for a signature (one signing, not a session).
REAUTH_WINDOW = timedelta(minutes=5)


@dataclass(frozen=True)
class SignatureRequest:
    """A signature the actor gives: the role signed as, its meaning, and the re-entry."""

    role: Role
    meaning: str
    reauthenticated: Reauthentication


# --- the commands ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Command:
    """What every command carries: the record, why, and optionally the version it was built
    on (a stale one is refused with `ConcurrentUpdate`)."""

    record_id: str
    reason: str
    expected_version: int | None = None
    permission: ClassVar[Permission]


@dataclass(frozen=True, kw_only=True)
class Transition(Command):
    """Move the record to ``to``. A signed step (plan approval, closure) needs the signatures
    given for it (`Sign`); ``signature`` adds the actor's own in the same transaction."""

    to: State
    signature: SignatureRequest | None = None
    permission: ClassVar[Permission] = Permission.TRANSITION


@dataclass(frozen=True, kw_only=True)
class Sign(Command):
    """Sign the step that leaves the record's current state (plan approval or closure) as
    one role; refused where no signature is needed (`SignatureRefused`)."""

    signature: SignatureRequest
    permission: ClassVar[Permission] = Permission.SIGN


@dataclass(frozen=True, kw_only=True)
class AddComment(Command):
    """A comment on the record, kept in its audit trail (the reason is the comment)."""

    permission: ClassVar[Permission] = Permission.COMMENT


@dataclass(frozen=True, kw_only=True)
class UpdateSection(Command):
    """Replace one section, or one key of it (``log.root_cause``), with a validated value."""

    field: str
    value: Any
    permission: ClassVar[Permission] = Permission.EDIT_SECTIONS


@dataclass(frozen=True, kw_only=True)
class PlaceHold(Command):
    """Hold a lot (the MES stops it); ``held_at`` defaults to the command's time."""

    lot_id: str
    held_at: datetime | None = None
    permission: ClassVar[Permission] = Permission.HOLD_LOTS


@dataclass(frozen=True, kw_only=True)
class ReleaseHold(Command):
    """Release every open hold of a lot."""

    lot_id: str
    permission: ClassVar[Permission] = Permission.HOLD_LOTS


@dataclass(frozen=True, kw_only=True)
class RecordDecision(Command):
    """Add a containment decision (release freeze, security action, trade-off, …)."""

    decision: ContainmentDecision
    permission: ClassVar[Permission] = Permission.DECIDE_CONTAINMENT


@dataclass(frozen=True, kw_only=True)
class UpdateDecision(Command):
    """Change the status (and the note, if given) of decision number ``index`` (from 0)."""

    index: int
    status: DecisionStatus
    note: str | None = None
    permission: ClassVar[Permission] = Permission.DECIDE_CONTAINMENT


@dataclass(frozen=True, kw_only=True)
class ContributeImpact(Command):
    """Add or replace one function's impact contribution; the actor is its author."""

    function: str
    assessment: str = ""
    risk: str = ""
    signed_off: bool = False
    #: Severity and likelihood on the configured risk matrix; the level is looked up.
    rating: RiskRating | None = None
    permission: ClassVar[Permission] = Permission.CONTRIBUTE_IMPACT


@dataclass(frozen=True, kw_only=True)
class AddCapaAction(Command):
    """Add a CAPA action to the plan (its id must be new on the record)."""

    action: CapaAction
    permission: ClassVar[Permission] = Permission.MANAGE_CAPA


@dataclass(frozen=True, kw_only=True)
class UpdateCapaAction(Command):
    """Change fields of one CAPA action, e.g. ``{"status": "done"}`` or a new due date."""

    action_id: str
    changes: Mapping[str, Any]
    permission: ClassVar[Permission] = Permission.MANAGE_CAPA


@dataclass(frozen=True, kw_only=True)
class SetTicketStatus(Command):
    """Set the linked security ticket's status (one of `TICKET_STATUSES`)."""

    status: str
    permission: ClassVar[Permission] = Permission.SET_TICKET_STATUS


# --- the joint procedure's steps (issue 17); handlers in `detectors.records.steps` ---------------


@dataclass(frozen=True, kw_only=True)
class AssignLeads(Command):
    """Name the lead (a user holding quality) and the co-lead (a user holding security).
    Trail: ``lead`` and ``co_lead``, each with the user id as new value."""

    lead: str
    co_lead: str
    permission: ClassVar[Permission] = Permission.EDIT_SECTIONS


@dataclass(frozen=True, kw_only=True)
class AssessImpact(Command):
    """The impact summary: product/customer impact, data integrity with its look-back start,
    the systems in scope, the risk containment itself creates. ``None`` leaves a key as it
    is. Trail: one ``impact.<key>`` entry per key changed, with its whole new value."""

    product_impact: str | None = None
    data_integrity: str | None = None
    look_back_from: datetime | None = None
    look_back_basis: str | None = None
    systems: list[SystemInScope] | None = None
    containment_risk: str | None = None
    permission: ClassVar[Permission] = Permission.EDIT_SECTIONS


@dataclass(frozen=True, kw_only=True)
class DecideNotification(Command):
    """Decide whether one audience (regulator, certification body, customer) is notified;
    a new decision for the same audience replaces the old one. The actor and the time are
    recorded as who decided and when. Trail: ``impact.notifications``, the whole list."""

    decision: NotificationDecision
    permission: ClassVar[Permission] = Permission.EDIT_SECTIONS


@dataclass(frozen=True, kw_only=True)
class RecordRootCause(Command):
    """The integrated root cause analysis: the root cause statement, the 5 Whys (each
    answer with its domain), the fishbone, the security-domain finding and the people who
    validated the root cause (enabled users). ``None`` leaves a part as it is.
    Trail: ``log.root_cause`` (if changed) and ``rca`` (the whole analysis)."""

    root_cause: str | None = None
    five_whys: list[WhyAnswer] | None = None
    fishbone: dict[FishboneCategory, list[str]] | None = None
    security_finding: SecurityFinding | None = None
    validated_by: list[str] | None = None
    permission: ClassVar[Permission] = Permission.EDIT_SECTIONS


@dataclass(frozen=True, kw_only=True)
class SetContainment(Command):
    """Containment beside holds and decisions: the evidence-preservation checklist and,
    at closure, why what is still in effect stays. Trail: ``containment.<key>`` per key."""

    evidence_checklist: EvidenceChecklist | None = None
    kept_justification: str | None = None
    permission: ClassVar[Permission] = Permission.DECIDE_CONTAINMENT


@dataclass(frozen=True, kw_only=True)
class AttachFile(Command):
    """Attach a file as preserved evidence (``item``: logs, configuration_snapshot,
    batch_records or other); kept content-addressed by SHA-256 (`attachments`).
    Trail: ``attachments``, the whole list of the record's attachments."""

    filename: str
    content: bytes
    media_type: str = "application/octet-stream"
    item: str = "other"
    permission: ClassVar[Permission] = Permission.DECIDE_CONTAINMENT


@dataclass(frozen=True, kw_only=True)
class MoveCapaDue(Command):
    """Move a CAPA action's current due date; the reason is the command's, ``approved_by``
    an enabled user holding approver. The original due date never moves.
    Trail: ``capa_actions``, the whole list."""

    action_id: str
    to_due: date
    approved_by: str
    permission: ClassVar[Permission] = Permission.MANAGE_CAPA


@dataclass(frozen=True, kw_only=True)
class CheckEffectiveness(Command):
    """An effectiveness check, by the actor: of one done CAPA action (``action_id``) or of
    the record (``action_id`` None) against its success criteria. ``performed_at`` (default:
    now) may not be before the record was opened or in the future; ``follow_up_on``
    schedules a later check. Trail: ``capa_actions`` or ``effectiveness_check``."""

    effective: bool
    against_criteria: str
    action_id: str | None = None
    performed_at: datetime | None = None
    notes: str = ""
    follow_up_on: date | None = None
    permission: ClassVar[Permission] = Permission.MANAGE_CAPA
