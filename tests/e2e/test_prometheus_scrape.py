"""A real Prometheus server (Debian's ``prometheus``) scrapes the running agent and classifier
on loopback, and a PromQL query finds the demo scenario's detection.

Skipped, with the reason, where the server is not installed (``make system-tools`` installs
it as root).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from simulators.broker import free_port
from simulators.demo import CONFIG, Pipeline, start
from tests.support.pipeline import demo_pipeline, wait_until

pytestmark = pytest.mark.e2e

PROMETHEUS = shutil.which("prometheus")


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[Pipeline]:
    with demo_pipeline(tmp_path) as running:
        yield running


def query(port: int, promql: str) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.load(response)
    except OSError:
        return []  # not serving yet
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


@pytest.mark.skipif(PROMETHEUS is None, reason="no prometheus server (Debian package "
                    "`prometheus`; `make system-tools` installs it as root)")
def test_prometheus_scrapes_agent_and_classifier_and_finds_the_detection(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    assert PROMETHEUS is not None
    start(pipeline, CONFIG / "scenarios" / "demo.yaml", tmp_path, with_ui=False)
    agent_port = yaml.safe_load((tmp_path / "agent.yaml").read_text())["metrics"]["port"]
    classifier_port = yaml.safe_load(
        (tmp_path / "classifier.yaml").read_text())["metrics"]["port"]
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": "otwatch-agent",
             "static_configs": [{"targets": [f"127.0.0.1:{agent_port}"]}]},
            {"job_name": "otwatch-classifier",
             "static_configs": [{"targets": [f"127.0.0.1:{classifier_port}"]}]},
        ],
    }))
    web_port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    server = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{web_port}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}"], stdout=log, stderr=subprocess.STDOUT)
    try:
        def alive() -> None:
            pipeline.check_alive()
            assert server.poll() is None, (tmp_path / "prometheus.log").read_text()[-2000:]

        detection = wait_until(lambda: query(
            web_port, 'otwatch_agent_changes_total{job="otwatch-agent",verdict="unapproved",'
            'kind="setpoint_change"} > 0'), 90, "the unapproved change in Prometheus", alive)
        assert detection[0]["metric"]["instance"] == f"127.0.0.1:{agent_port}"
        opened = wait_until(lambda: query(
            web_port, 'otwatch_classifier_records_opened_total{job="otwatch-classifier"} >= 1'),
            60, "the record the classifier opened, in Prometheus", alive)
        assert float(opened[0]["value"][1]) >= 1
        builds = wait_until(lambda: query(web_port, "otwatch_build_info") if len(
            query(web_port, "otwatch_build_info")) == 2 else [], 30, "both build infos", alive)
        assert {b["metric"]["service"] for b in builds} == {"agent", "classifier"}
        with urllib.request.urlopen(f"http://127.0.0.1:{classifier_port}/healthz",
                                    timeout=5) as health:
            assert health.status == 200  # the consumer loop runs
        up = query(web_port, "up")
        assert {u["metric"]["job"]: u["value"][1] for u in up} == {
            "otwatch-agent": "1", "otwatch-classifier": "1"}
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
