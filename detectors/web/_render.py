"""Server-rendered HTML for quality and security: the records list and one record's page.

No JavaScript, no inline style and no external assets (plants run closed networks, and the
Content-Security-Policy allows only the app's own stylesheet). Every value from the database
goes through `e` (``html.escape``) before it reaches the page.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from detectors.records import Evidence, MasterRecord, TrailEntry
from detectors.web._verify import NOT_CHECKED, Verified

_BADGES = {"joint": "joint", "quality_only": "quality only", "security_only": "security only"}


#: What a quality-only record shows for its security ticket (issue 19: it has none).
NO_TICKET = "none: quality-only record (a ticket opens if security evidence joins it)"


def e(value: object) -> str:
    """Escaped text for any value (None shows as an empty string)."""
    return html.escape("" if value is None else str(value), quote=True)


def when(moment: datetime | str | None) -> str:
    """A timestamp in UTC, to the second, escaped."""
    if moment is None:
        return ""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return e(moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"))


def value(data: Any) -> str:
    """A tag value or JSON blob as escaped code; long values fold into a <details>."""
    text = data if isinstance(data, str) else orjson.dumps(data).decode()
    if len(text) <= 160:
        return f"<code>{e(text)}</code>"
    return (f"<details><summary><code>{e(text[:80])}…</code></summary>"
            f"<code>{e(text)}</code></details>")


@dataclass(frozen=True)
class Viewer:
    """Who the page is for: shown in its corner, with a sign-out form carrying the CSRF
    token of their session."""

    user_id: str
    printed_name: str
    roles: tuple[str, ...]
    csrf_token: str


def page(title: str, body: str, *, refresh: str | None = None,
         viewer: Viewer | None = None) -> str:
    """A whole page; ``refresh`` is ``"SECONDS;url=PATH"`` for a meta refresh."""
    meta = f'<meta http-equiv="refresh" content="{e(refresh)}">' if refresh else ""
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">{meta}'
        f'<title>{e(title)}</title><link rel="stylesheet" href="/static/otwatch.css">'
        f"</head><body>{_who(viewer)}{body}</body></html>"
    )


def _who(viewer: Viewer | None) -> str:
    if viewer is None:
        return ""
    return (f'<div class="who">{e(viewer.printed_name)} ({e(viewer.user_id)}; '
            f'{e(", ".join(viewer.roles))}) <form method="post" action="/logout">'
            f'<input type="hidden" name="csrf_token" value="{e(viewer.csrf_token)}">'
            '<button type="submit">Sign out</button></form></div>')


def badge(classification: str) -> str:
    label = _BADGES.get(classification, classification)
    return f'<span class="badge {e(classification)}">{e(label)}</span>'


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A table; the cells must already be escaped HTML."""
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def list_page(records: Sequence[MasterRecord], note: str, verify: Verified | None,
              viewer: Viewer | None = None) -> str:
    rows = [
        (
            f'<a href="/records/{e(r.id)}">{e(r.id)}</a>', badge(r.classification),
            f'<span class="sev-{e(r.severity)}">{e(r.severity)}</span>', e(r.state),
            e(r.security_ticket or "none"), f"{e(r.controller)} / {e(r.tag)}",
            when(r.detected_at),
        )
        for r in records
    ]
    parts = ["<h1>otwatch master records</h1>"]
    if note:
        parts.append(f'<p class="note">{e(note)}</p>')
    parts.append(f"<p>{len(records)} record(s), newest first. {_verify_line(verify)}</p>")
    headers = ("Record", "Classification", "Severity", "State", "Security ticket",
               "Controller / tag", "Detected at")
    parts.append(table(headers, rows))
    # ?auto=1: a refresh is not the user's activity (the idle timeout still runs).
    return page("otwatch records", "".join(parts), refresh="5;url=/?auto=1", viewer=viewer)


def _verify_line(verify: Verified | None) -> str:
    """The whole-store check (`_verify`): chain, rows, files and signatures, not checkpoints."""
    if verify is None:
        return ""
    r, at = verify.report, when(verify.at)
    if r.ok:
        return (f"Audit trail intact ({r.entries} entries); the {r.records} records, their "
                f"tickets, {r.evidence} evidence rows and attached files match it (checked "
                f"{at}; {e(NOT_CHECKED)}).")
    count = len(r.problems)
    return (f'<span class="bad">Store NOT intact (checked {at}): {count} problem'
            f'{"s" if count != 1 else ""}; the first: {e(r.problems[0])}</span> '
            "Run otwatch-records verify for all of them.")


def record_page(record: MasterRecord, trail: Sequence[TrailEntry],
                viewer: Viewer | None = None) -> str:
    parts = [
        '<p class="noprint"><a href="/">← all records</a></p>',
        f"<h1>{e(record.id)} {badge(record.classification)}</h1>",
        f"<p>{e(record.description)}</p>",
        _summary(record),
        "<h2>Security ticket</h2>", _ticket(record),
        f"<h2>Evidence ({len(record.evidence)})</h2>", _evidence(record.evidence),
        "<h2>CAPA actions</h2>", _capa(record),
        f"<h2>Audit trail ({len(trail)} entries)</h2>", _trail(trail),
    ]
    return page(f"{record.id} otwatch", "".join(parts), viewer=viewer)


def _dl(pairs: Sequence[tuple[str, str]]) -> str:
    return "<dl>" + "".join(f"<dt>{e(k)}</dt><dd>{v}</dd>" for k, v in pairs) + "</dl>"


