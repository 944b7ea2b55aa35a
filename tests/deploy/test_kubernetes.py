"""The Kubernetes manifests, checked by parsing (no cluster or kubectl schema check here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy._metrics import DEPLOY, REPO
from tests.deploy._services import central_commands

K8S = DEPLOY / "kubernetes"


def documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs += [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    return docs


def find(kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for d in documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def test_every_document_has_the_basic_fields() -> None:
    for doc in documents():
        assert {"apiVersion", "kind", "metadata"} <= set(doc), doc
        assert doc["metadata"]["name"]


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    listed = set(kustomization["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


def test_every_central_command_has_a_deployment() -> None:
    commands = {
        c["command"][0] for d in documents() if d["kind"] == "Deployment"
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert central_commands() <= commands


@pytest.mark.parametrize(
    "name", ["otwatch-classifier", "otwatch-records-ui", "otwatch-containment"])
def test_deployment_selects_its_pods_and_is_locked_down(name: str) -> None:
    deployment = find("Deployment", name)
    spec = deployment["spec"]
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    for container in pod["containers"] + pod.get("initContainers", []):
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounted = {m["name"] for c in pod["containers"] for m in c.get("volumeMounts", [])}
    assert mounted <= {v["name"] for v in pod.get("volumes", [])}


def assert_database_and_broker_from_the_shared_settings(container: dict[str, Any]) -> None:
    """OTWATCH_RECORDS_DB from the Secret, OTWATCH_KAFKA_BOOTSTRAP from otwatch-settings."""
    env = {e["name"]: e["valueFrom"] for e in container["env"]}
    assert env["OTWATCH_RECORDS_DB"]["secretKeyRef"] == {"name": "otwatch-records-db", "key": "dsn"}
    ref = env["OTWATCH_KAFKA_BOOTSTRAP"]["configMapKeyRef"]
    assert ref == {"name": "otwatch-settings", "key": "kafka_bootstrap_servers"}
    assert ref["key"] in find("ConfigMap", ref["name"])["data"]


def test_classifier_replicas_share_one_group_and_the_database_secret(tmp_path: Path) -> None:
    from detectors.cli import build_parser
    from detectors.config import load_classifier_config
    from detectors.criteria import load_criteria

    deployment = find("Deployment", "otwatch-classifier")
    assert deployment["spec"]["replicas"] > 1
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    args = build_parser().parse_args(container["args"])
    assert args.records_db is None  # $OTWATCH_RECORDS_DB, from the Secret
    assert_database_and_broker_from_the_shared_settings(container)

    config_map = find("ConfigMap", "otwatch-classifier-config")
    for name, text in config_map["data"].items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    config = load_classifier_config(tmp_path / Path(args.config).name)
    load_criteria(config.classifier.criteria)
    assert config.classifier.group_id == "otwatch-classifier"
    port = {p["name"]: p["containerPort"] for p in container["ports"]}["metrics"]
    assert config.metrics.port == port
    assert config.metrics.host == "0.0.0.0"
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port)


def test_classifier_criteria_are_the_shipped_sample() -> None:
    """The ConfigMap carries a copy of config/criteria.yaml; edit both together."""
    shipped = (REPO / "config" / "criteria.yaml").read_text(encoding="utf-8")
    copy = find("ConfigMap", "otwatch-classifier-config")["data"]["criteria.yaml"]
    assert yaml.safe_load(copy) == yaml.safe_load(shipped)


def test_records_ui_service_targets_the_ui_port() -> None:
    from detectors.records_cli import build_parser

    deployment = find("Deployment", "otwatch-records-ui")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["otwatch-records"]
    args = build_parser().parse_args(container["args"])
    assert args.command == "serve" and args.db is None
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["http"] == args.port and args.host == "0.0.0.0"
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    service = find("Service", "otwatch-records-ui")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= set(ports)


def test_one_containment_publisher_on_the_shared_database_and_broker() -> None:
    from detectors.containment_cli import build_parser

    deployment = find("Deployment", "otwatch-containment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}  # never two at once
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["otwatch-containment"]
    args = build_parser().parse_args(container["args"])
    assert args.db is None  # $OTWATCH_RECORDS_DB, from the Secret
    assert args.bootstrap_servers == "$(OTWATCH_KAFKA_BOOTSTRAP)"
    assert_database_and_broker_from_the_shared_settings(container)


def _pod_labels() -> list[dict[str, str]]:
    return [d["spec"]["template"]["metadata"]["labels"] for d in documents()
            if d["kind"] == "Deployment"]


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return selector.items() <= labels.items()


def test_disruption_budgets_cover_the_replicated_deployments() -> None:
    budgets = [d for d in documents() if d["kind"] == "PodDisruptionBudget"]
    covered = set()
    for budget in budgets:
        assert budget["apiVersion"] == "policy/v1"
        selector = budget["spec"]["selector"]["matchLabels"]
        (deployment,) = [d for d in documents() if d["kind"] == "Deployment" and _selects(
            selector, d["spec"]["template"]["metadata"]["labels"])]
        assert budget["spec"]["maxUnavailable"] < deployment["spec"]["replicas"]
        covered.add(deployment["metadata"]["name"])
    replicated = {d["metadata"]["name"] for d in documents()
                  if d["kind"] == "Deployment" and d["spec"]["replicas"] > 1}
    assert covered == replicated


def test_network_policies_deny_ingress_by_default_and_name_real_ports() -> None:
    policies = {d["metadata"]["name"]: d for d in documents() if d["kind"] == "NetworkPolicy"}
    deny = policies["otwatch-default-deny-ingress"]["spec"]
    assert "ingress" not in deny and deny["policyTypes"] == ["Ingress"]
    assert all(_selects(deny["podSelector"]["matchLabels"], labels) for labels in _pod_labels())
    named_ports = {p["name"] for d in documents() if d["kind"] == "Deployment"
                   for c in d["spec"]["template"]["spec"]["containers"]
                   for p in c.get("ports", [])}
    for policy in policies.values():
        for rule in policy["spec"].get("ingress", []):
            assert {p["port"] for p in rule["ports"]} <= named_ports, policy["metadata"]["name"]


def test_service_monitors_select_a_service_with_the_port() -> None:
    services = [d for d in documents() if d["kind"] == "Service"]
    for monitor in (d for d in documents() if d["kind"] == "ServiceMonitor"):
        selector = monitor["spec"]["selector"]["matchLabels"]
        ports = {p["name"] for s in services if _selects(selector, s["metadata"]["labels"])
                 for p in s["spec"]["ports"]}
        for endpoint in monitor["spec"]["endpoints"]:
            assert endpoint["port"] in ports, monitor["metadata"]["name"]
    names = {d["metadata"]["name"] for d in documents() if d["kind"] == "ServiceMonitor"}
    assert {"otwatch-classifier", "otwatch-records-ui"} <= names


def test_classifier_liveness_sees_a_stuck_consumer() -> None:
    deployment = find("Deployment", "otwatch-classifier")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
