"""A simulated OPC UA PLC that changes its own values at a fixed rate (a child of the benchmarks).

``python -m tests.bench.opcua_writer --tags N --rate R --ports-file P --log L``: serves the scale
plant's one OPC UA controller with N variables; once the file ``<L>.go`` exists it writes R
changes/s (in 100 slices per second, round robin over the tags, each value unique) on the server
side and appends ``<tag> <value> <unix time just before the write>`` per change to L. Stops on
SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from pathlib import Path

from asyncua import ua

from simulators.opcua_plc import OpcUaPLC
from simulators.plant import OpcUaController
from simulators.scale import scale_plant
from tests.bench._common import quiet_logs, run_loop

FIRST_VALUE = 1_000_000.0


async def serve(tags: int, rate: float, ports_file: Path, log: Path) -> None:
    ctrl = scale_plant(modbus=0, opcua=1, tags=tags).controllers()[0]
    assert isinstance(ctrl, OpcUaController)
    plc = OpcUaPLC(ctrl, 0)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await plc.start()
    try:
        ports_file.write_text(json.dumps({ctrl.id: plc.port}))
        nodes = [(t.name, plc._nodes[t.name]) for t in ctrl.tags]
        go = log.with_name(log.name + ".go")
        while not go.exists() and not stop.is_set():
            await asyncio.sleep(0.05)
        per_slice = max(1, round(rate / 100))
        value, i, next_t = FIRST_VALUE, 0, time.monotonic()
        with log.open("a") as out:
            while not stop.is_set():
                lines = []
                for _ in range(per_slice):
                    name, node = nodes[i % len(nodes)]
                    i += 1
                    value += 1
                    at = time.time()
                    await node.write_value(ua.Variant(value, ua.VariantType.Double))
                    lines.append(f"{name} {value:.0f} {at:.6f}\n")
                out.writelines(lines)
                next_t += 0.01
                await asyncio.sleep(max(0.0, next_t - time.monotonic()))
    finally:
        await plc.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tags", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=1_000)
    parser.add_argument("--ports-file", type=Path, required=True)
    parser.add_argument("--log", type=Path, required=True)
    args = parser.parse_args()
    quiet_logs()
    run_loop(serve(args.tags, args.rate, args.ports_file, args.log))


if __name__ == "__main__":
    main()
