"""Delivering follow-up: reminders and escalations (`escalation`) by e-mail through SMTP
(stdlib ``smtplib``), and the overdue counts as a Prometheus gauge. `follow_up` is one pass,
run by ``otwatch-records follow-up`` (from a timer, or ``--every`` seconds).

Messages go to the addresses configured for each user id (reminders) and role
(escalations); a person or role without an address is listed in the result, not dropped
silently.
"""

from __future__ import annotations

import smtplib
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage

from prometheus_client import Gauge

from detectors.records.escalation import Escalation, Reminder, escalations, overdue_counts
from detectors.records.escalation import reminders as due_reminders
from detectors.records.models import MasterRecord
from detectors.records.risk import EmailSettings, WorkflowSettings

CAPA_OVERDUE = Gauge("otwatch_records_capa_actions_overdue",
                     "Open CAPA actions past their current due date, by record severity.",
                     ["record_severity"])
ESCALATED = Gauge("otwatch_records_escalated_records",
                  "Open records an escalation rule fires for, by rule.", ["rule"])


@dataclass
class FollowUp:
    """What one pass found and sent."""

    reminders: list[Reminder] = field(default_factory=list)
    escalations: list[Escalation] = field(default_factory=list)
    sent: list[EmailMessage] = field(default_factory=list)
    no_address: list[str] = field(default_factory=list)


def follow_up(records: list[MasterRecord], settings: WorkflowSettings,
              now: datetime) -> FollowUp:
    """One pass: compute, update the gauges, e-mail (if configured)."""
    done = FollowUp(due_reminders(records, settings, now), escalations(records, settings, now))
    for severity, count in overdue_counts(records, now).items():
        CAPA_OVERDUE.labels(record_severity=severity.value).set(count)
    for rule in settings.escalation:
        ESCALATED.labels(rule=rule.name).set(
            sum(1 for e in done.escalations if e.rule == rule.name))
    if settings.email is not None:
        messages = _messages(done, settings.email, now)
        _send(settings.email, messages)
        done.sent = messages
    return done


def _messages(done: FollowUp, email: EmailSettings, now: datetime) -> list[EmailMessage]:
    by_address: dict[str, list[str]] = {}
    for reminder in done.reminders:
        address = email.people.get(reminder.to_user)
        if address is None:
            done.no_address.append(f"user {reminder.to_user}")
            continue
        by_address.setdefault(address, []).append("reminder: " + reminder.text(now.date()))
    for escalation in done.escalations:
        for role in escalation.roles:
            addresses = email.roles.get(role, ())
            if not addresses:
                done.no_address.append(f"role {role}")
            for address in addresses:
                by_address.setdefault(address, []).append(
                    f"escalation {escalation.rule}: {escalation.record_id}: {escalation.why}")
    return [_message(email.sender, address, lines, now) for address, lines in
            sorted(by_address.items())]


def _message(sender: str, to: str, lines: list[str], now: datetime) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"] = sender, to
    message["Subject"] = f"otwatch follow-up: {len(lines)} item{'s' if len(lines) > 1 else ''}"
    message.set_content(f"otwatch follow-up of {now.isoformat()}\n\n" + "\n".join(lines) + "\n")
    return message


def _send(email: EmailSettings, messages: list[EmailMessage]) -> None:
    if not messages:
        return
    with smtplib.SMTP(email.host, email.port, timeout=30) as smtp:
        if email.starttls:
            smtp.starttls()
        if email.username and email.password_file:
            password = email.password_file.read_text(encoding="utf-8").strip()
            smtp.login(email.username, password)
        for message in messages:
            smtp.send_message(message)
