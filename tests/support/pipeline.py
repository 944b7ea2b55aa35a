"""Waiting on the pipeline's processes and reading the records they wrote: the helpers the
classifier tests (`tests.detectors`) and the end-to-end tests (`tests.e2e`) share; and
`SharedPipeline`, one pipeline for the tests of a module."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import yaml

from detectors.records import MasterRecord, open_store
from simulators import demo
from simulators.demo import Pipeline

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float, what: str,
               alive: Callable[[], None] | None = None) -> T:
    """Poll ``predicate`` until it returns something truthy, and return that.

    ``alive`` raises when a process the wait depends on has died, so that a crash fails the
    test at once rather than at the timeout; e.g. ``wait_until(lambda: records(db), 60,
    "a master record", pipeline.check_alive)``.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        if alive is not None:
            alive()
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def records(db: Path) -> list[MasterRecord]:
    """Every master record in the SQLite database at ``db``; none while it is not there yet."""
    if not db.exists():
        return []
    store = open_store(str(db))
    try:
        return store.list_records()
    except Exception:  # the schema may not exist yet
        return []
    finally:
        store.close()


@contextmanager
def demo_pipeline(workdir: Path) -> Iterator[Pipeline]:
    """The demo harness's `Pipeline` in ``workdir``; every process stopped (by PID) on exit."""
    running = Pipeline(workdir)
    try:
        yield running
    finally:
        procs = list(running.procs)  # `stop()` forgets them
        running.stop()
    assert not any(p.poll() is None for _, p in procs)


class SharedPipeline:
    """One broker, classifier and containment relay for the tests of a module (the
    ``shared_pipeline`` fixture); each test plays its scenario (`play`) with a simulated plant
    and an agent of its own, under a site and agent id of its own, and reads the records of its
    own site only (`site_records`): incident keys and correlation windows are per site
    (``<site>/<controller>``, ``(site, line)``), so no test sees another's events.

    Built from the demo harness's own pieces (`simulators.demo`), so it runs what `make demo`
    runs; every process is stopped by PID (the test's own on leaving `play`, the rest by
    `stop`).
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.pipeline = Pipeline(workdir)
        self.db = workdir / "records.db"
        self._key = workdir / "agent-key" / demo.AGENT_KEY_FILE

    def start(self) -> None:
        p = self.pipeline
        p.broker.start()
        signer = demo.agent_signing_key(self._key.parent)
        config = self.workdir / "classifier.yaml"
        config.write_text(yaml.safe_dump(demo.classifier_config(p.broker.bootstrap,
                                                                self.workdir, signer)))
        p.spawn("classifier", ["detectors.cli", "run", "--config", str(config)])
        demo.wait_for_file(self.db, p, 60)
        p.spawn("containment", [
            "detectors.containment_cli", "--db", str(self.db),
            "--bootstrap-servers", p.broker.bootstrap, "--wait-for-schema-s", "60",
        ])

    def stop(self) -> None:
        procs = list(self.pipeline.procs)
        self.pipeline.stop()
        assert not any(proc.poll() is None for _, proc in procs)

    @contextmanager
    def play(self, site: str, scenario: Path) -> Iterator[Path]:
        """Serve the plant playing ``scenario`` and run an agent for ``site`` on it, from its
        start; yield the folder of this play (``labels.jsonl``, the agent's state and logs)."""
        p, own = self.pipeline, self.workdir / site
        (own / "agent").mkdir(parents=True)
        ports_file, ready = own / "ports.json", own / "agent" / "ready"
        sim = p.spawn(f"{site}-sim", [
            "simulators.cli", "run", "--plant", str(demo.CONFIG / "plant.yaml"),
            "--scenario", str(scenario), "--free-ports", "--ports-file", str(ports_file),
            "--labels-out", str(own / "labels.jsonl"),
            "--approvals-out", str(own / "scenario-approvals.yaml"),
            "--start-when-exists", str(ready), "--hold", "3600",
        ])
        mine = [sim]
        try:
            demo.wait_for_file(ports_file, p, 60)
            config = demo.agent_config(json.loads(ports_file.read_text()), p.broker.bootstrap,
                                       own)
            config["agent"].update(id=f"edge-{site}", site=site)
            key = own / "agent" / demo.AGENT_KEY_FILE  # the key the classifier trusts
            shutil.copyfile(self._key, key)
            key.chmod(0o600)
            (own / "agent.yaml").write_text(yaml.safe_dump(config))
            mine.append(p.spawn(f"{site}-agent",
                                ["agent.cli", "run", "--config", str(own / "agent.yaml")]))
            demo.wait_for_file(ready, p, 60)
            yield own
        finally:
            for proc in reversed(mine):
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait(timeout=5)
            p.procs[:] = [(name, proc) for name, proc in p.procs if proc not in mine]

    def site_records(self, site: str) -> list[MasterRecord]:
        return [r for r in records(self.db) if r.site == site]
