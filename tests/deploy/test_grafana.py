"""The Grafana dashboard: valid JSON, sane layout, and queries over metrics that exist."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy._metrics import DEPLOY, PROMETHEUS_SERIES, exposed_series, metric_names

DASHBOARD = DEPLOY / "grafana" / "otwatch-overview.json"


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    data = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def targets(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"]
            for target in panel.get("targets", [])]


def test_panels_have_unique_ids_and_do_not_overlap(dashboard: dict[str, Any]) -> None:
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        g = panel["gridPos"]
        assert g["x"] + g["w"] <= 24, panel["title"]
        xs, ys = range(g["x"], g["x"] + g["w"]), range(g["y"], g["y"] + g["h"])
        mine = {(x, y) for x in xs for y in ys}
        assert not cells & mine, f"{panel['title']} overlaps another panel"
        cells |= mine


def test_datasource_is_the_template_variable(dashboard: dict[str, Any]) -> None:
    names = {v["name"] for v in dashboard["templating"]["list"]}
    assert "datasource" in names
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
        for variable in re.findall(r"\$(\w+)", json.dumps(panel.get("targets", []))):
            assert variable.startswith("__") or variable in names, (panel["title"], variable)


def test_dashboard_covers_agent_health_and_detections(dashboard: dict[str, Any]) -> None:
    used = set().union(*(metric_names(expr) for _, expr in targets(dashboard)))
    assert {
        "otwatch_agent_controller_up", "otwatch_agent_reads_total",
        "otwatch_agent_read_seconds_bucket", "otwatch_agent_spool_depth",
        "otwatch_agent_spool_oldest_age_seconds", "otwatch_agent_broker_up",
        "otwatch_agent_changes_total", "otwatch_classifier_events_total",
        "otwatch_classifier_records_opened_total", "otwatch_classifier_dead_letters_total",
    } <= used


def test_dashboard_metrics_exist_in_the_product(dashboard: dict[str, Any]) -> None:
    known = exposed_series() | PROMETHEUS_SERIES
    for title, expr in targets(dashboard):
        used = metric_names(expr)
        assert used, title
        assert used <= known, f"{title}: unknown {sorted(used - known)}"


def _as_promql(expr: str) -> str:
    """Grafana's variables replaced by values Prometheus would receive."""
    expr = expr.replace("$__rate_interval", "1m").replace("$__range", "1h")
    return re.sub(r"\$\{?(\w+)\}?", "x", expr)


@pytest.mark.integration
def test_queries_parse_as_promql(dashboard: dict[str, Any], tmp_path: Path) -> None:
    """promtool parses each query as a recording rule's expression."""
    tool = shutil.which("promtool")
    if tool is None:
        pytest.skip("promtool is not on PATH (Debian: apt-get install prometheus)")
    rules = [{"record": f"dashboard:query_{i}", "expr": _as_promql(expr)}
             for i, (_, expr) in enumerate(targets(dashboard))]
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}),
                    encoding="utf-8")
    done = subprocess.run([tool, "check", "rules", str(path)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_provisioning_points_at_the_mounted_dashboard() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    provider = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "otwatch.yml").read_text("utf-8")
    )["providers"][0]
    mounts = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"])
    target = mounts["./grafana/otwatch-overview.json"]
    assert str(Path(target).parent) == provider["options"]["path"]
