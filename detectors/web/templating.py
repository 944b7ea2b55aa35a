"""Jinja2 for every HTML page of the records service: one environment, autoescaping always on.

Templates live in ``detectors/web/templates`` (shipped as package data) and extend
``base.html``. A value from the database reaches a page only through ``{{ … }}``, which
escapes it; ``Markup`` is for HTML this package built itself (an SVG chart, say), never for
stored text. ``StrictUndefined`` turns a misspelt name into an error in the tests instead of
an empty cell on a page an auditor reads.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

#: How a classification reads on a badge.
CLASSIFICATION_LABELS = {"joint": "joint", "quality_only": "quality only",
                         "security_only": "security only"}


def when(moment: datetime | str | None) -> str:
    """A timestamp in UTC, to the second ("" for none)."""
    if moment is None or moment == "":
        return ""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def value(data: Any) -> Markup:
    """A tag value or JSON blob as code; a long one folds into a <details>."""
    text = data if isinstance(data, str) else orjson.dumps(data).decode()
    if len(text) <= 160:
        return Markup("<code>{}</code>").format(text)
    return Markup("<details><summary><code>{}…</code></summary><code>{}</code></details>"
                  ).format(text[:80], text)


def badge(classification: str) -> Markup:
    label = CLASSIFICATION_LABELS.get(classification, classification)
    return Markup('<span class="badge {}">{}</span>').format(classification, label)


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("detectors.web", "templates"),
        autoescape=True,  # every template, whatever its name
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=when, value=value, badge=badge)
    return env


ENVIRONMENT = _environment()


def render(template: str, /, **context: Any) -> str:
    """The page ``template`` with ``context``; ``viewer`` (who is signed in) and ``refresh``
    (a meta refresh, ``"SECONDS;url=PATH"``) default to none."""
    context.setdefault("viewer", None)
    context.setdefault("refresh", None)
    return ENVIRONMENT.get_template(template).render(**context)


__all__ = ["CLASSIFICATION_LABELS", "ENVIRONMENT", "Markup", "badge", "escape", "render",
           "value", "when"]
