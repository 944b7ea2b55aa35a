"""No secret on a command line, no default password: systemd units, compose, Kubernetes.

A command line is visible to every user of the host (``ps``, /proc); a default password is
the one nobody changes. The services read the records database's DSN from the environment or
a file (`detectors.records_db_env`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy._metrics import DEPLOY

#: What a secret on a command line looks like: a DSN with a password, a password option, the
#: variable that holds the DSN expanded into argv.
SECRET_IN_ARGV = re.compile(
    r"://[^/@\s]+:[^/@\s]+@|passw|secret|OTWATCH_RECORDS_DB\b|DB_PASSWORD", re.IGNORECASE)


def systemd_commands() -> dict[str, str]:
    found = {}
    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        for line in unit.read_text(encoding="utf-8").splitlines():
            if line.startswith(("ExecStart=", "ExecStartPre=")):
                found[f"{unit.name}: {line.split('=', 1)[0]}"] = line.split("=", 1)[1]
    return found


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    return data


def kubernetes_containers() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            spec = (doc or {}).get("spec", {}).get("template", {}).get("spec", {})
            for container in spec.get("containers", []) + spec.get("initContainers", []):
                found.append((f"{path.name}: {container['name']}", container))
    return found


def argv_of_everything() -> dict[str, str]:
    argv = dict(systemd_commands())
    for name, service in compose()["services"].items():
        command = service.get("command", [])
        argv[f"compose {name}"] = " ".join(command) if isinstance(command, list) else command
    for name, container in kubernetes_containers():
        argv[f"kubernetes {name}"] = " ".join(container.get("command", []) +
                                               container.get("args", []))
    return argv


@pytest.mark.parametrize(("where", "command"), sorted(argv_of_everything().items()))
def test_no_secret_on_a_command_line(where: str, command: str) -> None:
    assert not SECRET_IN_ARGV.search(command), f"{where}: {command}"


def test_the_checker_sees_a_secret_on_a_command_line() -> None:
    assert SECRET_IN_ARGV.search("otwatch-containment --db postgresql://u:pw@db/otwatch")
    assert SECRET_IN_ARGV.search("otwatch-classifier run --records-db $(OTWATCH_RECORDS_DB)")
    assert not SECRET_IN_ARGV.search("otwatch-containment --bootstrap-servers kafka:9092")


def test_compose_has_no_default_password() -> None:
    text = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    assert not re.search(r"\$\{[A-Z_]*(PASSWORD|SECRET|DSN)[A-Z_]*:-", text), \
        "a password variable with a default"
    services = compose()["services"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"].startswith("/run/secrets/")
    assert "POSTGRES_PASSWORD" not in services["postgres"]["environment"]
    grafana = services["grafana"]["environment"]
    assert grafana["GF_SECURITY_ADMIN_PASSWORD__FILE"].startswith("/run/secrets/")
    assert "GF_SECURITY_ADMIN_PASSWORD" not in grafana


def test_compose_services_read_the_dsn_from_a_secret_file() -> None:
    data = compose()
    for name in ("classifier", "records-ui", "containment"):
        service = data["services"][name]
        target = service["environment"]["OTWATCH_RECORDS_DB_FILE"]
        (secret,) = service["secrets"]
        assert target == f"/run/secrets/{secret}"
        assert Path(data["secrets"][secret]["file"]).parts[:3] == ("compose", "secrets") or \
            data["secrets"][secret]["file"].startswith("./compose/secrets/")


def test_kubernetes_dsn_comes_from_the_secret() -> None:
    for name, container in kubernetes_containers():
        env = {e["name"]: e for e in container.get("env", [])}
        if "OTWATCH_RECORDS_DB" in env:
            assert env["OTWATCH_RECORDS_DB"]["valueFrom"]["secretKeyRef"]["name"] == \
                "otwatch-records-db", name


def test_systemd_dsn_is_a_credential() -> None:
    text = (DEPLOY / "systemd" / "otwatch-containment.service").read_text(encoding="utf-8")
    assert "LoadCredential=records-db.dsn:" in text
    assert "Environment=OTWATCH_RECORDS_DB_FILE=%d/records-db.dsn" in text
