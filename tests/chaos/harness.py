"""The whole pipeline for fault injection: processes we can kill, networks we can cut.

`FaultyPipeline` runs, on free loopback ports:

- the embedded broker (Tansu) behind a TCP proxy that every Kafka client goes through (the
  broker advertises the proxy's port): `cut_kafka` / `restore_kafka` drop and refuse every
  connection without losing the broker's state (FIELD-NOTES: a Tansu restart loses it all);
- the records database: SQLite, or a PostgreSQL schema of its own reached through a second
  proxy (`cut_database` / `restore_database`: PostgreSQL away without touching the shared
  server);
- the simulated plant in this process (its PLCs restart and fail on command);
- the agent, the classifier and the records web service as child processes (`kill` sends
  SIGKILL, `start` starts one again, `stop` ends them all by PID).

It serves the chaos tests (tests/chaos) and the soak run (tests/soak), both async: the plant
and the proxies live in the caller's event loop, so nothing here blocks it for long.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agent.contract import EventSigner
from simulators.broker import EmbeddedBroker, free_port
from simulators.demo import agent_config, agent_signing_key, classifier_config
from simulators.plant import load_plant
from simulators.runtime import SimulatedPlant
from tests.delivery.proxy import TcpProxy

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"
#: The processes of the pipeline, in start order (stopped in reverse).
PROCESSES = ("classifier", "agent", "web")
#: Kafka client settings for a pipeline whose network is cut on purpose: a client retries at
#: least every 2 s (a site would keep the defaults; the behaviour is the same, only slower).
#: The request timeout stays at its default: a JoinGroup request waits at the broker for the
#: whole rebalance, which outlasts a short timeout (the classifier then never joins).
FAST_KAFKA = {"reconnect_backoff_max_s": 2.0, "retry_backoff_ms": 100}


@dataclass
class RecordsDb:
    """Where the records live: ``target`` for the processes (through the proxy, if any) and
    ``direct`` for the test's own reads (never cut)."""

    target: str
    direct: str
    schema: str | None = None
    proxy: TcpProxy | None = None


def postgres_records(dsn_host_port: tuple[str, int], schema: str, proxy_port: int) -> RecordsDb:
    """A PostgreSQL schema reached through a proxy on ``proxy_port`` (search_path in the DSN:
    every process uses the schema without knowing it)."""
    host, port = dsn_host_port
    options = f"?options=-csearch_path%3D{schema}"
    return RecordsDb(
        target=f"postgresql://postgres@127.0.0.1:{proxy_port}/test{options}",
        direct=f"postgresql://postgres@{host}:{port}/test{options}",
        schema=schema,
        proxy=TcpProxy(proxy_port, port),
    )


