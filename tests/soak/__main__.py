"""`make soak`: the whole pipeline for a long while, the outage scenario playing over and over.

    SOAK_SECONDS=1800 make soak        # the default: 30 minutes
    SOAK_SECONDS=120 make soak         # a short run
    SOAK_SAMPLE_S=10                   # seconds between samples (default 10)
    SOAK_DIR=.soak                     # where the run lives (wiped first; logs kept after)

The broker, the agent, the classifier and the records web service run as processes
(`tests.chaos.harness.FaultyPipeline`, records in SQLite), the simulated plant in this process.
The outage scenario (dropped connections, Modbus exceptions, slow responses, a change while a
press is off the network, an OPC UA restart that renumbers namespaces, an unapproved change)
plays in cycles, its two values alternating so that every cycle really changes them. Every
``SOAK_SAMPLE_S`` the run samples each process's resident memory and open file descriptors,
the agent's spool depth, and the agent's and the classifier's asyncio task counts (their
metrics endpoints). At the end it checks, against the labels of every cycle, that no event was
lost and no record duplicated (`tests.chaos.accounting`), and that each figure stayed bounded
(`tests.soak.figures`); it prints the figures and exits 1 if anything failed.
"""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import sys
import time
from pathlib import Path

from agent.kafka.settings import TopicNames
from agent.runtime.logs import setup_logging
from simulators.player import play
from simulators.scenario import load_scenario
from simulators.scenario_model import Label, Scenario
from tests.chaos.accounting import Ledger, account, changes, read_ledger
from tests.chaos.harness import ROOT, FaultyPipeline, open_fds, rss_kib, scrape, until
from tests.soak.figures import Series, judge, table

TOPICS = TopicNames()
#: The outage scenario touches all three controllers: their monitoring gaps are explained.
FAULTED = ("press-01", "press-02", "oven-01")
#: Metrics sampled from each process's endpoint: (process, metric, figure).
SCRAPED = (
    ("agent", "otwatch_agent_spool_depth", "spool_depth"),
    ("agent", "otwatch_agent_asyncio_tasks", "asyncio_tasks"),
    ("classifier", "otwatch_classifier_asyncio_tasks", "asyncio_tasks"),
)


def setting(name: str, default: str) -> float:
    """A positive number of seconds from the environment; exits with a line naming it."""
    raw = os.environ.get(name, "") or default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        sys.exit(f"soak: {name}={raw!r} is not a number of seconds above 0; fix: e.g. "
                 f"{name}={default} make soak")
    return value


def cycle_of(base: Scenario, cycle: int) -> Scenario:
    """The scenario of one cycle: every value it sets shifted by 0.5 on odd cycles, so that
    each cycle changes what the one before set."""
    shift = 0.5 * (cycle % 2)
    actions = [a.model_copy(update={"value": a.value + shift})
               if isinstance(a.value, float) else a for a in base.actions]
    return base.model_copy(update={"actions": actions})


class Sampler:
    """Samples every figure of every process, every ``every_s`` seconds, until cancelled."""

    def __init__(self, pipeline: FaultyPipeline, every_s: float) -> None:
        self.pipeline = pipeline
        self.every_s = every_s
        self.series: dict[tuple[str, str], Series] = {}

    def add(self, process: str, figure: str, value: float | None) -> None:
        if value is None:
            return
        key = (process, figure)
        if key not in self.series:
            self.series[key] = Series(process, figure, judged=process != "broker")
        self.series[key].samples.append(value)

    async def sample(self) -> None:
        for name, pid in self.pipeline.pids().items():
            try:
                self.add(name, "rss_mib", rss_kib(pid) / 1024)
                self.add(name, "open_fds", float(open_fds(pid)))
            except OSError:
                continue  # it has just exited: check_alive says so
        for process, metric, figure in SCRAPED:
            self.add(process, figure, await scrape(self.pipeline.metrics_port(process), metric))

    async def run(self) -> None:
        while True:
            await self.sample()
            await asyncio.sleep(self.every_s)


