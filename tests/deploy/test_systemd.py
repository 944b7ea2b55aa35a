"""The systemd units: required hardening and restart settings, and `systemd-analyze verify`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy._metrics import DEPLOY
from tests.deploy._services import service_commands

UNITS = {
    "otwatch-agent.service": "otwatch-agent",
    "otwatch-classifier.service": "otwatch-classifier",
    "otwatch-containment.service": "otwatch-containment",
    "otwatch-siem.service": "otwatch-siem",
    "otwatch-tickets.service": "otwatch-tickets",
}
#: The units whose command has a config file and a `check` sub-command for it.
CHECKED = ["otwatch-agent.service", "otwatch-classifier.service", "otwatch-siem.service"]
#: The units that keep state on the host; the containment publisher keeps its cursor in the
#: records database.
STATE = {"otwatch-agent.service": "otwatch/agent",
         "otwatch-classifier.service": "otwatch/classifier"}
SYSTEMD = DEPLOY / "systemd"
INSTALLED_BIN = "/opt/otwatch/bin/"


def directives(path: Path) -> dict[str, list[str]]:
    """`Key` -> values in file order (systemd allows repeated keys); comments skipped."""
    found: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        found.setdefault(key.strip(), []).append(value.strip())
    return found


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_unit_is_hardened_and_restarts(unit: str) -> None:
    d = directives(SYSTEMD / unit)
    assert d.get("DynamicUser") == ["yes"] or "User" in d
    assert d.get("StateDirectory") == ([STATE[unit]] if unit in STATE else None)
    assert d["ProtectSystem"] == ["strict"]
    assert d["NoNewPrivileges"] == ["yes"]
    assert d["Restart"] == ["on-failure"]
    assert d["RestartSec"]
    assert d["CapabilityBoundingSet"] == [""]


def test_every_service_command_has_a_unit() -> None:
    assert set(UNITS.values()) == service_commands()
    assert {p.name for p in SYSTEMD.glob("*.service")} == set(UNITS)


@pytest.mark.parametrize("unit", CHECKED)
def test_unit_checks_the_same_config_it_runs(unit: str) -> None:
    d = directives(SYSTEMD / unit)
    command = INSTALLED_BIN + UNITS[unit]
    (pre,) = d["ExecStartPre"]
    (start,) = d["ExecStart"]
    assert pre.split()[:2] == [command, "check"]
    assert start.split()[:2] == [command, "run"]
    assert pre.split()[2:] == start.split()[2:]
    assert "--config" in start.split()


def test_containment_unit_command_parses_and_starts_after_the_classifier() -> None:
    from detectors.containment_cli import build_parser

    d = directives(SYSTEMD / "otwatch-containment.service")
    (start,) = d["ExecStart"]
    command, *argv = start.split()
    assert command == INSTALLED_BIN + "otwatch-containment"
    args = build_parser().parse_args(argv)
    assert args.db is None  # the DSN comes from a credential file, not the command line
    assert d["LoadCredential"] == ["records-db.dsn:/etc/otwatch/records-db.dsn"]
    assert d["Environment"][-1] == "OTWATCH_RECORDS_DB_FILE=%d/records-db.dsn"
    assert args.bootstrap_servers == "${OTWATCH_KAFKA_BOOTSTRAP}"
    assert d["EnvironmentFile"] == ["/etc/otwatch/containment.env"]  # required: no leading "-"
    assert "otwatch-classifier.service" in d["After"][0].split()  # it migrates the database


def test_agent_state_dir_is_the_configs_default() -> None:
    from agent.config import AgentSection

    state_dir = directives(SYSTEMD / "otwatch-agent.service")["StateDirectory"][0]
    assert Path("/var/lib") / state_dir == AgentSection.model_fields["state_dir"].default


def _installed_copy(tmp_path: Path, unit: str) -> Path:
    """The unit with /opt/otwatch/bin/ replaced by this venv's bin (verify needs the binary)."""
    venv_bin = Path(sys.executable).parent
    if not (venv_bin / UNITS[unit]).exists():
        pytest.skip(f"{UNITS[unit]} is not installed in {venv_bin} (pip install -e .)")
    text = (SYSTEMD / unit).read_text(encoding="utf-8")
    copy = tmp_path / unit
    copy.write_text(text.replace(INSTALLED_BIN, f"{venv_bin}/"), encoding="utf-8")
    return copy


def _analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not on PATH (install systemd to verify the units)")
    return tool


@pytest.mark.integration
@pytest.mark.parametrize("unit", sorted(UNITS))
def test_systemd_analyze_verify_is_clean(tmp_path: Path, unit: str) -> None:
    tool = _analyze()
    copy = _installed_copy(tmp_path, unit)
    done = subprocess.run([tool, "verify", str(copy)], capture_output=True, text=True,
                          timeout=30, check=False)
    # verify exits 0 on unknown keys and bad values; it reports them on stderr.
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr


@pytest.mark.integration
@pytest.mark.parametrize("unit", sorted(UNITS))
def test_exposure_level_is_low(tmp_path: Path, unit: str) -> None:
    tool = _analyze()
    copy = _installed_copy(tmp_path, unit)
    done = subprocess.run([tool, "security", "--offline=true", "--threshold=20", str(copy)],
                          capture_output=True, text=True, timeout=30, check=False)
    if "--offline" in done.stderr and "unrecognized" in done.stderr:
        pytest.skip("this systemd-analyze has no --offline (systemd < 250)")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
