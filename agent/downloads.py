"""Program downloads and what they cost: the restart and the monitoring gap that follow. Pure.

A PLC program download changes the program tag (a checksum or version), then usually restarts
the controller or its OPC UA server: the agent sees the program change, loses the session,
and on reconnect finds a new server start time and a monitoring gap. Those are one act, so
they get one verdict: the download's. An approved download covers the restart and the gap it
causes (they are ``authorized``, with the download's approval considered); after a download
nobody approved they stay ``unapproved`` and their reasons name it. The download's own event
stands first and its reason says it is a program download, so an incident about it is titled
by the download, not by the restart that followed.

Which download a reconnect belongs to (`Downloads`): the last one seen before the session was
lost, if the session was lost within ``download_restart_s`` of it (the restart follows the
download); else the first one found by the reconnect's own scan (a download made while the
agent could not look). Without a download, a restart or a gap is a finding of its own: a
standing approval to reload the released program cannot tell a reload from a crash, and a
validated system that was unwatched for a while must be looked at.

Example::

    >>> downloads = Downloads(restart_within_s=300)
    >>> downloads.seen([checksum_event])            # the checksum changed (a live event)
    >>> downloads.session_lost(at=lost_at)          # the server went down
    >>> cause = downloads.cause(first_scan_events)
    >>> verdict, approval, reason = covered_by(cause, "the server restarted")
    >>> downloads.reconnected(first_scan_events, cause)   # once the events are durable
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from agent.approvals.values import show_value
from agent.contract import (
    ApprovalConsidered,
    ChangeKind,
    SuspectChange,
    TagKind,
    TagValue,
    Verdict,
)

#: The pseudo-tag that carries session events (server restart, monitoring gap).
SESSION_TAG = "_session"

_DOWNLOAD_KINDS = (ChangeKind.PROGRAM_CHANGE, ChangeKind.CHANGED_WHILE_UNWATCHED)


def is_download(event: SuspectChange) -> bool:
    """A change of a program tag (not the session's restart event, not a gap)."""
    return (
        event.tag.kind is TagKind.PROGRAM
        and event.change_kind in _DOWNLOAD_KINDS
        and event.tag.name != SESSION_TAG
        and event.gap is None
    )


def download_reason(controller: str, tag: str, old: TagValue, new: TagValue,
                    actor: str | None, reason: str) -> str:
    """A program change's verdict reason, saying first that it is a program download."""
    by = f" by {actor}" if actor else ""
    change = f"{tag} {show_value(old)} -> {show_value(new)}"
    return f"program download on {controller}{by}: {change}; {reason}"


class Downloads:
    """Which program download one controller's lost session and reconnect belong to."""

    def __init__(self, restart_within_s: float) -> None:
        self._within = timedelta(seconds=restart_within_s)
        #: The last download seen while connected, and the one the lost session belongs to.
        self._seen: SuspectChange | None = None
        self._cause: SuspectChange | None = None

    def seen(self, events: Sequence[SuspectChange]) -> None:
        """Note the downloads among a batch's events (the last one counts)."""
        for event in events:
            if is_download(event):
                self._seen = event

    def session_lost(self, at: datetime) -> None:
        """The session was lost at ``at``: it belongs to the download seen just before."""
        seen, self._seen = self._seen, None
        if seen is not None and at - seen.detected_at <= self._within:
            self._cause = seen

    def cause(self, events: Sequence[SuspectChange]) -> SuspectChange | None:
        """The download a reconnect's gap and restart belong to, given the events of its
        first complete scan (None: none does)."""
        if self._cause is not None or self._seen is not None:
            return self._cause or self._seen
        return next((e for e in events if is_download(e)), None)

    def reconnected(self, events: Sequence[SuspectChange], cause: SuspectChange | None) -> None:
        """The reconnect's events are durable: its cause is spent, and a download its scan
        found that is not the cause waits for the next session loss."""
        self._cause = self._seen = None
        self.seen([e for e in events if e is not cause])


def covered_by(
    cause: SuspectChange | None, what: str
) -> tuple[Verdict, ApprovalConsidered | None, str]:
    """The verdict, approval and reason of a restart or gap (``what`` says which) that
    ``cause`` explains (None: no download explains it)."""
    if cause is None:
        return Verdict.UNAPPROVED, None, what
    at = cause.detected_at.strftime("%H:%M:%S")
    change = (f"{cause.controller.id}: {cause.tag.name} {show_value(cause.old_value)} -> "
              f"{show_value(cause.new_value)} at {at} UTC")
    if cause.verdict is Verdict.AUTHORIZED and cause.approval is not None:
        return (Verdict.AUTHORIZED, cause.approval,
                f"{what}, after the approved program download on {change} "
                f"(approval {cause.approval.id})")
    return (Verdict.UNAPPROVED, None,
            f"{what}, after the program download on {change}, which was not approved "
            f"({cause.verdict.value})")
