"""The classifier process makes and publishes trail checkpoints when a key is configured
(`detectors.checkpoint_publisher`), and refuses to start with a key everyone can read."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from detectors.records.checkpoints import Checkpoint, generate_key
from detectors.records_cli import main
from simulators.broker import EmbeddedBroker
from tests.detectors.running import (
    ROOT,
    classifier,
    create_topics,
    produce,
    read_topic,
    records,
    signed,
    wait_until,
    write_config,
)
from tests.support.events import make_event

pytestmark = pytest.mark.e2e


def _with_checkpoints(config: Path, key: Path) -> None:
    cfg = yaml.safe_load(config.read_text())
    cfg["checkpoints"] = {"key_file": str(key), "public_key_file": f"{key}.pub",
                          "every_entries": 1, "check_interval_s": 0.2}
    config.write_text(yaml.safe_dump(cfg))


async def test_the_classifier_signs_the_head_and_publishes_it(
    broker: EmbeddedBroker, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    await create_topics(broker.bootstrap)
    key = tmp_path / "checkpoint.key"
    generate_key(key)
    config = write_config(tmp_path, broker.bootstrap)
    _with_checkpoints(config, key)
    await produce(broker.bootstrap, "otwatch.changes.suspect", [signed(make_event())])
    db = tmp_path / "records.db"
    with classifier(config) as proc:
        await asyncio.to_thread(wait_until, lambda: records(db), 30, "a record", proc)
        messages = await read_topic(broker.bootstrap, "otwatch.checkpoints",
                                    lambda m: len(m) >= 1)
    published = [Checkpoint.from_message(m) for m in messages]
    assert published and published[-1].seq >= 1
    capsys.readouterr()
    assert main(["--db", str(db), "verify", "--classifier-config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "audit trail intact" in out and "head signed in" in out


def test_a_key_everyone_can_read_stops_the_start_with_the_fix(
    broker: EmbeddedBroker, tmp_path: Path,
) -> None:
    key = tmp_path / "checkpoint.key"
    generate_key(key)
    key.chmod(0o644)
    config = write_config(tmp_path, broker.bootstrap)
    _with_checkpoints(config, key)
    done = subprocess.run([sys.executable, "-m", "detectors.cli", "run", "--config",
                           str(config)], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode != 0
    assert "readable by everyone" in done.stderr and f"chmod 600 {key}" in done.stderr
