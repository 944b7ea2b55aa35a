"""A minimal agent for the SIGKILL test: append events to a spool and publish them.

Run as ``python -m tests.delivery.spool_agent SPOOL BOOTSTRAP --append N [--start I]``. It appends
events ``ev-<I>`` ... in batches while the publisher drains, printing ``seq=<last_seq>
depth=<depth>`` after each batch, then waits until the spool is empty and prints ``drained``.
``--append 0`` is "drain only". The test SIGKILLs it mid-publish and runs it again.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from agent.contract import SuspectChange
from agent.kafka.settings import KafkaSettings, TopicNames
from agent.publisher import SpoolPublisher
from agent.spool import Spool
from tests.delivery.waiting import eventually
from tests.support.events import numbered_event


def event_number(i: int) -> SuspectChange:
    """Event ``i``: a stable event_id the test can predict, one of four controllers."""
    return numbered_event(i, controller=f"press-{i % 4:02d}", event_id=f"ev-{i:06d}")


async def run(spool_path: Path, bootstrap: str, append: int, start: int, batch: int) -> None:
    spool = Spool(spool_path, topics=TopicNames())
    settings = KafkaSettings(bootstrap_servers=bootstrap, enable_idempotence=False)
    pub = SpoolPublisher(spool, settings, batch_size=batch)
    await pub.start()
    try:
        for first in range(start, start + append, batch):
            last = min(first + batch, start + append)
            spool.append([event_number(i) for i in range(first, last)])
            pub.wake()
            print(f"seq={spool.last_seq()} depth={spool.depth()}", flush=True)
            await asyncio.sleep(0.01)
        await eventually(lambda: spool.depth() == 0, 120)
        print(f"drained seq={spool.last_seq()}", flush=True)
    finally:
        await pub.stop()
        spool.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("spool", type=Path)
    parser.add_argument("bootstrap")
    parser.add_argument("--append", type=int, default=0)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(run(args.spool, args.bootstrap, args.append, args.start, args.batch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
