"""Matching one detected change against the approved change records: a pure function.

Every change gets exactly one verdict. Candidates are the records for the same controller, tag
and kind of change (a recipe switch approval is no candidate for a later edit of that recipe; see
`agent.approvals.values`). A candidate authorizes when it is active, not used up (single use),
trusted (signed by a trusted key, if the policy requires signatures), its window (widened by the
clock skew) contains the change, and its expected value matches. Otherwise the closest candidate
explains the verdict:

* trusted, window right, value wrong            -> ``value_mismatch``
* trusted, value right, window wrong            -> ``outside_window``
* unsigned or forged (``require_signed``; from   -> ``approval_invalid`` (a security signal)
  the topic: ``topic_require_signed``)
* revoked, used up, or neither window nor value -> ``unapproved``
* single use, while the uses recorded on Kafka  -> ``unapproved`` (the agent cannot tell whether
  are not read yet (``uses_known=False``)          it was used before its state was lost)
* no candidate at all                           -> ``unapproved`` (naming an approval of another
                                                   kind for that tag, if there is one)

Example::

    >>> r = match_change(controller="press-01", tag="temperature_sp",
    ...                  change_kind=ChangeKind.SETPOINT_CHANGE, new_value=185.0,
    ...                  tag_kind=TagKind.SETPOINT, old_value=180.0,
    ...                  occurred_at=now, approvals=records, used=set(), policy=MatchPolicy())
    >>> r.verdict
    <Verdict.AUTHORIZED: 'authorized'>
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from agent.approvals.hashing import recipe_parameters_hash
from agent.approvals.model import (
    EN_DASH,
    ApprovalKind,
    ApprovedChange,
    MatchPolicy,
    MatchResult,
)
from agent.approvals.signing import SignatureCheck, check_signature
from agent.approvals.values import (
    KIND_WORDS,
    covers,
    kind_of_change,
    numbers_equal,
    show_value,
    value_mismatch,
)
from agent.contract import ChangeKind, TagKind, TagValue, Verdict
from agent.contract.events import built_model

__all__ = [
    "match_change",
    "numbers_equal",
    "recipe_parameters_hash",
    "show_value",
    "value_mismatch",
    "window_mismatch",
]


def _clock(at: datetime, day: bool) -> str:
    fmt = "%Y-%m-%d %H:%M" if day else "%H:%M"
    return at.strftime(fmt + (":%S" if at.second or at.microsecond else ""))


def window_mismatch(record: ApprovedChange, at: datetime, skew_s: float) -> str | None:
    """None when ``at`` is inside the window widened by the skew, else the window and the time."""
    skew = timedelta(seconds=skew_s)
    if record.valid_from - skew <= at <= record.valid_until + skew:
        return None
    start, end = record.valid_from, record.valid_until
    same_day = start.date() == end.date()
    window = f"{_clock(start, True)}{EN_DASH}{_clock(end, not same_day)} UTC"
    when = _clock(at, at.date() != start.date() or not same_day)
    return f"approved for {window}, change at {when} UTC"


@dataclass(frozen=True)
class _Assessment:
    """One candidate judged against one change; ``rank`` orders how close it came."""

    record: ApprovedChange
    revoked: bool
    used: bool
    untrusted: str | None
    window: str | None
    value: str | None
    #: Single use, and whether it was used is not known yet (`match_change` ``uses_known``).
    use_unknown: bool = False

    @property
    def authorizes(self) -> bool:
        usable = not (self.revoked or self.used or self.untrusted or self.use_unknown)
        return usable and self.window is None and self.value is None

    @property
    def rank(self) -> tuple[int, int, int, bool]:
        """Higher is closer: active first, then window+value, then a security signal first."""
        hits = (self.window is None) + (self.value is None)
        return (not self.revoked, hits, self.value is None, self.untrusted is not None)


def _untrusted(record: ApprovedChange, policy: MatchPolicy, from_topic: bool) -> str | None:
    by_topic = from_topic and policy.topic_require_signed and not policy.require_signed
    if not (policy.require_signed or by_topic):
        return None
    check = check_signature(record, policy.trusted_keys)
    if check is SignatureCheck.VALID:
        return None
    if check is SignatureCheck.UNSIGNED and by_topic:
        return (
            f"approval {record.id} arrived on the approvals topic unsigned, and approvals from "
            "the topic must be signed (approvals.topic_require_signed)"
        )
    if check is SignatureCheck.UNSIGNED:
        return f"approval {record.id} is not signed, and signed approvals are required"
    return (
        f"approval {record.id} has a signature that no trusted key verifies "
        "(forged, altered after signing, or signed by an unknown key)"
    )


@dataclass(frozen=True)
class _Book:
    """What the caller knows beyond the records: uses, origins, and whether uses are known."""

    used: Collection[str]
    from_topic: Collection[str]
    uses_known: bool


def _assess(
    record: ApprovedChange, old: TagValue, value: TagValue, at: datetime,
    book: _Book, policy: MatchPolicy,
) -> _Assessment:
    used = record.single_use and record.id in book.used
    return _Assessment(
        record=record,
        revoked=record.status == "revoked",
        used=used,
        untrusted=_untrusted(record, policy, record.id in book.from_topic),
        window=window_mismatch(record, at, policy.clock_skew_s),
        value=value_mismatch(record, old, value),
        use_unknown=record.single_use and not used and not book.uses_known,
    )


def _other_kind(
    records: Sequence[ApprovedChange], kind: ApprovalKind | None, controller: str, tag: str
) -> MatchResult:
    """No record approves this kind of change; name one that approves another kind."""
    rec = next((r for r in records if r.status == "active"), records[0])
    what = KIND_WORDS[kind] if kind is not None else "this change"
    approves = KIND_WORDS[rec.approves] if rec.approves is not None else "a value change"
    reason = (
        f"no approved change record for {controller}/{tag} covers {what}: approval {rec.id} "
        f"approves {approves} ({rec.expected.describe()})"
    )
    return MatchResult(verdict=Verdict.UNAPPROVED, approval=rec.considered(reason), reason=reason)


def _explain(best: _Assessment, used: Collection[str]) -> tuple[Verdict, str]:
    """The verdict and its reason from the closest candidate that did not authorize."""
    rec = best.record
    if best.revoked:
        return Verdict.UNAPPROVED, f"approval {rec.id} was revoked"
    if best.untrusted:
        return Verdict.APPROVAL_INVALID, best.untrusted
    if best.used:
        when = f" (by the change at {used[rec.id]})" if isinstance(used, Mapping) else ""
        return Verdict.UNAPPROVED, f"approval {rec.id} is single-use and was already used{when}"
    if best.use_unknown and best.window is None and best.value is None:
        return Verdict.UNAPPROVED, (
            f"approval {rec.id} is single-use, and the uses of single-use approvals recorded on "
            "Kafka have not been read since the agent started (broker unreachable): whether it "
            "was used before cannot be told, so it does not authorise yet"
        )
    if best.window is None and best.value is not None:
        return Verdict.VALUE_MISMATCH, best.value
    if best.value is None and best.window is not None:
        return Verdict.OUTSIDE_WINDOW, best.window
    return Verdict.UNAPPROVED, f"{best.window}; {best.value}"


def no_record(controller: str, tag: str) -> MatchResult:
    """The verdict on a change of a tag that no approved change record names (most tags).

    Built as validation would build it, without validating it again: a verdict and a text
    made here. The agent gives it once per tag, at the tag's first change, and on a 10,000-tag
    controller those first changes are most events of its first minutes; validating each
    cost ~2.5 µs, a tenth of the agent's CPU for the event."""
    return built_model(MatchResult, {
        "verdict": Verdict.UNAPPROVED, "approval": None,
        "reason": f"no approved change record for {controller}/{tag}", "consumed": None,
    }, _NO_RECORD_GIVEN)


