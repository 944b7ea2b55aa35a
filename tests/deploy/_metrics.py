"""The Prometheus series the product can expose, read from its source, and the ones a query uses.

``exposed_series()`` parses every ``.py`` file under ``agent/`` and ``detectors/`` and finds
calls of ``prometheus_client`` metric classes (under any import alias), and of the product's
own collectors served as one of them (`PRODUCT_METRIC_CLASSES`), whose first argument is a
literal name. It expands each name the way ``prometheus_client`` does: a Counter is exposed as
``<name>_total`` (``_total`` is added if missing), a Histogram as ``<name>_bucket``, ``_sum``
and ``_count``, a Summary as ``<name>``, ``_sum`` and ``_count``, a Gauge as ``<name>``.

``metric_names(expr)`` returns the metric names a PromQL expression selects: label matchers,
range and offset durations, grouping clauses, string literals and function names removed.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
SOURCE_DIRS = ("agent", "detectors")
METRIC_CLASSES = {"Counter", "Gauge", "Histogram", "Summary"}
#: The product's own collectors, by the prometheus_client class they are served as: called by
#: name in the module that defines them (`detectors.health.BatchedHistogram`) or imported.
PRODUCT_METRIC_CLASSES = {"BatchedHistogram": "Histogram"}

#: Series Prometheus itself adds to every scrape target.
PROMETHEUS_SERIES = {"up"}


def defined_metrics() -> dict[str, str]:
    """Metric name -> prometheus_client class, for every metric constructed in the product."""
    found: dict[str, str] = {}
    for folder in SOURCE_DIRS:
        for path in sorted((REPO / folder).rglob("*.py")):
            found.update(_metrics_in(ast.parse(path.read_text(encoding="utf-8"))))
    return found


def _metrics_in(tree: ast.Module) -> dict[str, str]:
    aliases = {
        alias.asname or alias.name: alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("prometheus_client")
        for alias in node.names
        if alias.name in METRIC_CLASSES
    }
    aliases.update(PRODUCT_METRIC_CLASSES)
    found = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and node.args):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else None
        first = node.args[0]
        if name in aliases and isinstance(first, ast.Constant) and isinstance(first.value, str):
            found[first.value] = aliases[name]
    return found


def exposed_series() -> set[str]:
    series: set[str] = set()
    for name, kind in defined_metrics().items():
        if kind == "Counter":
            series.add(name if name.endswith("_total") else f"{name}_total")
        elif kind == "Histogram":
            series.update(f"{name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        elif kind == "Summary":
            series.update({name, f"{name}_sum", f"{name}_count"})
        else:
            series.add(name)
    return series


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_OFFSET = re.compile(r"\boffset\s+-?[0-9a-z]+", re.IGNORECASE)
_FUNCTION = re.compile(r"\b[a-zA-Z_][a-zA-Z0-9_]*\s*\(")
_KEYWORDS = {"and", "or", "unless", "bool", "by", "without", "on", "ignoring",
             "group_left", "group_right", "offset", "inf", "nan"}
_IDENT = re.compile(r"(?<![\w.$])[a-zA-Z_:][a-zA-Z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    text = _STRING.sub(" ", expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _OFFSET.sub(" ", text)
    text = _FUNCTION.sub(" ", text)
    return {word for word in _IDENT.findall(text) if word.lower() not in _KEYWORDS}
