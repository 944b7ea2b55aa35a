"""Tamper evidence for the whole records store: the one check behind `otwatch-records verify`.

In this order, each a layer the next one trusts:

1. the hash chain (`trail.verify_entries`): no entry edited, moved or removed from between;
2. the signed checkpoints (`checkpoints`): no tail cut, no chain recomputed, no checkpoint
   forged or deleted; against the database's copy, and against the copy outside it (Kafka
   topic or an export of it) when one is given;
3. the replay (`replay`, `replay_compare`): every record row, section, ticket, evidence row
   and attached file (their bytes against their SHA-256), linked ticket and external
   reference is what the trail says;
4. the signatures (`signing`): each bound to its trail entry.

Everything found is reported, first bad item first; ``ok`` is False if anything was.

Example::

    >>> report = verify_store(db, key=public_key, every=Interval(1000, 300))
    >>> report.ok, report.problems[:1]
    (False, ['record NC-2026-000001, field state (trail entry 7): the database has ...'])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from detectors.records.checkpoints import (
    Checkpoint,
    Interval,
    checkpoint_problems,
    missing_from,
    read_checkpoints,
)
from detectors.records.db import Database
from detectors.records.load import load_records
from detectors.records.replay import replay
from detectors.records.replay_compare import compare
from detectors.records.signing import signature_problems
from detectors.records.trail import read_entries, verify_entries


@dataclass(frozen=True)
class Outside:
    """Checkpoints kept outside the database, and where they came from (for the messages)."""

    checkpoints: Sequence[Checkpoint]
    source: str


@dataclass
class StoreReport:
    """What `verify_store` found; ``problems`` first bad item first."""

    entries: int = 0
    records: int = 0
    evidence: int = 0
    checkpoints: int = 0
    newest_checkpoint: int = 0
    checkpoints_checked: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_store(
    db: Database, *, key: Ed25519PublicKey | None, every: Interval,
    outside: Outside | None = None,
) -> StoreReport:
    """Check the trail, checkpoints, rows and signatures in one read snapshot."""
    report = StoreReport()
    with db.read() as conn:
        entries = read_entries(conn)
        stored = read_checkpoints(conn)
        state = replay(entries)
        row_findings = compare(conn, state)
        found = load_records(conn)
    report.entries, report.records = len(entries), len(found)
    report.evidence = sum(len(r.evidence) for r in found)
    chain = verify_entries(entries)
    if not chain.ok:
        report.problems.append(f"audit trail BROKEN at entry {chain.first_broken_seq}: "
                               f"{chain.problem}")
    checkpoints = list(outside.checkpoints) if outside is not None else stored
    report.checkpoints = len(checkpoints)
    report.newest_checkpoint = max((c.seq for c in checkpoints), default=0)
    if key is not None:
        report.checkpoints_checked = True
        heads = {e.seq: e.hash for e in entries}
        if outside is not None:
            report.problems += [f"checkpoint: {p}" for p in checkpoint_problems(
                heads, outside.checkpoints, key, every, source=outside.source)]
            report.problems += [f"checkpoint: {p}" for p in
                                missing_from(stored, outside.checkpoints, outside.source)]
        report.problems += [f"checkpoint: {p}" for p in
                            checkpoint_problems(heads, stored, key, every)]
    report.problems += [f"tampered: {f}" for f in row_findings]
    signatures = signature_problems({r.id: r.signatures for r in found},
                                    [e for e in entries if e.field == "signature"])
    report.problems += [f"signature NOT BOUND: {p}" for p in signatures]
    return report


#: Problems printed in full; the rest are counted (a recomputed store can have thousands).
SHOWN = 50


def describe(report: StoreReport) -> list[str]:
    """The lines `otwatch-records verify` prints."""
    if not report.ok:
        count = len(report.problems)
        more = [f"... and {count - SHOWN} more"] if count > SHOWN else []
        return [*report.problems[:SHOWN], *more, f"store NOT intact: {count} problem"
                f"{'s' if count != 1 else ''}; the first is the first bad item"]
    if report.checkpoints_checked:
        covered = (f"head signed in {report.checkpoints} checkpoints (newest at entry "
                   f"{report.newest_checkpoint})")
    else:
        covered = "checkpoints NOT checked (no public key: pass --public-key)"
    return [f"audit trail intact: {report.entries} entries verified; {report.records} records, "
            f"their tickets, linked tickets, references, attached files and {report.evidence} "
            f"evidence rows match the trail; signatures "
            f"bound; {covered}"]