def _summary(r: MasterRecord) -> str:
    return _dl([
        ("Nonconformity", e(r.id)), ("Security ticket", e(r.security_ticket or NO_TICKET)),
        ("State", e(r.state)), ("Severity", e(r.severity)),
        ("Classification", badge(r.classification)),
        ("Rules fired", e(", ".join(r.rules_fired))), ("Criteria version", e(r.criteria_version)),
        ("Site / line", f"{e(r.site)} / {e(r.line)}"),
        ("Controller / tag", f"{e(r.controller)} / {e(r.tag)}"),
        ("Detected at", when(r.detected_at)), ("Last event at", when(r.last_event_at)),
        ("Owner", e(r.log.owner)), ("Root cause", e(r.log.root_cause)),
        ("Success criteria", e(r.log.success_criteria)),
        ("Cancel reason", e(r.cancel_reason)),
        ("Signatures", e("; ".join(
            f"{s.printed_name} ({s.user_id or 'no user id'}) as {s.role.value}: {s.meaning}"
            f"{f' [{s.step}]' if s.step else ''}, {when(s.signed_at)}" for s in r.signatures))),
    ])


def _ticket(r: MasterRecord) -> str:
    t = r.ticket
    if r.security_ticket is None:
        return f"<p>{e(NO_TICKET)}</p>"
    if t is None:
        return f"<p>{e(r.security_ticket)} (ticket details not stored)</p>"
    return _dl([
        ("Ticket", e(t.id)), ("Linked record", e(t.record_id)), ("Status", e(t.status)),
        ("Severity", e(t.severity)), ("Indicators", e(", ".join(t.indicators))),
    ])


def _evidence(items: Sequence[Evidence]) -> str:
    rows = [
        (
            e(ev.event_id), f"<code>{e(ev.sha256)}</code>", e(ev.controller), e(ev.tag),
            e(ev.change_kind), e(ev.verdict), e(ev.classification), e(ev.severity),
            e(", ".join(ev.rules_fired)), value(ev.old_value), value(ev.new_value),
            value(ev.context) if ev.context else "",
            value(ev.approval) if ev.approval else "", when(ev.occurred_at), when(ev.detected_at),
        )
        for ev in items
    ]
    headers = ("Event", "SHA-256", "Controller", "Tag", "Change", "Verdict", "Classification",
               "Severity", "Rules", "Before", "After",
               "Context", "Approval considered", "Occurred", "Detected")
    return table(headers, rows)


def _capa(r: MasterRecord) -> str:
    if not r.capa_actions:
        return "<p>None yet.</p>"
    rows = [
        (e(a.id), e(a.description), e(a.owner), e(a.domain), e(a.original_due),
         e(a.current_due), e(a.status))
        for a in r.capa_actions
    ]
    return table(("Id", "Action", "Owner", "Domain", "Original due", "Due", "Status"), rows)


def _trail(trail: Sequence[TrailEntry]) -> str:
    rows = [
        (
            e(t.seq), when(t.at), e(t.actor), e(t.field), value(t.old) if t.old else "",
            value(t.new) if t.new else "", e(t.reason), f"<code>{e(t.hash[:16])}…</code>",
        )
        for t in trail
    ]
    return table(("Seq", "At", "Actor", "Field", "Old", "New", "Reason", "Hash"), rows)


def error_page(status: int, message: str, viewer: Viewer | None = None) -> str:
    body = (f'<p class="noprint"><a href="/">← all records</a></p>'
            f"<h1>{status}</h1><p>{e(message)}</p>")
    return page(f"{status} otwatch", body, viewer=viewer)


def sign_in_page(*, csrf_token: str, next_path: str, message: str = "", note: str = "",
                 username: str = "") -> str:
    """The sign-in form (a plain form post; the password never goes into a URL)."""
    parts = ["<h1>Sign in to otwatch</h1>"]
    if note:
        parts.append(f'<p class="note">{e(note)}</p>')
    if message:
        parts.append(f'<p class="bad" role="alert">{e(message)}</p>')
    parts.append(
        '<form class="signin" method="post" action="/login">'
        f'<input type="hidden" name="csrf_token" value="{e(csrf_token)}">'
        f'<input type="hidden" name="next" value="{e(next_path)}">'
        '<label for="username">User name</label>'
        f'<input id="username" name="username" autocomplete="username" required '
        f'value="{e(username)}">'
        '<label for="password">Password</label>'
        '<input id="password" name="password" type="password" '
        'autocomplete="current-password" required>'
        '<button type="submit">Sign in</button></form>')
    return page("Sign in otwatch", "".join(parts))


def users_page(users: Sequence[Any], events: Sequence[Any], viewer: Viewer) -> str:
    """The admin's page: who may sign in with which roles, and the latest security events."""
    user_rows = [(e(u.user_id), e(u.printed_name), e(", ".join(sorted(u.roles))), e(u.source),
                  "disabled" if u.disabled else "active") for u in users]
    event_rows = [(e(v.at), e(v.event), e(v.username), e(v.source), e(v.actor), e(v.detail))
                  for v in events]
    body = ("<h1>Users</h1><p>Managed with <code>otwatch-records users</code> and "
            "<code>otwatch-records tokens</code>.</p>"
            + table(("User id", "Printed name", "Roles", "Source", "State"), user_rows)
            + "<h2>Security log (newest first)</h2>"
            + table(("At", "Event", "User", "From", "By", "Detail"), event_rows))
    return page("Users otwatch", body, viewer=viewer)
