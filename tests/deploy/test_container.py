"""The container image and the compose file. No Docker engine runs the tests, so they check
what can be checked without one: the files parse, what they reference exists, and the configs
they mount load with the product's own loaders."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy._metrics import DEPLOY, REPO
from tests.deploy._services import central_commands

DOCKERFILE = DEPLOY / "container" / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    lines, current = [], ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if raw.strip().startswith("#") and not current:
            continue
        current += raw.rstrip().removesuffix("\\") + " "
        if not raw.rstrip().endswith("\\"):
            if current.strip():
                word, _, rest = current.strip().partition(" ")
                lines.append((word.upper(), rest.strip()))
            current = ""
    return lines


def stages() -> dict[str, list[tuple[str, str]]]:
    """The build stages by name (``FROM x AS name``), each with its instructions."""
    found: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for word, args in instructions():
        if word == "FROM":
            current = found.setdefault(args.split()[-1], [])
        current.append((word, args))
    return found


def test_dockerfile_base_and_default_command() -> None:
    steps = instructions()
    assert [args for word, args in steps if word == "FROM"][-1] == "base AS agent"
    assert stages()["base"][0] == ("FROM", "python:3.11-slim AS base")
    assert steps[-1] == ("CMD", '["otwatch-agent", "run", "--config", "/etc/otwatch/agent.yaml"]')


@pytest.mark.parametrize(("stage", "lock", "command"), [
    ("agent", "requirements-agent.lock", "otwatch-agent"),
    ("central", "requirements-central.lock", "otwatch-classifier"),
])
def test_each_image_installs_its_lock_file_by_hash_and_drops_the_simulators(
    stage: str, lock: str, command: str
) -> None:
    steps = stages()[stage]
    runs = " ".join(args for word, args in steps if word == "RUN")
    assert "pip install --require-hashes --no-deps -r /tmp/requirements.lock" in runs
    assert "pip install --no-deps /wheels/otwatch-" in runs and "simulators" in runs
    assert ("COPY", f"deploy/container/{lock} /tmp/requirements.lock") in steps
    labels = " ".join(args for word, args in steps + stages()["base"] if word == "LABEL")
    for key in ("title", "description", "version", "revision", "created", "licenses", "source"):
        assert f"org.opencontainers.image.{key}=" in labels, key
    assert f"org.opencontainers.image.title=\"otwatch-{stage}\"" in labels
    assert [a for w, a in steps if w == "CMD"][-1].startswith(f'["{command}"')


def test_the_lock_files_pin_every_dependency_by_hash() -> None:
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for lock, requires in (
        ("requirements-agent.lock", project["dependencies"]),
        ("requirements-central.lock",
         project["dependencies"] + project["optional-dependencies"]["classifier"]),
    ):
        text = (DEPLOY / "container" / lock).read_text(encoding="utf-8")
        pins = dict(re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+) \\$", text, flags=re.MULTILINE))
        assert pins and text.count("--hash=sha256:") >= len(pins)
        normal = {name.lower().replace("_", "-"): v for name, v in pins.items()}
        for line in requires:
            req = Requirement(line)
            if req.marker is not None and not req.marker.evaluate():
                continue
            version = normal.get(req.name.lower().replace("_", "-"))
            assert version is not None, f"{lock}: {req.name} is not locked"
            assert req.specifier.contains(version), f"{lock}: {req.name}=={version} vs {req}"


def test_dockerfile_runs_as_non_root() -> None:
    final = instructions()
    final = final[max(i for i, (word, _) in enumerate(final) if word == "FROM"):]
    users = [args for word, args in final if word == "USER"]
    assert users, "the final stage sets no USER"
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_dockerfile_copy_sources_exist_in_the_build_context() -> None:
    """The build context is the repository root (compose: context ..)."""
    copies = [shlex.split(args) for word, args in instructions() if word == "COPY"]
    local = [c for c in copies if not any(a.startswith("--from") for a in c)]
    assert local
    for args in local:
        for source in [a for a in args if not a.startswith("--")][:-1]:
            assert (REPO / source).exists(), f"COPY source {source} is not in the repository"


def test_dockerignore_keeps_the_copy_sources() -> None:
    ignored = {
        line.strip() for line in (DEPLOY / "container" / "Dockerfile.dockerignore")
        .read_text(encoding="utf-8").splitlines() if line.strip() and not line.startswith("#")
    }
    assert not ignored & {"agent", "detectors", "simulators", "pyproject.toml", "README.md"}
    assert {"!deploy/container/requirements-agent.lock",
            "!deploy/container/requirements-central.lock"} <= ignored  # "deploy" is ignored


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_compose_has_the_central_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"kafka", "classifier", "records-ui", "containment", "postgres", "prometheus"} <= set(
        services)
    assert services["kafka"]["image"].startswith("apache/kafka:")


def test_compose_runs_every_central_command(compose: dict[str, Any]) -> None:
    commands = {s["command"][0] for s in compose["services"].values() if "command" in s}
    assert central_commands() <= commands


def _bind_mounts(compose: dict[str, Any]) -> list[tuple[str, str, str]]:
    mounts = []
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith("."):
                mounts.append((name, source, target))
    return mounts


def test_compose_bind_mounts_and_build_exist(compose: dict[str, Any]) -> None:
    assert _bind_mounts(compose)
    for service, source, _ in _bind_mounts(compose):
        assert (DEPLOY / source).exists(), f"{service}: {source} does not exist"
    for name, service in compose["services"].items():
        if "build" in service:
            context = (DEPLOY / service["build"]["context"]).resolve()
            assert context == REPO, name
            assert (context / service["build"]["dockerfile"]).is_file(), name


def _container_files(compose: dict[str, Any], service: str, tmp_path: Path) -> Path:
    """The service's bind mounts, copied to tmp_path as the container would see them."""
    for name, source, target in _bind_mounts(compose):
        if name == service:
            dest = tmp_path / target.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            if (DEPLOY / source).is_dir():
                shutil.copytree(DEPLOY / source, dest)
            else:
                shutil.copy(DEPLOY / source, dest)
    return tmp_path


