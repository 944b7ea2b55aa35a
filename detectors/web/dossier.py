"""A record's dossier for an auditor: every section, the signature manifest and the whole
trail with its hashes, and the store's verification, as printable HTML and as PDF.

``GET /records/{id}/dossier`` is the page; ``GET /records/{id}/dossier.pdf`` the same
document through WeasyPrint (A4, "page X of Y", the NC id in the running header: the print
rules of ``otwatch.css``). The verification is run afresh for each dossier (a dossier states
what was true when it was produced, by whom); the problems that name this record are listed
apart from the rest of the store's. Who exported which record is logged.

WeasyPrint fetches nothing but the stylesheet, from the package: its URL fetcher refuses
every other URL, so no text in a record can make the renderer reach the network or a file.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from detectors.records import MasterRecord, RecordStore, TrailEntry
from detectors.records.tamper import StoreReport
from detectors.web._keys import IDENTITY, PARTS
from detectors.web._pages import viewer_of
from detectors.web._verify import NOT_CHECKED, verify_whole_store
from detectors.web.templating import ENVIRONMENT, render

log = logging.getLogger(__name__)
STYLESHEET = Path(__file__).parent / "static" / "otwatch.css"

#: The record's sections in the order the dossier prints them (heading, anchor).
SECTIONS: tuple[tuple[str, str], ...] = (
    ("Identification", "identification"), ("Description", "description"),
    ("Classification", "classification"), ("Evidence", "evidence"),
    ("Approvals considered", "approvals"), ("Lots and holds", "lots"),
    ("Impact assessment", "impact"), ("Containment decisions", "containment"),
    ("Security findings", "security"), ("Root cause analysis", "rca"),
    ("Corrective and preventive actions", "capa"), ("Effectiveness", "effectiveness"),
    ("Notifications", "notifications"), ("Tickets and external references", "links"),
    ("Signature manifest", "signatures"), ("Audit trail", "trail"),
    ("Verification", "verification"),
)


@dataclass(frozen=True)
class SignedItem:
    """One line of the signature manifest: the signature (21 CFR 11.50: printed name, user
    id, role, meaning, time) and the trail entry that binds it to what was signed."""

    signature: dict[str, Any]
    entry: TrailEntry | None


@dataclass(frozen=True)
class Dossier:
    """Everything the dossier prints, read in one go from the store."""

    record: MasterRecord
    trail: list[TrailEntry]
    linked_tickets: list[dict[str, Any]]
    references: list[dict[str, Any]]
    report: StoreReport
    produced_at: datetime
    produced_by: str

    @property
    def record_problems(self) -> list[str]:
        """The store's problems that name this record."""
        return [p for p in self.report.problems if self.record.id in p]

    @property
    def signed(self) -> list[SignedItem]:
        by_seq = {e.seq: e for e in self.trail}
        return [SignedItem(s.model_dump(mode="json"), by_seq.get(s.trail_seq or -1))
                for s in self.record.signatures]

    def sections(self) -> dict[str, Any]:
        """Each plain section's data as JSON-like values (the template prints them whole)."""
        r = self.record.model_dump(mode="json")
        return {
            "identification": {k: r[k] for k in (
                "id", "state", "site", "line", "controller", "tag", "detected_at",
                "created_at", "last_event_at", "lead", "co_lead", "reported_by",
                "recurrence_of", "correlation_key", "cancel_reason", "version")},
            "description": {"description": r["description"],
                            "quality_impact": r["quality_impact"],
                            "security_impact": r["security_impact"], "log": r["log"]},
            "classification": {k: r[k] for k in (
                "classification", "severity", "rules_fired", "criteria_version")},
            "approvals": [{"event_id": e["event_id"], "verdict": e["verdict"],
                           "approval": e["approval"]} for e in r["evidence"]],
            "lots": {"affected_lots": r["affected_lots"],
                     "lot_holds": r["containment"]["lot_holds"]},
            "impact": {k: v for k, v in r["impact"].items() if k != "notifications"},
            "containment": {k: v for k, v in r["containment"].items() if k != "lot_holds"},
            "security": {"security_finding": r["rca"]["security_finding"],
                         "security_impact": r["security_impact"],
                         "security_ticket": r["ticket"]},
            "rca": {k: v for k, v in r["rca"].items() if k != "security_finding"}
                   | {"root_cause": r["log"]["root_cause"]},
            "capa": r["capa_actions"],
            "effectiveness": {"record": r["effectiveness_check"], "actions": [
                {"action": a["id"], "check": a["effectiveness_check"]}
                for a in r["capa_actions"]]},
            "notifications": r["impact"]["notifications"],
        }


