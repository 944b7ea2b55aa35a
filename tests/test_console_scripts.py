"""Every console script of pyproject.toml, table-driven: ``--version``, the shared logging
options, exit codes (0 ok, 2 bad input), its own name, and on an agent-only install one line
saying what to install."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[1]
BIN = Path(sys.executable).parent
SCRIPTS: dict[str, str] = tomllib.loads(
    (ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]

#: For each script, a command line with input it must refuse (exit 2, nothing done).
BAD_INPUT = {
    "otwatch-agent": ["check", "--config", "/nonexistent/agent.yaml"],
    "otwatch-classifier": ["check", "--config", "/nonexistent/classifier.yaml"],
    "otwatch-records": ["--db", "/nonexistent/records.db", "list"],
    "otwatch-containment": ["--db", "/nonexistent/records.db", "--bootstrap-servers",
                            "127.0.0.1:1"],
    "otwatch-siem": ["check", "--config", "/nonexistent/classifier.yaml"],
    "otwatch-sim": ["check", "--plant", "/nonexistent/plant.yaml"],
    "otwatch-tickets": ["--db", "/nonexistent/records.db", "--bootstrap-servers",
                        "127.0.0.1:1"],
}
#: The scripts that need the classifier extra.
CLASSIFIER_SIDE = {"otwatch-classifier", "otwatch-records", "otwatch-containment",
                   "otwatch-siem", "otwatch-tickets"}


def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False,
                          cwd=ROOT, **kwargs)  # type: ignore[call-overload,no-any-return]


def test_the_table_covers_every_script() -> None:
    assert set(SCRIPTS) == set(BAD_INPUT)


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_version_names_the_script(script: str) -> None:
    done = run([str(BIN / script), "--version"])
    assert done.returncode == 0, done.stderr
    name, version = done.stdout.split()
    assert name == script and version[0].isdigit()


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_help_names_the_script_and_the_shared_options(script: str) -> None:
    done = run([str(BIN / script), "--help"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: {script} ")
    for option in ("--version", "--log-level", "--log-format"):
        assert option in done.stdout


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_a_bad_log_level_or_option_is_bad_input(script: str) -> None:
    for argv in (["--log-level", "LOUD", *BAD_INPUT[script]],
                 ["--log-format", "xml", *BAD_INPUT[script]], ["--no-such-option"]):
        done = run([str(BIN / script), *argv])
        assert done.returncode == 2, (argv, done.stderr)
        assert "usage:" in done.stderr


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_bad_input_exits_2_naming_the_problem(script: str) -> None:
    done = run([str(BIN / script), "--log-level", "warning", *BAD_INPUT[script]])
    assert done.returncode == 2, done.stderr
    assert "/nonexistent/" in done.stderr
    assert "Traceback" not in done.stderr


_AGENT_ONLY = """
import sys
for name in {modules!r}:
    sys.modules[name] = None  # what an agent-only install lacks
from {module} import {function}
sys.exit({function}())
"""


@pytest.mark.parametrize("script", sorted(CLASSIFIER_SIDE))
def test_an_agent_only_install_says_what_to_install(script: str) -> None:
    from detectors.entry_points import CLASSIFIER_MODULES

    module, function = SCRIPTS[script].split(":")
    code = _AGENT_ONLY.format(modules=sorted(CLASSIFIER_MODULES), module=module,
                              function=function)
    done = run([sys.executable, "-c", code, "--help"])
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert "pip install 'otwatch[classifier]'" in done.stderr
    assert script in done.stderr


def test_the_agent_runs_without_the_classifier_extra() -> None:
    from detectors.entry_points import CLASSIFIER_MODULES

    code = _AGENT_ONLY.format(modules=sorted(CLASSIFIER_MODULES), module="agent.cli",
                              function="entry")
    done = run([sys.executable, "-c", code, "check", "--config", "config/agent.yaml"])
    assert done.returncode == 0, done.stderr
