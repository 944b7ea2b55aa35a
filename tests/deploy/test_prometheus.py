"""The alerting rules: promtool checks and unit tests, and every metric they use exists."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.deploy._metrics import DEPLOY, PROMETHEUS_SERIES, exposed_series, metric_names

PROM = DEPLOY / "prometheus"
RULES = PROM / "otwatch-rules.yml"
EXPECTED_ALERTS = {
    "OtwatchAgentDown", "OtwatchControllerDown", "OtwatchLastGoodReadTooOld",
    "OtwatchAgentHeartbeatsStopped", "OtwatchBrokerUnreachable", "OtwatchSpoolGrowing",
    "OtwatchSpoolOldestEventOld", "OtwatchSpoolRefusingEvents", "OtwatchEventsQuarantined",
    "OtwatchApprovalsFileBroken",
    "OtwatchUnapprovedChange", "OtwatchClassifierDown", "OtwatchDeadLettersIncreasing",
    "OtwatchClassifierSlow", "OtwatchIntegrityFinding", "OtwatchClassifierLagging",
    "OtwatchCapaActionsOverdue",
}


def rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in data["groups"] for rule in group["rules"]]


def test_the_expected_alerts_are_there_with_severity_and_summary() -> None:
    assert {r["alert"] for r in rules()} == EXPECTED_ALERTS
    for rule in rules():
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]


def test_rule_metrics_exist_in_the_product() -> None:
    known = exposed_series() | PROMETHEUS_SERIES
    for rule in rules():
        used = metric_names(str(rule["expr"]))
        assert used, rule["alert"]
        assert used <= known, f"{rule['alert']}: unknown {sorted(used - known)}"


def test_every_alert_has_a_unit_test() -> None:
    tests = yaml.safe_load((PROM / "otwatch-rules.test.yml").read_text(encoding="utf-8"))
    tested = {case["alertname"] for test in tests["tests"] for case in test["alert_rule_test"]
              if case.get("exp_alerts")}
    assert tested == EXPECTED_ALERTS


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.skip("promtool is not on PATH (Debian: apt-get install prometheus)")
    return subprocess.run([tool, *args], cwd=PROM, capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.mark.integration
def test_promtool_check_rules() -> None:
    done = promtool("check", "rules", RULES.name)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.integration
def test_promtool_test_rules() -> None:
    done = promtool("test", "rules", "otwatch-rules.test.yml")
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.integration
def test_promtool_check_config() -> None:
    """prometheus.yml (the compose scrape config) with its rule and file_sd files."""
    done = promtool("check", "config", "prometheus.yml")
    assert done.returncode == 0, done.stdout + done.stderr
