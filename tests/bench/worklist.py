"""``worklist_10k_ms`` and ``worklist_10k_filtered_ms``: the worklist page with 10,000
records in SQLite.

10,000 records (one event each, 40 controllers by 250 tags, mixed severities and
classifications) are written through the store's own ingest path (`RecordStore.
record_events`, batches of 1,000). The records service app (`detectors.web.create_app`)
serves them on a loopback port; a signed-in browser session (aiohttp client) asks for
``GET /`` (first page, default filters: open records, newest first) and for a filtered,
searched and re-sorted page. Each figure is the median of N requests' time from request to
the last byte, after one warm-up request; the warm-up (which starts the whole-store tamper
check that the page shows in the background, and waits for it at most 1 s) is reported in the
notes. The measured requests run while that check may still be under way, as they would.
"""

from __future__ import annotations

import re
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from detectors.classification import Classification, ClassKind, Severity
from detectors.records import open_store
from detectors.web import create_app
from tests.bench._common import Result, child_main, run_loop
from tests.records.people import PASSWORD, enrol
from tests.support.events import RECORDS_T0 as T0
from tests.support.events import record_event
from tests.web.conftest import SETTINGS, Clock

KEYS = ["worklist_10k_ms", "worklist_10k_filtered_ms"]
RECORDS = 10_000
FILTERED = "/?severity=high&classification=joint&q=press-06&sort=severity"
_KINDS = (ClassKind.JOINT, ClassKind.QUALITY_ONLY, ClassKind.SECURITY_ONLY)
_SEVERITIES = tuple(Severity)


def _fill(path: Path, n: int) -> float:
    """``n`` records through the ingest path; returns records/s written."""
    start = time.perf_counter()
    with open_store(str(path)) as store:
        store.migrate()
        enrol(store, T0)
        for first in range(1, n + 1, 1000):
            batch = []
            for i in range(first, min(first + 1000, n + 1)):
                controller, tag = f"press-{i % 40:02d}", f"Tag{i % 250:03d}"
                batch.append((record_event(i, controller=controller, tag=tag, minutes=i / 60),
                              Classification(
                                  kind=_KINDS[i % 3], severity=_SEVERITIES[i % 4],
                                  rules_fired=("ctq-setpoint",), criteria_version="c-1",
                                  description=f"{tag} changed on {controller}",
                                  correlation_key=f"{controller}/{tag}/{i}")))
            store.record_events(batch, now=T0 + timedelta(minutes=first / 60 + 1))
    return n / (time.perf_counter() - start)


async def _timed(session: aiohttp.ClientSession, path: str) -> tuple[float, str]:
    start = time.perf_counter()
    async with session.get(path) as resp:
        text = await resp.text()
        assert resp.status == 200, text[:500]
    return (time.perf_counter() - start) * 1000, text


async def _sign_in(session: aiohttp.ClientSession) -> None:
    page = await (await session.get("/login")).text()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    await session.post("/login", data={"csrf_token": token.group(1), "username": "view.vic",
                                       "password": PASSWORD}, allow_redirects=False)


async def _measure(path: Path, requests: int) -> dict[str, Any]:
    clock = Clock(now=T0 + timedelta(days=3))
    server = TestServer(create_app(str(path), settings=SETTINGS, clock=clock),
                        host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession(str(server.make_url("")),
                                         cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            await _sign_in(session)
            first_ms, first = await _timed(session, "/")
            assert "10000 record(s) match" in first, first[:2000]
            default = [(await _timed(session, "/"))[0] for _ in range(requests)]
            _, page = await _timed(session, FILTERED)
            matched = re.search(r"(\d+) record\(s\) match", page)
            filtered = [(await _timed(session, FILTERED))[0] for _ in range(requests)]
    finally:
        await server.close()
    return {"first_ms": first_ms, "default": default, "filtered": filtered,
            "matched": matched.group(1) if matched else "?"}


async def _main(n: int, requests: int) -> list[Result]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "records.db"
        rate = _fill(path, n)
        found = await _measure(path, requests)
    common = [f"{n} records written through the ingest path at {rate:,.0f} records/s",
              f"median of {requests} requests after a warm-up; the warm-up request (which starts "
              f"the background tamper check) took {found['first_ms']:,.0f} ms"]
    return [
        Result("worklist_10k_ms", statistics.median(found["default"]), notes=[
            *common, f"GET / (25 open records, newest first); max "
            f"{max(found['default']):.1f} ms"]),
        Result("worklist_10k_filtered_ms", statistics.median(found["filtered"]), notes=[
            f"GET {FILTERED} ({found['matched']} matches); max "
            f"{max(found['filtered']):.1f} ms"]),
    ]


def run(quick: bool) -> list[Result]:
    return run_loop(_main(RECORDS, 10 if quick else 30))  # type: ignore[no-any-return]


if __name__ == "__main__":
    child_main(KEYS, run)