def read_dossier(store: RecordStore, record_id: str, *, by: str, now: datetime) -> Dossier:
    """On the store's thread: the record, its trail and links, and a whole-store check."""
    record = store.get_record(record_id)  # RecordNotFound (404) for an unknown id
    return Dossier(record, store.trail(record_id), store.linked_tickets(record_id),
                   store.external_references(record_id), verify_whole_store(store), now, by)


def spaced_json(text: str) -> str:
    """Stored JSON with a space after each comma and colon: a line can break there (one
    unbroken line of JSON makes the PDF's line breaking many times slower, and unreadable)."""
    try:
        return json.dumps(orjson.loads(text), ensure_ascii=False)
    except orjson.JSONDecodeError:
        return text


ENVIRONMENT.filters["spaced_json"] = spaced_json


def render_dossier(dossier: Dossier, *, for_print: bool, viewer: Any = None) -> str:
    """The dossier's HTML (``for_print``: without links that only work on screen)."""
    return render("dossier.html", d=dossier, sections=dossier.sections(), headings=SECTIONS,
                  checkpoints_note=NOT_CHECKED, for_print=for_print, viewer=viewer)


def pdf_of(html: str) -> bytes:
    """The dossier's HTML as PDF (CPU-bound: run it off the event loop)."""
    from weasyprint import HTML

    pdf: bytes = HTML(string=html, base_url=BASE_URL, url_fetcher=_fetcher()).write_pdf()
    return pdf


#: Where the page's relative links resolve for WeasyPrint: nowhere real.
BASE_URL = "https://otwatch.invalid/"


def _fetcher() -> Any:
    """A WeasyPrint URL fetcher that serves the stylesheet the page links to and refuses
    everything else (no network, no file)."""
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class StylesheetOnly(URLFetcher):  # type: ignore[misc]
        def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
            if url != f"{BASE_URL}static/otwatch.css":
                raise ValueError(f"the dossier fetches nothing but its stylesheet, not {url}")
            return URLFetcherResponse(url, body=STYLESHEET.read_bytes(),
                                      headers={"Content-Type": "text/css; charset=utf-8"})

    return StylesheetOnly()


def write_pdf(store: RecordStore, record_id: str, path: Path, *, by: str,
              now: datetime) -> int:
    """``otwatch-records dossier ID --pdf FILE``: the dossier's PDF written to ``path``;
    returns its size in bytes."""
    found = read_dossier(store, record_id, by=by, now=now)
    pdf = pdf_of(render_dossier(found, for_print=True))
    path.write_bytes(pdf)
    log.info("dossier of %s exported as PDF by %s", found.record.id, by)
    return len(pdf)


async def _read(request: web.Request) -> Dossier:
    identity = request[IDENTITY]
    assert identity is not None  # the route needs VIEW_RECORDS
    who = f"{identity.user.printed_name} ({identity.user.user_id})"
    record_id, now = request.match_info["id"], request.app[PARTS].clock()
    found: Dossier = await request.app[PARTS].gate.run(
        lambda s: read_dossier(s, record_id, by=who, now=now))
    return found


async def dossier_page(request: web.Request) -> web.Response:
    found = await _read(request)
    log.info("dossier of %s shown to %s", found.record.id, found.produced_by)
    text = render_dossier(found, for_print=False, viewer=viewer_of(request))
    return web.Response(text=text, content_type="text/html")


async def dossier_pdf(request: web.Request) -> web.Response:
    found = await _read(request)
    html = render_dossier(found, for_print=True)
    pdf = await asyncio.get_running_loop().run_in_executor(None, pdf_of, html)
    log.info("dossier of %s exported as PDF by %s", found.record.id, found.produced_by)
    return web.Response(body=pdf, content_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{found.record.id}-dossier.pdf"'})
