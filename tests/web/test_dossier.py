"""A record's dossier for an auditor, as HTML and as PDF, on the joint record that
tests/web/test_workflow_walk.py walks from detection to closure through the app (four
people, both signatures at plan approval and at closure), over a real SQLite store.

The PDF's text is read back with pypdf (a dev dependency: pure Python, no poppler). The PDF
test is ``integration``: WeasyPrint runs ldconfig to find the system's pango."""

from __future__ import annotations

import io
import re
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse
from pypdf import PdfReader

from detectors.records import open_store
from detectors.records_cli import main
from detectors.web.dossier import SECTIONS
from tests.records.people import PEOPLE as NAMES
from tests.records.people import enrol
from tests.support.events import RECORDS_T0, classified, record_event
from tests.web import test_workflow_walk as walk
from tests.web.conftest import Client, Clock, serve, sign_in
from tests.web.test_workflow_walk import Person, db_path, people  # noqa: F401  (fixtures)

RID = walk.RID
PAGE, PDF = f"/records/{RID}/dossier", f"/records/{RID}/dossier.pdf"


@pytest.fixture
async def walked(client: Client, people: dict[str, Person], clock: Clock,  # noqa: F811
                 db_path: Path) -> dict[str, Person]:  # noqa: F811
    """The joint record referred to its change control, then walked to closure."""
    await people["qa.lee"].ok(f"{walk.URL}/references", {
        "kind": "change_control", "system": "MES change control", "ref_id": "CC-2026-031",
        "url": "https://mes.example/cc/2026-031", "reason": "the change control it needs"})
    await walk.test_a_joint_record_walked_to_closure_by_four_people(client, people, clock,
                                                                    db_path)
    return people


async def _as_viewer(client: Client, walked: dict[str, Person], path: str) -> tuple[
        list[dict[str, Any]], dict[str, Any], ClientResponse]:
    """The walked record's trail and record (by the API), and ``path`` as the viewer."""
    lead = walked["qa.lee"]
    trail, record = await lead.get(f"{walk.URL}/trail"), await lead.get(walk.URL)
    await sign_in(client, "view.vic")
    return trail, record, await client.get(path)


async def test_a_viewer_exports_every_section_the_signatures_and_the_whole_trail(
    client: Client, walked: dict[str, Person],
) -> None:
    trail, record, resp = await _as_viewer(client, walked, PAGE)
    assert resp.status == 200
    page = await resp.text()
    headings = re.findall(r"<h2>([^<]+)</h2>", page)
    assert headings == ["Contents", *(heading for heading, _ in SECTIONS)]
    assert "Produced 2026-" in page and "by Vic Viewer (view.vic)" in page
    record_page = await (await client.get(walk.URL.replace("/api", ""))).text()
    assert f'href="{PAGE}"' in record_page and f'href="{PAGE}.pdf"' in record_page

    manifest = _section(page, "signatures")
    signatures = record["signatures"]
    assert isinstance(signatures, list) and len(signatures) == 4  # plan approval, closure
    for signature in signatures:
        name, _ = NAMES[signature["user_id"]]
        assert name == signature["printed_name"] and name in manifest
        assert signature["meaning"] in manifest and signature["role"] in manifest
        bound = next(e for e in trail if e["seq"] == signature["trail_seq"])
        assert f"trail entry {bound['seq']}, hash <code>{bound['hash']}</code>" in manifest

    entries = _section(page, "trail")
    assert len(trail) > 40 and f"{len(trail)} entries" in entries
    shown = re.findall(r'aria-label="trail entry (\d+)">.*?previous hash <code>(\w+)</code>'
                       r'<br>hash <code>(\w+)</code>', entries, re.S)
    assert shown == [(str(e["seq"]), e["prev_hash"], e["hash"]) for e in trail]

    evidence = _section(page, "evidence")
    for item in record["evidence"]:
        assert item["sha256"] in evidence
    for item in record["attachments"]:
        assert item["sha256"] in evidence and item["filename"] in evidence
    for text, anchor in [
        ("a shared engineering password let a contractor change the setpoint", "rca"),
        ("individual accounts on the EWS", "capa"), ("CHG-4711", "capa"),
        ("shared account on the EWS", "security"), ("LOT-7", "lots"),
        ("run on recipe R-11 under watch", "containment"), ("ACME quality", "notifications"),
        ("no unapproved setpoint change for 30 days", "effectiveness"),
        ("LOT-7 may be out of spec", "impact"), ("CC-2026-031", "links"),
        ("CTQ setpoint changed without approval", "description"),
        ("ctq-setpoint", "classification"), ("unapproved", "approvals"),
    ]:
        assert text in _section(page, anchor), (text, anchor)
    verification = _section(page, "verification")
    assert "intact" in verification and f"no problem names {RID}" in verification


