"""Golden cases for the Modbus read plan: ``otwatch-agent check`` on each folder of testcases/.

A case is a folder (as Telegraf's ``testcases/<case>/``) holding ``agent.yaml``, a config with
Modbus controllers, and ``expected.out``, exactly what ``otwatch-agent check`` prints for it.
A new case is a new folder. To write every ``expected.out`` from the current code (a new
case, or a plan that changed on purpose), run::

    OTWATCH_REGENERATE=1 .venv/bin/python -m pytest tests/agent/sources/modbus/test_check.py

and read the diff before committing it: a regenerated case is reported skipped, never passed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.cli import main as agent_main

TESTCASES = Path(__file__).resolve().parent / "testcases"
CASES = sorted(p for p in TESTCASES.iterdir() if p.is_dir())
REGENERATE = os.environ.get("OTWATCH_REGENERATE") == "1"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_check_prints_the_expected_plan(case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert agent_main(["check", "--config", str(case / "agent.yaml")]) == 0
    out = capsys.readouterr().out.replace(str(case), "<case>")  # resolved relative paths
    expected = case / "expected.out"
    if REGENERATE:
        expected.write_text(out)
        pytest.skip(f"regenerated {expected}")
    assert expected.is_file(), f"{expected} is missing; write it with OTWATCH_REGENERATE=1"
    assert out == expected.read_text()


def test_every_case_has_a_config() -> None:
    assert len(CASES) >= 5
    assert all((case / "agent.yaml").is_file() for case in CASES)
