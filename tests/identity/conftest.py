"""Identity fixtures: a migrated SQLite records database (no users yet) and the CLI's argv."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from detectors.records import RecordStore, open_store

CHEAP_CONFIG = "identity:\n  argon2: {time_cost: 1, memory_cost: 8, parallelism: 1}\n"


@pytest.fixture
def empty_store(tmp_path: Path) -> Iterator[RecordStore]:
    store = open_store(str(tmp_path / "records.db"))
    store.migrate()
    yield store
    store.close()


@pytest.fixture
def argv(tmp_path: Path, empty_store: RecordStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    config = tmp_path / "records-ui.yaml"
    config.write_text(CHEAP_CONFIG)
    monkeypatch.delenv("OTWATCH_TOKEN", raising=False)
    return ["--db", str(tmp_path / "records.db"), "--config", str(config)]