@dataclass
class FaultyPipeline:
    """See the module docstring. ``agent_settings`` / ``classifier_settings``: sections to
    merge into the generated configs (e.g. ``{"approvals": {"from_topic": True}}``)."""

    workdir: Path
    records: RecordsDb | None = None
    approvals_files: list[Path] = field(default_factory=list)
    agent_settings: dict[str, Any] = field(default_factory=dict)
    classifier_settings: dict[str, Any] = field(default_factory=dict)
    plant: SimulatedPlant | None = None
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    starts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.proxy_port = free_port()
        self.broker = EmbeddedBroker(advertised_port=self.proxy_port,
                                     log_path=self.workdir / "broker.log")
        self.kafka_proxy: TcpProxy | None = None
        self.web_port = free_port()
        self.signer: EventSigner | None = None
        if self.records is None:
            db = str(self.workdir / "records.db")
            self.records = RecordsDb(target=db, direct=db)

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap

    @property
    def db(self) -> RecordsDb:
        assert self.records is not None
        return self.records

    async def start(
        self, before_processes: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        """Broker and proxies, the plant, then the processes; returns once the agent has read
        every controller once (its ``ready`` file). ``before_processes`` runs once the broker
        is up (e.g. to publish what the agent must find on a topic when it starts)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.broker.start()
        self.kafka_proxy = await TcpProxy(self.proxy_port, self.broker.port).start()
        if self.db.proxy is not None:
            await self.db.proxy.start()
        plant_config = load_plant(CONFIG / "plant.yaml")
        self.plant = SimulatedPlant(plant_config, ports={c.id: 0 for c in
                                                         plant_config.controllers()},
                                    process=False)
        await self.plant.start()
        self._write_configs()
        if before_processes is not None:
            await before_processes()
        for name in PROCESSES:
            self.start_process(name)
        await self.wait_ready()

    def _write_configs(self) -> None:
        assert self.plant is not None
        agent = agent_config(self.plant.ports(), self.bootstrap, self.workdir)
        agent["kafka"].update(FAST_KAFKA)
        agent["approvals"]["files"] = [str(p) for p in self.approvals_files]
        _merge(agent, self.agent_settings)
        self.signer = agent_signing_key(self.workdir / "agent")
        classifier = classifier_config(self.bootstrap, self.workdir, self.signer)
        classifier["classifier"]["records_db"] = self.db.target
        classifier["kafka"].update(FAST_KAFKA)
        _merge(classifier, self.classifier_settings)
        (self.workdir / "agent.yaml").write_text(yaml.safe_dump(agent))
        (self.workdir / "classifier.yaml").write_text(yaml.safe_dump(classifier))

    def config_of(self, name: str) -> dict[str, Any]:
        """The config file the process ``agent`` or ``classifier`` runs with."""
        data: dict[str, Any] = yaml.safe_load((self.workdir / f"{name}.yaml").read_text())
        return data

    def _command(self, name: str) -> list[str]:
        if name == "agent":
            return ["agent.cli", "run", "--config", str(self.workdir / "agent.yaml")]
        if name == "classifier":
            return ["detectors.cli", "run", "--config", str(self.workdir / "classifier.yaml")]
        return ["detectors.web", "--db", self.db.target, "--port", str(self.web_port)]

    def start_process(self, name: str) -> subprocess.Popen[bytes]:
        """Start (or start again) one process; its output is appended to ``<name>.log``."""
        old = self.procs.get(name)
        assert old is None or old.poll() is not None, f"{name} is still running"
        with open(self.workdir / f"{name}.log", "ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", *self._command(name)], stdout=log,
                                    stderr=subprocess.STDOUT, cwd=ROOT)
        self.procs[name] = proc
        self.starts[name] = self.starts.get(name, 0) + 1
        return proc

    async def kill(self, name: str) -> None:
        """SIGKILL: no clean-up, no last flush; what a power cut or the OOM killer does."""
        proc = self.procs[name]
        proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(proc.wait, 10)

    async def terminate(self, name: str, within_s: float = 30.0) -> int:
        """SIGTERM and wait for the exit; returns the exit code."""
        proc = self.procs[name]
        proc.send_signal(signal.SIGTERM)
        return await asyncio.to_thread(proc.wait, within_s)

    def check_alive(self) -> None:
        """Raise naming the process (and its log) that died when it should not have."""
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited with code {proc.returncode}; see "
                                     f"{self.workdir / (name + '.log')}")

    async def wait_ready(self, within_s: float = 90.0) -> None:
        """Until the agent has read every controller (the file it writes then)."""
        ready = self.workdir / "agent" / "ready"
        await until(ready.exists, within_s, "the agent ready", self.check_alive)

    async def cut_kafka(self) -> None:
        assert self.kafka_proxy is not None
        await self.kafka_proxy.cut()

    async def restore_kafka(self) -> None:
        assert self.kafka_proxy is not None
        await self.kafka_proxy.restore()

    async def cut_database(self) -> None:
        assert self.db.proxy is not None, "the records are not behind a proxy"
        await self.db.proxy.cut()

    async def restore_database(self) -> None:
        assert self.db.proxy is not None
        await self.db.proxy.restore()

    def pids(self) -> dict[str, int]:
        """The PID of every running process, the broker's included."""
        found = {name: p.pid for name, p in self.procs.items() if p.poll() is None}
        if self.broker.process is not None:
            found["broker"] = self.broker.process.pid
        return found

    def metrics_port(self, name: str) -> int:
        return int(self.config_of(name)["metrics"]["port"])

    async def stop(self) -> None:
        """Every process by PID (SIGTERM, then SIGKILL after 15 s), the plant, the proxies and
        the broker; safe after a failed start."""
        for name in reversed(PROCESSES):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(proc.wait, 15)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait, 5)
        if self.plant is not None:
            await self.plant.stop()
        if self.kafka_proxy is not None:
            await self.kafka_proxy.stop()
        if self.db.proxy is not None:
            await self.db.proxy.stop()
        self.broker.stop()

    def log_text(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _merge(into: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


async def until(predicate: Callable[[], object], within_s: float, what: str,
                alive: Callable[[], None] | None = None, every_s: float = 0.2) -> Any:
    """Poll ``predicate`` (sync or async) until it returns something truthy, and return it;
    ``alive`` raises at once when a process the wait depends on has died."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if alive is not None:
            alive()
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within_s:.0f} s waiting for {what}")
        await asyncio.sleep(every_s)


async def scrape(port: int, name: str) -> float | None:
    """One sample (unlabelled) from a process's metrics endpoint; None while it does not
    answer or does not export it."""
    import aiohttp

    try:
        async with aiohttp.ClientSession() as session, session.get(
            f"http://127.0.0.1:{port}/metrics", timeout=aiohttp.ClientTimeout(total=3)
        ) as resp:
            text = await resp.text()
    except (aiohttp.ClientError, TimeoutError):
        return None
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def rss_kib(pid: int) -> int:
    """Resident memory of a process, KiB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))
