"""The README is the front door: every command it shows exists and answers.

`make demo` and `make test` themselves are exercised by the end-to-end test (the demo's
own harness) and by CI; here each make target must exist, and each otwatch command and
sub-command the README names must run (`--help`), and the ones on shipped files for real.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()
COMMANDS = [
    line.split("#")[0].strip()
    for block in re.findall(r"```sh\n(.*?)```", README, flags=re.S)
    for line in block.splitlines()
    if line.strip() and not line.lstrip().startswith("#")
]
ENTRY = {
    "otwatch-agent": "agent.cli",
    "otwatch-classifier": "detectors.cli",
    "otwatch-records": "detectors.records_cli",
    "otwatch-sim": "simulators.cli",
    "otwatch-siem": "detectors.siem_cli",
    "otwatch-tickets": "detectors.tickets_cli",
}


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-z][a-z-]*):", text, flags=re.M))


def test_the_two_commands_come_first() -> None:
    assert COMMANDS[:2] == ["make demo", "make test"]


@pytest.mark.parametrize("command", [c for c in COMMANDS if "make " in c])
def test_make_targets_exist(command: str) -> None:
    target = command.split("make ", 1)[1].split()[0]
    assert target in make_targets(), f"README runs `{command}` but the Makefile has no {target}"


@pytest.mark.integration
@pytest.mark.parametrize("command", [c for c in COMMANDS if "otwatch-" in c])
def test_otwatch_commands_answer(command: str) -> None:
    words = command.split()
    tool = next(w for w in words if Path(w).name in ENTRY)
    rest = words[words.index(tool) + 1 :]
    sub = [w for w in rest[:1] if not w.startswith("-")]
    result = subprocess.run(
        [sys.executable, "-m", ENTRY[Path(tool).name], *sub, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout


@pytest.mark.integration
def test_the_shipped_agent_config_checks() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "agent.cli", "check", "--config", "config/agent.yaml"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "press-01" in result.stdout and "oven-01" in result.stdout
