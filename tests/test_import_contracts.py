"""The import contracts of ``make lint`` (pyproject.toml) cover every module of the agent.

import-linter has no "everything but" form, so the contracts list every module of ``agent/``
except the three shared packages. A module added to ``agent/`` and not listed there would be
importable by the classifier unnoticed: this test names it.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = {"agent.contract", "agent.kafka", "agent.runtime"}


def agent_modules() -> set[str]:
    found = set()
    for path in (REPO / "agent").iterdir():
        if path.is_dir() and (path / "__init__.py").exists():
            found.add(f"agent.{path.name}")
        elif path.suffix == ".py" and path.stem != "__init__":
            found.add(f"agent.{path.stem}")
    return found


def contracts() -> dict[str, dict[str, Any]]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    return {c["id"]: c for c in config["tool"]["importlinter"]["contracts"]}


def test_the_forbidden_lists_name_every_module_of_the_agent_but_the_shared_ones() -> None:
    everything_else = agent_modules() - SHARED
    assert SHARED <= agent_modules()
    for name in ("classifier-imports-shared-agent-only", "shared-agent-packages-stand-alone"):
        assert set(contracts()[name]["forbidden_modules"]) == everything_else, name


def test_the_shared_packages_are_the_sources_of_the_second_contract() -> None:
    assert set(contracts()["shared-agent-packages-stand-alone"]["source_modules"]) == SHARED
