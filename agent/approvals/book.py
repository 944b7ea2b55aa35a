"""The agent's book of approved change records: files, the topic, and single-use state.

The book is the I/O edge around the pure ``match_change``: it re-reads files when they change
(a broken file keeps its last good set), applies topic records and tombstones, and persists which
single-use approvals are used up so a restart cannot make them usable again. Given a ``refuse``
check (the agent passes `agent.approvals.targets.target_checker` for its own config), it leaves
out every record that can never match a change the agent reports and logs each once, at
ERROR, with its fix: such a record authorizes nothing, and one clerical error in change
control must not stop the monitoring of a plant.

With ``uses_on_kafka`` each use is also kept as a pending `ApprovalUse` until the agent has put
it in its spool, ahead of the event that used it (`pending_uses`, `uses_spooled`), and the uses
read back from Kafka are merged in (`apply_used_records`); until `uses_loaded` is called, no
single-use approval authorises (see `agent.approvals.uses` for why).

Example::

    >>> book = ApprovalBook([Path("config/approvals.yaml")], policy=MatchPolicy(),
    ...                     state_path=Path("/var/lib/otwatch/approvals-used.json"))
    >>> book.decide(controller="press-01", tag="temperature_sp",
    ...             change_kind=ChangeKind.SETPOINT_CHANGE, new_value=185.0,
    ...             occurred_at=datetime.now(UTC)).verdict
    <Verdict.AUTHORIZED: 'authorized'>
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from agent.approvals import metrics
from agent.approvals.errors import ApprovalsFileError
from agent.approvals.loading import describe_errors, load_approvals_file
from agent.approvals.matching import match_change, no_record
from agent.approvals.model import ApprovedChange, MatchPolicy, MatchResult
from agent.approvals.state import load_used, save_used
from agent.approvals.uses import ApprovalUse
from agent.contract import ChangeKind, TagKind, TagValue

log = logging.getLogger(__name__)


@dataclass
class _FileState:
    """What the book last saw of one file: (mtime, size, inode) and its last good records."""

    stamp: tuple[int, int, int] | None = None
    records: list[ApprovedChange] = field(default_factory=list)
    seen: bool = False
    broken: bool = False
    missing: bool = False


class ApprovalBook:
    """The approved change records the agent judges changes against, kept current."""

    def __init__(
        self,
        files: Sequence[Path],
        *,
        policy: MatchPolicy,
        state_path: Path | None = None,
        clock: Callable[[], datetime] | None = None,
        uses_on_kafka: bool = False,
        refuse: Callable[[ApprovedChange], str | None] | None = None,
    ) -> None:
        self._files = [Path(f) for f in files]
        self._refuse = refuse
        #: Refused records by id, with the problem logged for each (logged once per problem).
        self._refused: dict[str, str] = {}
        self._policy = policy
        self._state_path = state_path
        self._clock = clock or (lambda: datetime.now(UTC))
        self._file_state = {path: _FileState() for path in self._files}
        self._topic: dict[str, ApprovedChange] = {}
        self._tombstoned: set[str] = set()
        self._merged: list[ApprovedChange] = []
        #: The effective set by (controller, tag): a change is compared with its own records only.
        self._by_target: dict[tuple[str, str], list[ApprovedChange]] = {}
        #: The verdict for a target without records (immutable; rebuilt with the set).
        self._no_record: dict[tuple[str, str], MatchResult] = {}
        self._used = load_used(state_path) if state_path else {}
        self._uses_on_kafka = uses_on_kafka
        #: Until the uses recorded on Kafka are read, whether a single-use approval was used
        #: before (by this agent, before its state was lost) cannot be told.
        self._uses_known = not uses_on_kafka
        self._pending: list[ApprovalUse] = []
        metrics.USED.set(len(self._used))
        metrics.USES_KNOWN.set(1 if self._uses_known else 0)
        self.refresh()
        self._merge()

    @property
    def policy(self) -> MatchPolicy:
        return self._policy

    def approvals(self) -> list[ApprovedChange]:
        """The effective set: files in order, then the topic (same id: topic wins)."""
        return list(self._merged)

    def used(self) -> dict[str, str]:
        """Single-use approval ids already used up, with the time of the change that used them."""
        return dict(self._used)

    @property
    def uses_known(self) -> bool:
        """False while the uses recorded on Kafka have not been read since the start."""
        return self._uses_known

    def uses_loaded(self) -> None:
        """The uses recorded on Kafka are read to their end: single-use approvals may authorise."""
        if not self._uses_known:
            log.info("the uses of single-use approvals recorded on Kafka are read (%d used)",
                     len(self._used))
        self._uses_known = True
        metrics.USES_KNOWN.set(1)

    def pending_uses(self) -> list[ApprovalUse]:
        """Uses not yet handed to the spool, oldest first (empty without ``uses_on_kafka``)."""
        return list(self._pending)

    def uses_spooled(self, uses: Sequence[ApprovalUse]) -> None:
        """These uses are in the spool now (committed with the events that follow them)."""
        done = {id(u) for u in uses}
        self._pending = [u for u in self._pending if id(u) not in done]

    def apply_used_records(self, records: Iterable[tuple[bytes | None, bytes | None]]) -> int:
        """Merge uses read from Kafka (key, value) into the used set; returns how many were new.

        A use only ever withdraws an approval, so every well-formed record is taken whoever
        wrote it; a tombstone is ignored (a use is never undone) and a malformed record is
        counted and logged.
        """
        added = 0
        for _key, value in records:
            if value is None:
                continue
            try:
                use = ApprovalUse.model_validate_json(value)
            except ValidationError as exc:
                metrics.USE_RECORD_ERRORS.inc()
                log.error("refused a record on the approvals-used topic: %s",
                          describe_errors("approvals-used topic", exc))
                continue
            if use.approval_id not in self._used:
                self._used[use.approval_id] = use.used_at_text()
                added += 1
        if added:
            metrics.USED.set(len(self._used))
            self._save_used(f"{added} uses read from Kafka")
        return added

    def refresh(self) -> None:
        """Re-read each file whose (mtime, size) changed: cheap, one stat per file."""
        changed = [self._refresh_file(path, self._file_state[path]) for path in self._files]
        if any(changed):
            self._merge()
        else:
            self._update_expired()

    def decide(
        self,
        *,
        controller: str,
        tag: str,
        change_kind: ChangeKind,
        new_value: TagValue,
        occurred_at: datetime,
        refresh: bool = True,
        tag_kind: TagKind | None = None,
        old_value: TagValue = None,
    ) -> MatchResult:
        """The verdict on one change; a single-use approval it uses is recorded and persisted.

        ``refresh=False``: the caller has just called `refresh` for a batch of changes.
        ``tag_kind`` and ``old_value``: see `match_change`.
        """
        if refresh:
            self.refresh()
        target = (controller, tag)
        records = self._by_target.get(target)
        if records is None:  # most changes of a plant: no record at all, the same verdict
            found = self._no_record.get(target)
            if found is None:
                found = self._no_record[target] = no_record(controller, tag)
            return found
        result = match_change(
            controller=controller,
            tag=tag,
            change_kind=change_kind,
            new_value=new_value,
            occurred_at=occurred_at,
            approvals=records,
            used=self._used,
            policy=self._policy,
            tag_kind=tag_kind,
            old_value=old_value,
            from_topic=self._topic.keys(),
            uses_known=self._uses_known,
        )
        if result.consumed:
            self._consume(result.consumed, occurred_at, controller, tag)
        return result

    def apply_topic_record(self, key: bytes, value: bytes | None) -> bool:
        """Apply one record of ``otwatch.approvals``: a record (re)defines, a tombstone revokes.

        Returns False (and counts and logs it) when the record is refused; the earlier record for
        that id, if any, stays in force.
        """
        try:
            approval_id = key.decode("utf-8")
        except (AttributeError, UnicodeDecodeError):
            return self._refuse_topic(f"key {key!r} is not a UTF-8 approval id")
        if value is None:
            self._topic.pop(approval_id, None)
            self._tombstoned.add(approval_id)
            log.info("approval %s revoked by a tombstone on the approvals topic", approval_id)
            self._merge()
            return True
        try:
            record = ApprovedChange.model_validate_json(value)
        except ValidationError as exc:
            return self._refuse_topic(describe_errors(f"approvals topic, key {approval_id}", exc))
        if record.id != approval_id:
            return self._refuse_topic(
                f"approvals topic: key {approval_id} carries a record with id {record.id} "
                "(fix: key every record by its approval id)"
            )
        self._topic[approval_id] = record
        self._tombstoned.discard(approval_id)
        self._merge()
        return True

    def _refuse_topic(self, message: str) -> bool:
        metrics.TOPIC_RECORD_ERRORS.inc()
        log.error("refused a record on the approvals topic: %s", message)
        return False

    def _refresh_file(self, path: Path, state: _FileState) -> bool:
        """True when the file's records changed (loaded anew or gone)."""
        try:
            st = path.stat()
        except FileNotFoundError:
            return self._file_missing(path, state)
        except OSError as exc:
            self._file_broken(path, state, f"{path}: cannot stat the file: {exc.strerror}")
            return False
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp == state.stamp:
            return False
        state.stamp = stamp
        try:
            records = load_approvals_file(path)
        except ApprovalsFileError as exc:
            self._file_broken(path, state, str(exc))
            return False
        return self._file_loaded(path, state, records)

    def _file_missing(self, path: Path, state: _FileState) -> bool:
        if state.missing:
            return False
        had = bool(state.records)
        if state.seen:
            log.warning("approvals file %s was removed: its approvals are withdrawn", path)
        else:
            log.error("approvals file %s not found: no approvals from it until it appears", path)
        state.stamp, state.records, state.missing, state.seen = None, [], True, True
        self._mark_ok(path, state)
        return had

    def _file_broken(self, path: Path, state: _FileState, message: str) -> None:
        metrics.FILE_LOAD_ERRORS.labels(file=str(path)).inc()
        metrics.FILE_BROKEN.labels(file=str(path)).set(1)
        level = logging.DEBUG if state.broken else logging.ERROR
        log.log(level, "approvals file %s is invalid, keeping its last good set of %d: %s",
                path, len(state.records), message)
        state.broken, state.seen = True, True

    def _file_loaded(self, path: Path, state: _FileState, records: list[ApprovedChange]) -> bool:
        log.info("loaded %d approvals from %s", len(records), path)
        state.records, state.missing, state.seen = records, False, True
        self._mark_ok(path, state)
        return True

    def _mark_ok(self, path: Path, state: _FileState) -> None:
        state.broken = False
        metrics.FILE_BROKEN.labels(file=str(path)).set(0)

    def _merge(self) -> None:
        merged: dict[str, ApprovedChange] = {}
        for path in self._files:
            for record in self._file_state[path].records:
                merged[record.id] = record
        merged.update(self._topic)
        self._merged = self._screen(r for key, r in merged.items() if key not in self._tombstoned)
        self._by_target = {}
        for record in self._merged:
            self._by_target.setdefault((record.controller, record.tag), []).append(record)
        self._no_record = {}
        metrics.LOADED.set(len(self._merged))
        self._update_expired()

    def _screen(self, records: Iterable[ApprovedChange]) -> list[ApprovedChange]:
        """The records the ``refuse`` check lets through; each refusal logged once."""
        if self._refuse is None:
            return list(records)
        kept, refused = [], {}
        for record in records:
            problem = self._refuse(record)
            if problem is None:
                kept.append(record)
                continue
            refused[record.id] = problem
            if self._refused.get(record.id) != problem:
                log.error("approval %s is refused and authorizes nothing: %s", record.id,
                          problem)
        self._refused = refused
        metrics.REFUSED.set(len(refused))
        return kept

    def refused(self) -> dict[str, str]:
        """The records left out because they can never match, by id, with the problem."""
        return dict(self._refused)

    def _update_expired(self) -> None:
        now = self._clock()
        metrics.EXPIRED.set(sum(1 for r in self._merged if r.valid_until < now))

    def _consume(self, approval_id: str, occurred_at: datetime, controller: str, tag: str) -> None:
        self._used[approval_id] = occurred_at.astimezone(UTC).isoformat()
        metrics.USED.set(len(self._used))
        if self._uses_on_kafka:
            self._pending.append(ApprovalUse(
                approval_id=approval_id, used_at=occurred_at, controller=controller, tag=tag,
            ))
        self._save_used(f"approval {approval_id} is used up")

    def _save_used(self, what: str) -> None:
        if self._state_path is None:
            return
        try:
            save_used(self._state_path, self._used)
        except OSError as exc:
            log.error(
                "could not persist to %s that %s: %s; it stays known until the agent restarts%s",
                self._state_path, what, exc,
                " (and is recorded on Kafka)" if self._uses_on_kafka else "",
            )
