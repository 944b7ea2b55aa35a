"""Follow-up as pure functions over records and a given ``now``: reminders for CAPA actions
and follow-up checks coming due, escalations by the configured rules, overdue counts.

- a **reminder** goes to the owner of an open CAPA action due within
  ``remind_days_before`` days (or overdue), and to the lead of a record whose effectiveness
  follow-up date (``follow_up_on``) or 27001 log follow-up date is that close;
- an **escalation** goes to the roles a rule names, for an open record at or above the rule's
  severity that is older than ``older_than_h`` hours, or that has a CAPA action overdue by more
  than ``overdue_by_d`` days;
- **overdue**: open CAPA actions past their current due date, counted by record severity
  (the ``otwatch_records_capa_actions_overdue`` gauge).

Nothing here sends or reads a clock: `notify` delivers what these return.

    >>> reminders(records, settings, now=datetime(2026, 3, 18, tzinfo=UTC))
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from detectors.classification import SEVERITY_ORDER, Severity
from detectors.records.models import OPEN_STATES, ActionStatus, MasterRecord
from detectors.records.risk import WorkflowSettings


@dataclass(frozen=True)
class Reminder:
    """Something coming due: to whom (a user id), on which record, what and when."""

    to_user: str
    record_id: str
    what: str
    due: date

    def text(self, today: date) -> str:
        days = (self.due - today).days
        when = (f"overdue by {-days} day{'s' if days != -1 else ''}" if days < 0
                else "due today" if days == 0 else f"due in {days} day{'s' if days != 1 else ''}")
        return f"{self.record_id}: {self.what} is {when} ({self.due.isoformat()})"


@dataclass(frozen=True)
class Escalation:
    """A rule that fired for a record, and the roles it notifies."""

    rule: str
    record_id: str
    roles: tuple[str, ...]
    why: str


def _open(records: Iterable[MasterRecord]) -> list[MasterRecord]:
    return [r for r in records if r.state in OPEN_STATES]


def _open_actions(record: MasterRecord) -> list[tuple[str, str, date]]:
    return [(a.owner, f"CAPA action {a.id} ({a.description})", a.current_due)
            for a in record.capa_actions
            if a.status in (ActionStatus.OPEN, ActionStatus.IN_PROGRESS)]


def _follow_ups(record: MasterRecord) -> list[tuple[str, str, date]]:
    to = record.lead or record.log.owner
    dates = [("27001 follow-up", d) for d in record.log.follow_up_dates]
    if record.effectiveness_check is not None and record.effectiveness_check.follow_up_on:
        dates.append(("effectiveness follow-up check", record.effectiveness_check.follow_up_on))
    return [(to, what, when) for what, when in dates if to]


def reminders(records: Iterable[MasterRecord], settings: WorkflowSettings,
              now: datetime) -> list[Reminder]:
    """Everything due within ``settings.remind_days_before`` days of ``now``, or overdue."""
    today = now.date()
    horizon = today + timedelta(days=settings.remind_days_before)
    found = [
        Reminder(to, record.id, what, due)
        for record in _open(records)
        for to, what, due in [*_open_actions(record), *_follow_ups(record)]
        if due <= horizon
    ]
    return sorted(found, key=lambda r: (r.due, r.record_id, r.what))


def overdue_days(record: MasterRecord, today: date) -> int:
    """How many days the most overdue open action of ``record`` is late (0: none)."""
    late = [(today - due).days for _, _, due in _open_actions(record) if due < today]
    return max(late, default=0)


def escalations(records: Iterable[MasterRecord], settings: WorkflowSettings,
                now: datetime) -> list[Escalation]:
    """Every (rule, record) pair where the rule's condition holds."""
    found = []
    for record in _open(records):
        for rule in settings.escalation:
            if SEVERITY_ORDER[record.severity] < SEVERITY_ORDER[rule.min_severity]:
                continue
            why = []
            age_h = (now - record.created_at).total_seconds() / 3600
            if rule.older_than_h is not None and age_h > rule.older_than_h:
                why.append(f"open for {age_h:.0f} h (rule: over {rule.older_than_h:g} h)")
            late = overdue_days(record, now.date())
            if rule.overdue_by_d is not None and late > rule.overdue_by_d:
                why.append(f"a CAPA action overdue by {late} d (rule: over {rule.overdue_by_d} d)")
            if why:
                found.append(Escalation(rule.name, record.id, rule.notify, "; ".join(why)))
    return found


def overdue_counts(records: Iterable[MasterRecord], now: datetime) -> dict[Severity, int]:
    """Open CAPA actions past their current due date, by their record's severity (every
    severity present, zeros included, so the gauge drops back to 0)."""
    counts: Counter[Severity] = Counter()
    today = now.date()
    for record in _open(records):
        counts[record.severity] += sum(1 for _, _, due in _open_actions(record) if due < today)
    return {severity: counts[severity] for severity in Severity}