def _section(page: str, anchor: str) -> str:
    start = page.index(f'<section id="{anchor}"')
    return page[start:page.index("</section>", start)]


# WeasyPrint loads Debian's pango and harfbuzz, and finds them by running ldconfig.
@pytest.mark.integration
async def test_the_pdf_is_the_same_dossier_with_page_numbers(
    client: Client, walked: dict[str, Person],
) -> None:
    _, record, resp = await _as_viewer(client, walked, PDF)
    assert resp.status == 200 and resp.content_type == "application/pdf"
    assert f'filename="{RID}-dossier.pdf"' in resp.headers["Content-Disposition"]
    body = await resp.read()
    assert body.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(body))
    pages = [p.extract_text() for p in reader.pages]
    text = " ".join(" ".join(pages).split())  # table cells wrap names across lines
    assert all(RID in p for p in pages)  # the running header
    assert all(f"page {n} of {len(pages)}" in p for n, p in enumerate(pages, 1))
    for heading, _ in SECTIONS:
        assert heading in text, heading
    for signature in record["signatures"]:
        assert signature["printed_name"] in text and signature["user_id"] in text


async def test_a_changed_row_shows_in_the_dossier_as_a_problem_of_the_record(
    client: Client, walked: dict[str, Person], db_path: Path,  # noqa: F811
) -> None:
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE records SET description = 'nothing happened' WHERE id = ?", (RID,))
    await sign_in(client, "view.vic")
    verification = _section(await (await client.get(PAGE)).text(), "verification")
    assert "NOT intact" in verification and "1 problems" in verification
    assert re.search(rf'<li class="bad">tampered: record {RID}[^<]*description', verification)


async def test_without_credentials_no_dossier_and_an_unknown_record_is_404(
    client: Client,
) -> None:
    for path in (PAGE, PDF):
        resp = await client.get(path, allow_redirects=False)
        assert resp.status in (302, 303) and resp.headers["Location"].startswith("/login")
        assert b"%PDF" not in await resp.read()
    await sign_in(client, "view.vic")
    assert (await client.get("/records/NC-2026-999999/dossier.pdf")).status == 404


@pytest.mark.integration  # WeasyPrint runs ldconfig
def test_the_command_line_writes_the_pdf(db_path: Path, tmp_path: Path,  # noqa: F811
                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "dossier.pdf"
    assert main(["--db", str(db_path), "dossier", RID, "--pdf", str(out)]) == 0
    assert f"dossier of {RID} written to {out}" in capsys.readouterr().out
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(out).pages).split())
    assert f"Dossier of nonconformity {RID}" in text and "Signature manifest" in text
    assert "(operating-system user, on the command line)" in text
    assert main(["--db", str(db_path), "dossier", "NC-2026-999999", "--pdf",
                 str(tmp_path / "none.pdf")]) == 1
    assert "NC-2026-999999" in capsys.readouterr().err
    assert not (tmp_path / "none.pdf").exists()


async def test_stored_text_is_escaped_in_the_dossier(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "records.db"
    with open_store(str(path)) as store:
        store.migrate()
        enrol(store, RECORDS_T0)
        store.record_events([(record_event(1, tag="<img src=x onerror=alert(1)>"), classified(
            key="k", description="<script>alert(1)</script> changed"))],
            now=RECORDS_T0 + timedelta(minutes=5))
    client = await serve(str(path), clock=clock)
    try:
        await sign_in(client, "view.vic")
        page = await (await client.get(PAGE)).text()
    finally:
        await client.close()
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; changed" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
