"""Every sample under config/ is loaded by its own loader: a sample no test loads would rot."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from agent.approvals import load_approvals_file
from agent.config import load_agent_config
from detectors.config import load_classifier_config
from detectors.criteria import load_criteria
from detectors.tickets import load as load_tickets_config
from detectors.web.config import load_service_config
from simulators.plant import load_plant
from simulators.scenario import load_scenario

CONFIG = Path(__file__).parents[1] / "config"


def loader_for(path: Path) -> Callable[[Path], object]:
    name = path.relative_to(CONFIG).as_posix()
    if name.startswith("scenarios/"):
        return load_scenario
    if name.startswith("approvals"):
        return load_approvals_file
    loaders: dict[str, Callable[[Path], object]] = {
        "agent.yaml": load_agent_config,
        "classifier.yaml": load_classifier_config,
        "criteria.yaml": load_criteria,
        "plant.yaml": load_plant,
        "records-ui.yaml": load_service_config,
        "tickets.yaml": load_tickets_config,
    }
    if name not in loaders:
        pytest.fail(f"config/{name} has no loader in this test: add one, or remove the file")
    return loaders[name]


@pytest.mark.parametrize(
    "path",
    sorted(p for p in CONFIG.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml", ".json")),
    ids=lambda p: p.relative_to(CONFIG).as_posix(),
)
def test_sample_loads(path: Path) -> None:
    assert loader_for(path)(path) is not None


def test_agent_approvals_command_reads_the_config(capsys: pytest.CaptureFixture[str]) -> None:
    from agent.cli import main

    assert main(["approvals", "validate", "--config", str(CONFIG / "agent.yaml")]) == 0
    count = len(load_approvals_file(CONFIG / "approvals.yaml"))
    assert f"OK: {count} approvals in 1 file(s)" in capsys.readouterr().out