_NO_RECORD_GIVEN = frozenset({"verdict", "reason"})


def match_change(
    *,
    controller: str,
    tag: str,
    change_kind: ChangeKind,
    new_value: TagValue,
    occurred_at: datetime,
    approvals: Sequence[ApprovedChange],
    used: Collection[str],
    policy: MatchPolicy,
    tag_kind: TagKind | None = None,
    old_value: TagValue = None,
    from_topic: Collection[str] = (),
    uses_known: bool = True,
) -> MatchResult:
    """The one verdict on one change against the approved change records (see module doc).

    ``occurred_at`` is compared and reported in UTC; a naive time is taken to be UTC already.
    ``tag_kind`` and ``old_value`` tell what a change made while unwatched was, and which
    parameters a recipe edit changed. ``used``: the ids of used-up single-use approvals (a
    mapping: with the time of the change that used each, for the reason). ``from_topic``: the
    ids of records that came from the approvals topic (judged by
    ``policy.topic_require_signed``). ``uses_known=False``: the uses recorded on Kafka are not
    read yet, so no single-use approval authorises.
    """
    targeted = [rec for rec in approvals if rec.controller == controller and rec.tag == tag]
    if not targeted:  # no record for the tag (most tags): nothing to weigh
        return no_record(controller, tag)
    if occurred_at.tzinfo is None:
        occurred_at = occurred_at.replace(tzinfo=UTC)
    occurred_at = occurred_at.astimezone(UTC)
    kind = kind_of_change(change_kind, tag_kind, old_value, new_value)
    book = _Book(used=used, from_topic=from_topic, uses_known=uses_known)
    found = [
        _assess(rec, old_value, new_value, occurred_at, book, policy)
        for rec in targeted
        if covers(rec, kind, new_value)
    ]
    if not found:
        return _other_kind(targeted, kind, controller, tag)
    winners = [a for a in found if a.authorizes]
    if winners:
        # A reusable approval first, so a single-use one is not spent when it need not be.
        chosen = min(winners, key=lambda a: a.record.single_use).record
        return MatchResult(
            verdict=Verdict.AUTHORIZED,
            approval=chosen.considered(None),
            reason=f"matches approval {chosen.id} by {chosen.approved_by}",
            consumed=chosen.id if chosen.single_use else None,
        )
    best = max(found, key=lambda a: a.rank)
    verdict, reason = _explain(best, used)
    return MatchResult(verdict=verdict, approval=best.record.considered(reason), reason=reason)