def test_compose_classifier_config_loads_as_mounted(compose: dict[str, Any],
                                                    tmp_path: Path) -> None:
    from detectors.cli import build_parser
    from detectors.config import load_classifier_config
    from detectors.criteria import load_criteria

    root = _container_files(compose, "classifier", tmp_path)
    command = compose["services"]["classifier"]["command"]
    args = build_parser().parse_args(command[1:])
    config = load_classifier_config(root / args.config.lstrip("/"))
    load_criteria(config.classifier.criteria)
    assert config.metrics.host == "0.0.0.0"
    assert args.records_db is None  # from the secret file $OTWATCH_RECORDS_DB_FILE names
    assert "OTWATCH_RECORDS_DB_FILE" in compose["services"]["classifier"]["environment"]
    assert args.bootstrap_servers.split(":")[0] in compose["services"]


def test_compose_records_ui_command_parses(compose: dict[str, Any]) -> None:
    from detectors.records_cli import build_parser

    command = compose["services"]["records-ui"]["command"]
    assert command[:2] == ["otwatch-records", "serve"]
    args = build_parser().parse_args(command[1:])
    assert args.host == "0.0.0.0"
    assert f"{args.port}:{args.port}" in compose["services"]["records-ui"]["ports"]


def test_compose_containment_publishes_from_the_classifiers_database(
    compose: dict[str, Any],
) -> None:
    from detectors.cli import build_parser as classifier_parser
    from detectors.containment_cli import build_parser

    services = compose["services"]
    command = services["containment"]["command"]
    assert command[0] == "otwatch-containment"
    args = build_parser().parse_args(command[1:])
    classifier = classifier_parser().parse_args(services["classifier"]["command"][1:])
    assert args.db is None and classifier.records_db is None
    assert services["containment"]["environment"] == services["classifier"]["environment"]
    assert args.bootstrap_servers == classifier.bootstrap_servers
    assert {"kafka", "postgres", "classifier"} <= set(services["containment"]["depends_on"])
    assert "deploy" not in services["containment"]  # one publisher: no replicas


def test_prometheus_scrapes_the_classifier_metrics_port(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    (sd,) = jobs["otwatch-classifier"]["dns_sd_configs"]
    classifier = yaml.safe_load((DEPLOY / "compose" / "classifier.yaml").read_text("utf-8"))
    assert sd["names"] == ["classifier"] and sd["port"] == classifier["metrics"]["port"]
    assert "otwatch-agent" in jobs
    assert yaml.safe_load((DEPLOY / "prometheus" / "agents.yml").read_text("utf-8")) == []