async def settle(pipeline: FaultyPipeline, labels: list[Label]) -> tuple[Ledger, list[str]]:
    """Wait (bounded) until every labelled change is accounted for; the ledger and what is
    still wrong."""
    found: list[tuple[Ledger, list[str]]] = []

    async def accounted() -> bool:
        ledger = await read_ledger(pipeline.bootstrap, pipeline.db.direct,
                                   agent_topics=(TOPICS.suspect, TOPICS.authorized))
        found.append((ledger, account(labels, ledger, faulted=FAULTED)))
        return not found[-1][1]

    try:
        await until(accounted, 180, "every change accounted for", pipeline.check_alive, 3.0)
    except AssertionError:
        pass  # the problems say what is missing
    return found[-1]


async def soak(seconds: float, every_s: float, workdir: Path) -> int:
    approvals = workdir / "scenario-approvals.yaml"
    approvals.write_text("approvals: []\n")
    base = load_scenario(ROOT / "config" / "scenarios" / "outage.yaml")
    pipeline = FaultyPipeline(workdir, approvals_files=[approvals])
    labels: list[Label] = []
    started = time.monotonic()
    print(f"soak: {seconds:.0f} s of the outage scenario in cycles, a sample every {every_s:g} s "
          f"(logs in {workdir})", flush=True)
    try:
        await pipeline.start()
        assert pipeline.plant is not None
        sampler = Sampler(pipeline, every_s)
        sampling = asyncio.create_task(sampler.run(), name="soak-sampler")
        cycle = 0
        try:
            while time.monotonic() - started < seconds:
                cycle += 1
                labels += await play(pipeline.plant, cycle_of(base, cycle),
                                     labels_out=workdir / f"labels-{cycle:03d}.jsonl",
                                     approvals_out=approvals)
                pipeline.check_alive()
                print(f"  cycle {cycle}: {time.monotonic() - started:.0f} s", flush=True)
        finally:
            sampling.cancel()
            await asyncio.gather(sampling, return_exceptions=True)
        ledger, problems = await settle(pipeline, labels)
    finally:
        await pipeline.stop()
    return report(cycle, time.monotonic() - started, labels, ledger, problems, sampler)


def report(cycles: int, elapsed: float, labels: list[Label], ledger: Ledger,
           problems: list[str], sampler: Sampler) -> int:
    lost = [p for p in problems if p.startswith("lost")]
    duplicated = [p for p in problems if p.startswith("duplicated")]
    verdicts = [judge(s) for _, s in sorted(sampler.series.items())]
    print(f"\nsoak: {elapsed:.0f} s, {cycles} cycles, {len(changes(labels))} labelled changes, "
          f"{len(ledger.events)} events on the agents' topics, {len(ledger.records)} records "
          f"with {len(ledger.evidence_ids())} evidence items")
    print(f"lost events: {len(lost)}   duplicate records or evidence: {len(duplicated)}   "
          f"other problems: {len(problems) - len(lost) - len(duplicated)}")
    for problem in problems:
        print(f"  {problem}")
    print()
    print(table(verdicts))
    growing = [v for v in verdicts if not v.bounded]
    ok = not problems and not growing
    print(f"\nsoak: {'passed' if ok else 'FAILED'}")
    return 0 if ok else 1


def main() -> int:
    seconds = setting("SOAK_SECONDS", "1800")
    every = setting("SOAK_SAMPLE_S", "10")
    workdir = Path(os.environ.get("SOAK_DIR") or ROOT / ".soak")
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    # The plant runs in this process: its log (its libraries' quietened) goes to a file.
    with open(workdir / "plant.log", "a", encoding="utf-8") as plant_log:
        setup_logging("INFO", stream=plant_log)
        return asyncio.run(soak(seconds, every, workdir))


if __name__ == "__main__":
    sys.exit(main())
