"""The joint procedure's steps as HTML forms: which form is the twin of which JSON endpoint
(`FORM_STEPS`: the same permission, body model and command builder), and how a form's
fields become that endpoint's JSON body (`unflatten`). The handlers are in `_forms`."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from detectors.records import Command
from detectors.records.permissions import Permission as P
from detectors.records.permissions import allows
from detectors.web import _api
from detectors.web import _steps_api as steps

Build = Callable[[web.Request, Any], Awaitable[Command]]


def unflatten(fields: Mapping[str, str]) -> dict[str, Any]:
    """Form fields as the JSON body the API takes.

    ``a.b`` nests (``decision.kind``), a number nests into a list (``five_whys.0.answer``),
    a name ending in ``[]`` is a list of its non-empty lines (a textarea), an empty field is
    left out (the model's default applies, or it names the field as missing), and a
    ``datetime-local`` value (no offset) is UTC, as the forms' labels say.

    >>> unflatten({"rating.severity": "major", "options[]": "a\\n\\nb", "note": ""})
    {'rating': {'severity': 'major'}, 'options': ['a', 'b']}
    """
    tree: dict[str, Any] = {}
    for name, raw in fields.items():
        text = raw.strip() if name.endswith("[]") else raw
        if not text.strip():
            continue
        found: Any = [line.strip() for line in text.splitlines() if line.strip()] \
            if name.endswith("[]") else _utc(text)
        *path, last = name.removesuffix("[]").split(".")
        node = tree
        for part in path:
            node = node.setdefault(part, {})
        node[last] = found
    made: dict[str, Any] = _lists(tree)
    return made


_LOCAL_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?")


def _utc(text: str) -> str:
    return f"{text}Z" if _LOCAL_TIME.fullmatch(text) else text


def _lists(node: Any) -> Any:
    """``{"0": x, "1": y}`` → ``[x, y]`` (by number), all the way down."""
    if not isinstance(node, dict):
        return node
    done = {key: _lists(value) for key, value in node.items()}
    if done and all(key.isdigit() for key in done):
        return [done[key] for key in sorted(done, key=int)]
    return done


@dataclass(frozen=True)
class FormStep:
    """One step's form: its name (URL and anchor), the permission of its JSON twin, the
    body model and command builder it shares with that twin."""

    name: str
    permission: P
    json_path: str
    model: type[BaseModel]
    build: Build
    #: Reshapes the unflattened fields before validation (a sign form left blank, say).
    prepare: Callable[[dict[str, Any]], dict[str, Any]] = lambda data: data


def _on_record(build: Callable[[str, Any], Command]) -> Build:
    async def made(request: web.Request, body: Any) -> Command:
        return build(request.match_info["id"], body)

    return made


def _due_once(data: dict[str, Any]) -> dict[str, Any]:
    """A new action's current due date is its original one."""
    action = data.get("action")
    if isinstance(action, dict) and "original_due" in action:
        action.setdefault("current_due", action["original_due"])
    return data


def _signature_if_given(data: dict[str, Any]) -> dict[str, Any]:
    """A transition without a password typed in is not signed."""
    signature = data.get("signature")
    if isinstance(signature, dict) and "password" not in signature:
        data.pop("signature")
    return data


_API = "/api/records/{id}"
FORM_STEPS: tuple[FormStep, ...] = (
    FormStep("leads", P.EDIT_SECTIONS, f"{_API}/leads", steps.LeadsBody,
             _on_record(steps.leads_command)),
    FormStep("section", P.EDIT_SECTIONS, f"{_API}/sections", steps.SectionBody,
             _on_record(steps.section_command)),
    FormStep("contribution", P.CONTRIBUTE_IMPACT, f"{_API}/impact/contributions",
             steps.ContributionBody, _on_record(steps.contribution_command)),
    FormStep("impact", P.EDIT_SECTIONS, f"{_API}/impact", steps.ImpactBody,
             _on_record(steps.impact_command)),
    FormStep("notification", P.EDIT_SECTIONS, f"{_API}/notifications",
             steps.NotificationBody, _on_record(steps.notification_command)),
    FormStep("hold", P.HOLD_LOTS, f"{_API}/holds", steps.HoldBody,
             _on_record(steps.hold_command)),
    FormStep("release", P.HOLD_LOTS, f"{_API}/holds/release", steps.HoldBody,
             _on_record(steps.release_command)),
    FormStep("decision", P.DECIDE_CONTAINMENT, f"{_API}/decisions", steps.DecisionBody,
             _on_record(steps.decision_command)),
    FormStep("decision-status", P.DECIDE_CONTAINMENT, f"{_API}/decisions/status",
             steps.DecisionStatusBody, _on_record(steps.decision_status_command)),
    FormStep("containment", P.DECIDE_CONTAINMENT, f"{_API}/containment",
             steps.ContainmentBody, _on_record(steps.containment_command)),
    FormStep("root-cause", P.EDIT_SECTIONS, f"{_API}/root-cause", steps.RootCauseBody,
             _on_record(steps.root_cause_command)),
    FormStep("capa", P.MANAGE_CAPA, f"{_API}/capa", steps.CapaBody,
             _on_record(steps.capa_command), _due_once),
    FormStep("capa-update", P.MANAGE_CAPA, f"{_API}/capa/update", steps.CapaUpdateBody,
             _on_record(steps.capa_update_command)),
    FormStep("capa-due", P.MANAGE_CAPA, f"{_API}/capa/due", steps.DueBody,
             _on_record(steps.capa_due_command)),
    FormStep("effectiveness", P.MANAGE_CAPA, f"{_API}/effectiveness",
             steps.EffectivenessBody, _on_record(steps.effectiveness_command)),
    FormStep("attach", P.DECIDE_CONTAINMENT, f"{_API}/attachments", steps.AttachBody,
             _on_record(steps.attach_command)),
    FormStep("reference", P.EDIT_SECTIONS, f"{_API}/references", _api.ReferenceBody,
             _api.reference_command),
    FormStep("comment", P.COMMENT, f"{_API}/comments", _api.CommentBody, _api.comment_command),
    FormStep("transition", P.TRANSITION, f"{_API}/transition", _api.TransitionBody,
             _api.transition_command, _signature_if_given),
    FormStep("sign", P.SIGN, f"{_API}/signatures", _api.SignBody, _api.sign_command),
)


def allowed_steps(roles: frozenset[str] | set[str] | tuple[str, ...]) -> frozenset[str]:
    """The steps whose forms a user with ``roles`` is shown."""
    return frozenset(s.name for s in FORM_STEPS if allows(frozenset(roles), s.permission))
