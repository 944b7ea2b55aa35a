"""One record's page: what changed, where, when and by whom, the approval considered and why
it did not match, the tickets, every workflow section with the form of each step beside it
(for those whose roles allow the step), the signatures and the trail as a timeline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from detectors.classification import Severity
from detectors.records import (
    ActionStatus,
    DecisionStatus,
    Domain,
    MasterRecord,
    RecordStore,
    Role,
    State,
    TrailEntry,
)
from detectors.records.joint import (
    Audience,
    CapaType,
    CauseDomain,
    OwningSystem,
    Priority,
    SecurityActionKind,
)
from detectors.records.lifecycle import SIGNED
from detectors.records.models import DecisionKind, FishboneCategory
from detectors.web._form_steps import allowed_steps
from detectors.web._keys import PARTS
from detectors.web._pages import Refusal, html, viewer_of
from detectors.web.templating import render

_FORWARD_OR_BACK = {
    State.DETECTED: (State.TRIAGE,), State.TRIAGE: (State.CONTAINMENT,),
    State.CONTAINMENT: (State.INVESTIGATION,), State.INVESTIGATION: (State.ACTION_PLAN,),
    State.ACTION_PLAN: (State.IMPLEMENTATION,),
    State.IMPLEMENTATION: (State.EFFECTIVENESS_CHECK,),
    State.EFFECTIVENESS_CHECK: (State.CLOSED, State.IMPLEMENTATION),
}


@dataclass(frozen=True)
class ParameterChange:
    """One parameter of a recipe (or any structured value), before and after."""

    name: str
    before: Any
    after: Any

    @property
    def changed(self) -> bool:
        return bool(self.before != self.after)


def parameter_diff(before: Any, after: Any) -> list[ParameterChange] | None:
    """A per-parameter diff when both values are mappings (a recipe); None otherwise."""
    if not (isinstance(before, dict) and isinstance(after, dict)):
        return None
    names = sorted(set(before) | set(after))
    return [ParameterChange(n, before.get(n), after.get(n)) for n in names]


def fields_of(data: dict[str, Any] | None) -> list[tuple[str, Any]]:
    """A stored mapping (approval, context) as labelled fields, in its own order."""
    return [(key.replace("_", " "), val) for key, val in (data or {}).items()]


@dataclass(frozen=True)
class FormValues:
    """What each form shows: the user's own input again beside a refusal, else defaults."""

    refusal: Refusal | None

    def refused(self, step: str) -> str:
        return self.refusal.message if self.refusal and self.refusal.step == step else ""

    def value(self, step: str, name: str, default: Any = "") -> str:
        if self.refusal and self.refusal.step == step:
            return self.refusal.fields.get(name, "")
        return "" if default is None else str(default)

    def checked(self, step: str, name: str, default: bool = False) -> bool:
        if self.refusal and self.refusal.step == step:
            return name in self.refusal.fields
        return default


#: The choices the step forms offer, from the records' own enumerations.
CHOICES: dict[str, list[str]] = {
    "roles": [r.value for r in Role if r.value in ("quality", "security")],
    "severities": [s.value for s in Severity],
    "audiences": [a.value for a in Audience],
    "decision_kinds": [k.value for k in DecisionKind],
    "decision_statuses": [s.value for s in DecisionStatus],
    "security_actions": [a.value for a in SecurityActionKind],
    "cause_domains": [d.value for d in CauseDomain],
    "fishbone": [c.value for c in FishboneCategory],
    "domains": [d.value for d in Domain],
    "capa_types": [t.value for t in CapaType],
    "owning_systems": [s.value for s in OwningSystem],
    "priorities": [p.value for p in Priority],
    "action_statuses": [s.value for s in ActionStatus],
    "functions": ["quality", "operations", "security"],
    "reference_kinds": ["deviation", "risk_assessment", "change_control", "qms_record"],
    "evidence_items": ["logs", "configuration_snapshot", "batch_records"],
}


def _view(store: RecordStore, record_id: str) -> dict[str, Any]:
    return {"record": store.get_record(record_id), "trail": store.trail(record_id),
            "tickets": store.linked_tickets(record_id),
            "refs": store.external_references(record_id), "matrix": store.settings.risk_matrix}


def next_states(record: MasterRecord) -> list[tuple[str, str]]:
    """The states the record may move to, with the meaning a signature there carries."""
    return [(to.value, SIGNED.get((record.state, to), ""))
            for to in (*_FORWARD_OR_BACK.get(record.state, ()), State.CANCELLED)
            if record.state not in (State.CLOSED, State.CANCELLED)]


async def record_response(request: web.Request, record_id: str, *,
                          refusal: Refusal | None = None, status: int = 200) -> web.Response:
    """The record's page (``refusal``: shown beside the step that met it)."""
    found: dict[str, Any] = await request.app[PARTS].gate.run(
        lambda store: _view(store, record_id))
    viewer = viewer_of(request)
    record: MasterRecord = found["record"]
    trail: list[TrailEntry] = found["trail"]
    return html(render(
        "record.html", viewer=viewer, **found, form=FormValues(refusal), refusal=refusal,
        can=allowed_steps(viewer.roles) if viewer else frozenset(), choices=CHOICES,
        next_states=next_states(record), diff=parameter_diff, fields_of=fields_of,
        timeline=list(reversed(trail)), now=request.app[PARTS].clock()), status)


async def record(request: web.Request) -> web.Response:
    """``GET /records/{id}``."""
    return await record_response(request, request.match_info["id"])
