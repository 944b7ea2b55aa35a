"""Clean exits and clear start-up lines (issue 14, item 5): real processes, stopped by PID.

- ``otwatch-classifier check`` refuses a records database it could not create;
- with the broker away, SIGINT and SIGTERM stop ``otwatch-classifier run`` and
  ``otwatch-containment`` with exit 0, no traceback and one line about the outage;
- with the records database away at start, the classifier waits (one line) and a SIGTERM
  meanwhile still exits 0.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from detectors.records import open_store
from simulators.broker import EmbeddedBroker, free_port
from tests.detectors.running import AGENT

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CRITERIA = ROOT / "config" / "criteria.yaml"


def config_file(tmp_path: Path, records_db: str, bootstrap: str) -> Path:
    cfg = {
        "classifier": {"records_db": records_db, "criteria": str(CRITERIA),
                       "agent_keys": {AGENT.key_id: AGENT.public_key_b64}},
        "kafka": {"bootstrap_servers": bootstrap, "enable_idempotence": False},
        "metrics": {"port": 0},
    }
    path = tmp_path / "classifier.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "detectors.cli", *args], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)


@pytest.mark.parametrize("command", ["check", "run"])
def test_a_records_database_in_a_missing_folder_is_refused_with_the_key_and_the_fix(
    command: str, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-folder" / "records.db"
    done = cli(command, "--config", str(config_file(tmp_path, str(missing), "127.0.0.1:1")))
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line == (
        f"otwatch-classifier: classifier.records_db: the folder {missing.parent} does not "
        f"exist; fix: create it (mkdir -p {missing.parent}) or point classifier.records_db "
        "(or --records-db) at a writable folder"
    )
    assert not missing.parent.exists()


def unwritable_folder(tmp_path: Path) -> Path:
    """A folder this process cannot create files in (root ignores permission bits: then a
    read-only system folder)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    for candidate in (folder, Path("/sys"), Path("/proc")):
        try:
            with tempfile.TemporaryFile(dir=candidate):
                pass
        except OSError:
            return candidate
    pytest.skip("no folder here refuses this process a new file")


def test_an_unwritable_records_folder_is_refused_by_check(tmp_path: Path) -> None:
    target = unwritable_folder(tmp_path) / "otwatch-records.db"
    config = config_file(tmp_path, "records.db", "127.0.0.1:1")
    done = cli("check", "--config", str(config), "--records-db", str(target))
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"otwatch-classifier: classifier.records_db: cannot write {target} (")
    assert "fix: give the service's user write access to" in line


@contextmanager
def process(args: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A service process with its output in ``log``; stopped by PID if the test did not."""
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", *args], stdout=out,
                                stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def wait_for_line(log: Path, text: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            raise AssertionError(f"exited ({proc.returncode}) before {text!r}:\n{log.read_text()}")
        time.sleep(0.1)
    raise AssertionError(f"no {text!r} within {timeout:.0f} s:\n{log.read_text()}")


def problem_lines(text: str) -> list[str]:
    """Lines at WARNING or above: what an operator is told."""
    return [line for line in text.splitlines() if " ERROR " in line or " WARNING " in line
            or " CRITICAL " in line]


def stop(proc: subprocess.Popen[bytes], sig: signal.Signals) -> int:
    proc.send_signal(sig)
    return proc.wait(timeout=30)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_the_classifier_stops_cleanly_while_the_broker_is_away(
    sig: signal.Signals, tmp_path: Path
) -> None:
    nobody = f"127.0.0.1:{free_port()}"  # nothing listens there
    config = config_file(tmp_path, str(tmp_path / "records.db"), nobody)
    log = tmp_path / "classifier.log"
    with process(["detectors.cli", "run", "--config", str(config)], log) as proc:
        wait_for_line(log, "cannot start", proc)
        code = stop(proc, sig)
    text = log.read_text()
    assert code == 0, text
    assert "Traceback" not in text
    (line,) = problem_lines(text)
    assert f"ERROR agent.kafka.startup: Kafka producer ({nobody}) cannot start: " in line
    assert text.rstrip().splitlines()[-1].endswith("stopping: finishing the batch in hand, "
                                                   "then closing")


def test_the_classifier_stops_cleanly_after_the_broker_went_away(tmp_path: Path) -> None:
    broker = EmbeddedBroker().start()
    try:
        config = config_file(tmp_path, str(tmp_path / "records.db"), broker.bootstrap)
        log = tmp_path / "classifier.log"
        with process(["detectors.cli", "run", "--config", str(config)], log) as proc:
            wait_for_line(log, "partitions assigned", proc)
            assert broker.process is not None
            broker.process.kill()  # the broker dies (by its PID), the classifier runs on
            broker.process.wait(timeout=10)
            time.sleep(2)
            code = stop(proc, signal.SIGTERM)
    finally:
        broker.stop()
    text = log.read_text()
    assert code == 0, text
    assert "Traceback" not in text and "stopping: finishing the batch" in text


def test_containment_stops_cleanly_while_the_broker_is_away(tmp_path: Path) -> None:
    db = tmp_path / "records.db"
    store = open_store(str(db))
    store.migrate()
    store.close()
    nobody = f"127.0.0.1:{free_port()}"
    log = tmp_path / "containment.log"
    with process(["detectors.containment_cli", "--db", str(db), "--bootstrap-servers", nobody],
                 log) as proc:
        wait_for_line(log, "cannot start", proc)
        code = stop(proc, signal.SIGINT)
    text = log.read_text()
    assert code == 0, text
    assert "Traceback" not in text
    (line,) = problem_lines(text)
    assert "containment producer" in line and "cannot start" in line


def test_the_classifier_waits_for_a_records_database_that_is_not_there_and_stops_cleanly(
    tmp_path: Path
) -> None:
    nobody = free_port()
    dsn = f"postgresql://postgres@127.0.0.1:{nobody}/test"
    broker = f"127.0.0.1:{free_port()}"
    config = config_file(tmp_path, dsn, broker)
    log = tmp_path / "classifier.log"
    with process(["detectors.cli", "run", "--config", str(config)], log) as proc:
        wait_for_line(log, "unavailable", proc)
        time.sleep(2)  # a few retries
        code = stop(proc, signal.SIGTERM)
    text = log.read_text()
    assert code == 0, text
    assert "Traceback" not in text
    (line,) = problem_lines(text)
    assert (f"ERROR detectors.store_retry: records database {dsn} (classifier.records_db) "
            "unavailable; holding what was read (no offset is committed) and retrying: ") in line
    assert "Connection refused" in line
