"""Every endpoint of the records service, with who may call it: ONE table.

`create_app` registers exactly these routes, and the security policy checks each request
against its row (`detectors.web._security`); a test calls every row with every role and with
no credentials, and fails when a route has no row in its own table.

| access           | means                                                              |
| ---------------- | ------------------------------------------------------------------ |
| ``PUBLIC``       | anyone (sign-in page, health, metrics, the stylesheet)             |
| ``SIGNED_IN``    | any signed-in user (sign-out, who am I)                            |
| a `Permission`   | a signed-in user holding a role that grants it (`GRANTS`)          |
| ``SIGNED_WEBHOOK``| a request signed with a ticket connector's inbound secret          |

State-changing routes name the body they take (JSON or a form); a session-cookie request to
one must carry the session's CSRF token; an API-token request needs none.
"""

from __future__ import annotations

from detectors.records.permissions import Permission as P
from detectors.web import (
    _api,
    _forms,
    _inbound,
    _kpi_page,
    _metrics,
    _pages,
    _record_page,
    _signin,
    dossier,
)
from detectors.web import _steps_api as _steps
from detectors.web._access import (
    FORM,
    JSON,
    PUBLIC,
    SIGNED_IN,
    SIGNED_WEBHOOK,
    UPLOAD,
    Route,
)
from detectors.web._form_steps import FORM_STEPS

ROUTES: tuple[Route, ...] = (
    Route("GET", "/login", _signin.login_page, PUBLIC),
    Route("POST", "/login", _signin.login_submit, PUBLIC, FORM),
    Route("POST", "/logout", _signin.logout, SIGNED_IN, FORM),
    Route("GET", "/static/otwatch.css", _pages.stylesheet, PUBLIC),
    Route("GET", "/healthz", _api.healthz, PUBLIC),
    Route("GET", "/metrics", _metrics.metrics, PUBLIC),
    Route("GET", "/", _pages.records_list, P.VIEW_RECORDS),
    Route("GET", "/records/{id}", _record_page.record, P.VIEW_RECORDS),
    Route("GET", "/report", _forms.report_form, P.REPORT),
    Route("POST", "/report", _forms.report_submit, P.REPORT, FORM),
    # The HTML forms of the steps: each with its JSON twin's permission (`_form_steps`).
    *(Route("POST", f"/records/{{id}}/steps/{step.name}", _forms.step_handler(step),
            step.permission, UPLOAD if step.name == "attach" else FORM)
      for step in FORM_STEPS),
    Route("GET", "/admin/users", _pages.users, P.MANAGE_USERS),
    Route("GET", "/kpis", _kpi_page.kpi_page, P.VIEW_RECORDS),
    Route("GET", "/records/{id}/dossier", dossier.dossier_page, P.VIEW_RECORDS),
    Route("GET", "/records/{id}/dossier.pdf", dossier.dossier_pdf, P.VIEW_RECORDS),
    Route("GET", "/api/me", _api.me, SIGNED_IN),
    Route("GET", "/api/records", _api.records, P.VIEW_RECORDS),
    Route("GET", "/api/records/{id}", _api.record, P.VIEW_RECORDS),
    Route("GET", "/api/records/{id}/trail", _api.trail, P.VIEW_RECORDS),
    Route("POST", "/api/records/{id}/transition", _api.transition, P.TRANSITION, JSON),
    Route("POST", "/api/records/{id}/signatures", _api.sign, P.SIGN, JSON),
    Route("POST", "/api/records/{id}/comments", _api.comment, P.COMMENT, JSON),
    # The joint procedure's steps (one typed command each; `_steps_api`).
    Route("POST", "/api/reports", _steps.report, P.REPORT, JSON),
    Route("POST", "/api/records/{id}/leads", _steps.leads, P.EDIT_SECTIONS, JSON),
    Route("POST", "/api/records/{id}/sections", _steps.section, P.EDIT_SECTIONS, JSON),
    Route("POST", "/api/records/{id}/impact", _steps.impact, P.EDIT_SECTIONS, JSON),
    Route("POST", "/api/records/{id}/impact/contributions", _steps.contribution,
          P.CONTRIBUTE_IMPACT, JSON),
    Route("GET", "/api/records/{id}/look-back", _steps.look_back, P.VIEW_RECORDS),
    Route("POST", "/api/records/{id}/notifications", _steps.notification, P.EDIT_SECTIONS,
          JSON),
    Route("POST", "/api/records/{id}/holds", _steps.hold, P.HOLD_LOTS, JSON),
    Route("POST", "/api/records/{id}/holds/release", _steps.release, P.HOLD_LOTS, JSON),
    Route("POST", "/api/records/{id}/decisions", _steps.decision, P.DECIDE_CONTAINMENT, JSON),
    Route("POST", "/api/records/{id}/decisions/status", _steps.decision_status,
          P.DECIDE_CONTAINMENT, JSON),
    Route("POST", "/api/records/{id}/containment", _steps.containment, P.DECIDE_CONTAINMENT,
          JSON),
    Route("POST", "/api/records/{id}/root-cause", _steps.root_cause, P.EDIT_SECTIONS, JSON),
    Route("POST", "/api/records/{id}/capa", _steps.capa, P.MANAGE_CAPA, JSON),
    Route("POST", "/api/records/{id}/capa/update", _steps.capa_update, P.MANAGE_CAPA, JSON),
    Route("POST", "/api/records/{id}/capa/due", _steps.capa_due, P.MANAGE_CAPA, JSON),
    Route("POST", "/api/records/{id}/effectiveness", _steps.effectiveness, P.MANAGE_CAPA, JSON),
    Route("POST", "/api/records/{id}/attachments", _steps.attach, P.DECIDE_CONTAINMENT, JSON),
    Route("GET", "/api/records/{id}/attachments/{sha256}", _steps.download, P.VIEW_RECORDS),
    Route("POST", "/api/records/{id}/references", _api.add_reference, P.EDIT_SECTIONS, JSON),
    Route("GET", "/api/verify", _api.verify, P.VIEW_RECORDS),
    Route("GET", "/api/kpis", _api.kpis, P.VIEW_RECORDS),
    Route("POST", "/api/tickets/{system}/webhook", _inbound.ticket_webhook, SIGNED_WEBHOOK,
          JSON),
)
