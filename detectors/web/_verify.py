"""The whole-store tamper check (`detectors.records.tamper.verify_store`) for the API and the
records page: the hash chain, every record row, section, ticket, evidence row, attachment,
linked ticket and reference against the trail, and the signatures.

The service holds no checkpoint public key, so the signed checkpoints (a cut tail, a
recomputed chain) are not checked here, and both the API and the page say so: that check is
`otwatch-records verify --public-key`.

The check reads every row and hashes every attached file: about 13 s for 10,000 records. So
it runs on a store connection and thread of its own (the pages' queries do not queue behind
it). ``GET /api/verify`` always runs it afresh; the worklist never waits for more than
`PAGE_WAIT_S`: it shows the newest result (saying when it was made), and once that is older
than `PAGE_TTL` starts a new check in the background; a small store's check is done within
the wait, so the page shows it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from detectors.records import RecordStore
from detectors.records.checkpoints import Interval
from detectors.records.tamper import StoreReport, verify_store
from detectors.web._gate import RecordsGate, StoreNotReady

log = logging.getLogger(__name__)

#: How old a result the records page may show before it starts a new check.
PAGE_TTL = timedelta(seconds=30)
#: How long a page waits for a check it started before showing the older result (or none).
PAGE_WAIT_S = 1.0
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
    """The newest result and the check under way (used on the event loop only). ``gate``: the
    check's own store connection and thread (None: the caller's)."""

    gate: RecordsGate | None = None
    newest: Verified | None = None
    _running: asyncio.Task[None] | None = field(default=None, repr=False)

    def keep(self, report: StoreReport, at: datetime) -> Verified:
        self.newest = Verified(report, at)
        return self.newest

    def fresh(self, now: datetime) -> Verified | None:
        found = self.newest
        return found if found is not None and now - found.at < PAGE_TTL else None

    async def run_now(self, pages: RecordsGate, clock: Callable[[], datetime]) -> Verified:
        """A fresh check, waited for (``GET /api/verify``)."""
        at = clock()
        return self.keep(await (self.gate or pages).run(verify_whole_store), at)

    async def for_page(self, pages: RecordsGate,
                       clock: Callable[[], datetime]) -> Verified | None:
        """The newest result; a stale one starts a check in the background, waited for at
        most `PAGE_WAIT_S`. None: no check has finished yet."""
        if self.fresh(clock()) is not None:
            return self.newest
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._refresh(pages, clock))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._running), PAGE_WAIT_S)
        return self.newest

    async def _refresh(self, pages: RecordsGate, clock: Callable[[], datetime]) -> None:
        try:
            await self.run_now(pages, clock)
        except StoreNotReady:
            pass  # the page says there are no records yet
        except Exception:  # the page shows the older result; the next page load tries again
            log.warning("the whole-store tamper check failed; the records page shows the last "
                        "result it has", exc_info=True)

    async def close(self) -> None:
        if self._running is not None:
            self._running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._running
        if self.gate is not None:
            await self.gate.close()
