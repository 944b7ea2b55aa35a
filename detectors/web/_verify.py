"""The whole-store tamper check (`detectors.records.tamper.verify_store`) for the API and the
records page: the hash chain, every record row, section, ticket, evidence row, attachment,
linked ticket and reference against the trail, and the signatures.

The service holds no checkpoint public key, so the signed checkpoints (a cut tail, a
recomputed chain) are not checked here, and both the API and the page say so: that check is
`otwatch-records verify --public-key`.

The check reads every row and hashes every attached file. ``GET /api/verify`` always runs it;
the records page, which refreshes itself every few seconds, shows a result at most `PAGE_TTL`
old (and says when it was made) rather than rereading the whole store on each refresh.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from detectors.records import RecordStore
from detectors.records.checkpoints import Interval
from detectors.records.tamper import StoreReport, verify_store

#: How old a result the records page may show.
PAGE_TTL = timedelta(seconds=30)
#: Problems listed in the API's answer (the count is always complete).
SHOWN = 50
NOT_CHECKED = ("checkpoints not checked: the records service holds no checkpoint public key "
               "(run otwatch-records verify --public-key to check them)")


@dataclass(frozen=True)
class Verified:
    """One whole-store check and when it was made."""

    report: StoreReport
    at: datetime

    def as_json(self) -> dict[str, Any]:
        r = self.report
        return {"ok": r.ok, "entries": r.entries, "records": r.records, "evidence": r.evidence,
                "checked_at": self.at.isoformat(), "checkpoints_checked": r.checkpoints_checked,
                "checkpoints": r.checkpoints, "checkpoints_note": NOT_CHECKED,
                "problem_count": len(r.problems), "problems": r.problems[:SHOWN]}


def verify_whole_store(store: RecordStore) -> StoreReport:
    """Run on the store's thread (`RecordsGate.run`)."""
    return verify_store(store.database, key=None, every=Interval())


@dataclass
class StoreCheck:
    """The newest result, for the records page (used on the event loop only)."""

    newest: Verified | None = None

    def keep(self, report: StoreReport, at: datetime) -> Verified:
        self.newest = Verified(report, at)
        return self.newest

    def fresh(self, now: datetime) -> Verified | None:
        found = self.newest
        return found if found is not None and now - found.at < PAGE_TTL else None
