"""``GET /api/verify`` and the records page's check line run the whole-store tamper check
(rows, files, signatures against the trail), not only the hash chain, and say honestly that
the signed checkpoints are not checked by the service."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.web.conftest import Client, Clock, bearer, sign_in

NC1 = "NC-2026-000001"


def _edit_description(db_path: Path) -> None:
    """A row edited in SQL: the hash chain stays intact, the replay does not."""
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE records SET description = 'nothing happened' WHERE id = ?", (NC1,))


async def test_the_api_checks_every_row_and_says_checkpoints_are_not_checked(
    client: Client, tokens: dict[str, str], db_path: Path,
) -> None:
    auth = bearer(tokens["view.vic"])
    intact = await (await client.get("/api/verify", headers=auth)).json()
    assert intact["ok"] is True and intact["problems"] == [] and intact["problem_count"] == 0
    assert (intact["records"], intact["evidence"]) == (2, 2) and intact["entries"] >= 2
    assert intact["checkpoints_checked"] is False
    assert "checkpoints not checked" in intact["checkpoints_note"]
    _edit_description(db_path)
    found = await (await client.get("/api/verify", headers=auth)).json()
    assert found["ok"] is False and found["problem_count"] == 1
    (problem,) = found["problems"]
    assert problem.startswith(f"tampered: record {NC1}, field description")
    assert "nothing happened" in problem


async def test_the_records_page_shows_the_whole_store_check_at_most_30_s_old(
    client: Client, tokens: dict[str, str], db_path: Path, clock: Clock,
) -> None:
    await sign_in(client, "view.vic")
    listing = await (await client.get("/")).text()
    assert "Audit trail intact" in listing and "the 2 records" in listing
    assert "checkpoints not checked" in listing and "NOT intact" not in listing
    _edit_description(db_path)
    clock.advance(seconds=10)  # a refresh within the page's 30 s shows the kept result
    assert "Audit trail intact" in await (await client.get("/?auto=1")).text()
    clock.advance(seconds=25)
    listing = await (await client.get("/?auto=1")).text()
    assert "Store NOT intact" in listing and "Audit trail intact" not in listing
    assert f"record {NC1}, field description" in listing
    # the API runs the check afresh whenever asked, and the page shows its newest result
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE records SET description = 'changed again' WHERE id = ?", (NC1,))
    await client.get("/api/verify", headers=bearer(tokens["view.vic"]))
    assert "changed again" in await (await client.get("/?auto=1")).text()


async def test_the_worklist_does_not_wait_for_a_long_tamper_check(
    client: Client, db_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A check slower than the page's wait (a large store) runs on in the background: the
    page says so at once, and shows the result when it is there."""
    from detectors.web import _verify

    release = threading.Event()
    slow = _verify.verify_whole_store

    def held(store: Any) -> Any:
        release.wait(30)
        return slow(store)

    monkeypatch.setattr(_verify, "verify_whole_store", held)
    monkeypatch.setattr(_verify, "PAGE_WAIT_S", 0.05)
    await sign_in(client, "view.vic")
    listing = await (await client.get("/")).text()
    assert "Tamper check of the whole store under way" in listing
    assert NC1 in listing  # the worklist itself is there
    release.set()
    for _ in range(100):
        listing = await (await client.get("/?auto=1")).text()
        if "Audit trail intact" in listing:
            break
        await asyncio.sleep(0.05)
    assert "Audit trail intact" in listing and "the 2 records" in listing
