"""``otwatch-sim``: serve the simulated plant and play a scenario with ground-truth labels.

Examples::

    otwatch-sim run --plant config/plant.yaml --scenario config/scenarios/demo.yaml \\
        --labels-out labels.jsonl --approvals-out approvals.yaml --speed 2
    otwatch-sim run --plant config/plant.yaml --free-ports --ports-file ports.json --duration 60
    otwatch-sim check --plant config/plant.yaml config/scenarios/*.yaml
    otwatch-sim run --scale 100,10,50000 --shard 0/4 --ports-file ports-0.json   # x4 processes

Exit codes: 0 done (or stopped by SIGTERM/SIGINT), 2 bad config or arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from agent.runtime.cli import add_common_arguments, setup_logging_from
from agent.runtime.files import write_atomically
from agent.runtime.signals import stop_on_signals
from simulators.errors import SimulatorError
from simulators.plant import PlantConfig, load_plant
from simulators.runtime import SimulatedPlant
from simulators.scale import plant_to_dict, scale_plant, shard
from simulators.scenario import Label, Scenario, check_against, load_scenario, play

log = logging.getLogger("otwatch.sim")


def _port_override(text: str) -> tuple[str, int]:
    name, sep, port = text.partition("=")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected CONTROLLER=PORT, got {text!r}")
    return name, int(port)


def _scale(text: str) -> tuple[int, int, int]:
    parts = text.split(",")
    if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"expected MODBUS,OPCUA,TAGS like 100,10,50000: {text!r}")
    modbus, opcua, tags = (int(p) for p in parts)
    return modbus, opcua, tags


def _shard(text: str) -> tuple[int, int]:
    index, sep, count = text.partition("/")
    if not sep or not index.isdigit() or not count.isdigit():
        raise argparse.ArgumentTypeError(f"expected I/N like 0/4, got {text!r}")
    return int(index), int(count)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otwatch-sim",
        description="Simulated OPC UA and Modbus PLCs with scripted change scenarios.",
    )
    add_common_arguments(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="serve the plant; play a scenario if given")
    source = run.add_mutually_exclusive_group(required=True)
    source.add_argument("--plant", type=Path, help="plant YAML (config/plant.yaml)")
    source.add_argument(
        "--scale",
        type=_scale,
        metavar="MODBUS,OPCUA,TAGS",
        help="serve a generated scale plant, e.g. 100,10,50000 (free ports)",
    )
    run.add_argument(
        "--shard",
        type=_shard,
        metavar="I/N",
        default=(0, 1),
        help="serve only controllers n with n %% N == I (one process per shard)",
    )
    run.add_argument("--scenario", type=Path, help="scenario YAML (config/scenarios/*.yaml)")
    run.add_argument("--labels-out", type=Path, help="write one JSON ground-truth line per action")
    run.add_argument("--approvals-out", type=Path, help="write approval records (agent format)")
    run.add_argument(
        "--duration", type=float, default=0.0, help="serve at least S seconds (no scenario: S)"
    )
    run.add_argument("--hold", type=float, default=0.0, help="keep serving S s after the timeline")
    run.add_argument("--speed", type=float, default=1.0, help="play the timeline X times faster")
    run.add_argument("--ports-file", type=Path, help='write {"controller": port} JSON when up')
    run.add_argument(
        "--port",
        type=_port_override,
        action="append",
        default=[],
        metavar="CONTROLLER=PORT",
        help="override a port (0 = free port)",
    )
    run.add_argument("--free-ports", action="store_true", help="every controller on a free port")
    run.add_argument(
        "--start-when-exists",
        type=Path,
        metavar="FILE",
        help="start the scenario only once FILE exists (e.g. the agent is ready)",
    )
    run.add_argument("--no-process", action="store_true", help="do not advance lots")
    gen = sub.add_parser("scale-plant", help="write a generated scale plant as YAML")
    gen.add_argument("--modbus", type=int, default=100, help="Modbus controllers (100)")
    gen.add_argument("--opcua", type=int, default=10, help="OPC UA servers (10)")
    gen.add_argument("--tags", type=int, default=50_000, help="tags in total (50000)")
    gen.add_argument("--out", type=Path, required=True, help="YAML file to write")
    check = sub.add_parser("check", help="validate the plant and scenario files, then exit")
    check.add_argument("--plant", type=Path, required=True)
    check.add_argument("scenarios", type=Path, nargs="*")
    return parser


def _ports(args: argparse.Namespace, plant: PlantConfig) -> dict[str, int]:
    free = args.free_ports or args.scale is not None
    ports = {c.id: 0 for c in plant.controllers()} if free else {}
    ports.update(dict(args.port))
    return ports


def _write_json(path: Path, data: object) -> None:
    write_atomically(path, json.dumps(data, indent=2) + "\n", durable=False)


async def _wait_for_file(path: Path, stop: asyncio.Event) -> bool:
    """True once ``path`` exists; False if asked to stop first."""
    while not await asyncio.to_thread(path.exists):
        if stop.is_set():
            return False
        await asyncio.sleep(0.1)
    return True


async def _sleep_or_stop(seconds: float, stop: asyncio.Event) -> None:
    if seconds > 0:
        try:
            await asyncio.wait_for(stop.wait(), timeout=seconds)
        except TimeoutError:
            pass


async def _play_or_stop(
    plant: SimulatedPlant, scenario: Scenario, args: argparse.Namespace, stop: asyncio.Event
) -> list[Label]:
    """Play the scenario unless a signal arrives first (then the play task is cancelled)."""
    task = asyncio.create_task(
        play(plant, scenario, args.labels_out, args.approvals_out, speed=args.speed)
    )
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pending in (task, stopper):
            pending.cancel()
        await asyncio.gather(task, stopper, return_exceptions=True)
    return task.result() if not task.cancelled() else []


async def _run(
    args: argparse.Namespace, plant_config: PlantConfig, scenario: Scenario | None
) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    with stop_on_signals(stop.set):
        async with SimulatedPlant(
            plant_config, _ports(args, plant_config), process=not args.no_process
        ) as plant:
            for cid in plant.controllers():
                log.info("%s listening at %s", cid, plant.endpoint(cid))
            if args.ports_file:
                _write_json(args.ports_file, plant.ports())
            started = loop.time()
            if scenario is not None and (
                args.start_when_exists is None or await _wait_for_file(args.start_when_exists, stop)
            ):
                started = loop.time()
                labels = await _play_or_stop(plant, scenario, args, stop)
                log.info("scenario %s done: %d actions", scenario.name, len(labels))
                await _sleep_or_stop(args.hold, stop)
            if scenario is None and not args.duration:
                await stop.wait()
            await _sleep_or_stop(started + args.duration - loop.time(), stop)
    return 0


def _check(args: argparse.Namespace) -> int:
    plant = load_plant(args.plant)
    for path in args.scenarios:
        check_against(plant, load_scenario(path), str(path))
    print(f"ok: {args.plant} and {len(args.scenarios)} scenario(s)")
    return 0


def _plant(args: argparse.Namespace) -> PlantConfig:
    if args.scale is not None:
        return scale_plant(*args.scale)
    return load_plant(args.plant)


def _write_scale_plant(args: argparse.Namespace) -> int:
    plant = scale_plant(args.modbus, args.opcua, args.tags)
    args.out.write_text(yaml.safe_dump(plant_to_dict(plant), sort_keys=False), encoding="utf-8")
    print(f"wrote {args.out}: {len(plant.controllers())} controllers, {args.tags} tags")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``otwatch-sim`` console script."""
    args = build_parser().parse_args(argv)
    setup_logging_from(args, fmt="otwatch-sim: %(message)s")
    try:
        if args.command == "check":
            return _check(args)
        if args.command == "scale-plant":
            return _write_scale_plant(args)
        plant = shard(_plant(args), *args.shard)
        scenario = load_scenario(args.scenario) if args.scenario else None
        if scenario is not None:
            check_against(plant, scenario, str(args.scenario))
        if args.speed <= 0:
            raise SimulatorError(f"--speed must be > 0, got {args.speed}")
        return asyncio.run(_run(args, plant, scenario))
    except SimulatorError as exc:
        print(f"otwatch-sim: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
