"""``python -m detectors.containment``: publish lot holds and releases to ``otwatch.containment``.

Runs until SIGINT / SIGTERM. The records database must exist and be migrated (this tool never
creates or migrates it); the cursor lives in its table ``containment_cursor``. Exit codes: 0
stopped, 2 usage or database problems.

Example::

    python -m detectors.containment --db .demo/records.db --bootstrap-servers 127.0.0.1:9092
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from agent.cli import quiet_libraries
from agent.kafka_settings import KafkaSettings
from detectors.containment import DEFAULT_TOPIC, ContainmentPublisher, TrailCursor
from detectors.records import RecordsError, open_store


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m detectors.containment",
        description="Publish the lot holds of master records, and their release, for the MES.",
    )
    parser.add_argument("--db", required=True,
                        help="records database: SQLite path, sqlite:///abs/path or postgresql://")
    parser.add_argument("--schema", help="PostgreSQL schema (default: the DSN's search_path)")
    parser.add_argument("--bootstrap-servers", required=True, help="Kafka HOST:PORT[,…]")
    parser.add_argument("--topic", default=DEFAULT_TOPIC, help=f"default {DEFAULT_TOPIC}")
    parser.add_argument("--interval-s", type=float, default=1.0,
                        help="seconds between trail polls when caught up (default 1)")
    parser.add_argument("--enable-idempotence", action="store_true",
                        help="idempotent producer (real Kafka; the embedded Tansu broker refuses)")
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"])
    return parser


def _check_db(target: str) -> None:
    if "://" not in target and not Path(target).is_file():
        raise RecordsError(f"no records database at {target!r}; give --db an existing file")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.interval_s <= 0:
        print("containment: --interval-s must be greater than 0", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_libraries()
    try:
        _check_db(args.db)
        store = open_store(args.db, schema=args.schema)
        if store.schema_version() == 0:
            raise RecordsError(f"records database {args.db!r} is not migrated; run the "
                               "classifier (or otwatch-records) against it first")
        cursor = TrailCursor.open(args.db, args.topic, schema=args.schema)
    except RecordsError as exc:
        print(f"containment: {exc}", file=sys.stderr)
        return 2
    kafka = KafkaSettings(bootstrap_servers=args.bootstrap_servers,
                          client_id="otwatch-containment",
                          enable_idempotence=args.enable_idempotence)
    publisher = ContainmentPublisher(store, cursor, kafka, topic=args.topic,
                                     interval_s=args.interval_s)
    try:
        asyncio.run(_serve(publisher))
    finally:
        cursor.close()
        store.close()
    return 0


async def _serve(publisher: ContainmentPublisher) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await publisher.start()
    waiter = asyncio.create_task(publisher.wait(), name="otwatch-containment-wait")
    stopper = asyncio.create_task(stop.wait(), name="otwatch-containment-signal")
    try:
        await asyncio.wait([waiter, stopper], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        await publisher.stop()
        await asyncio.wait([waiter, stopper], timeout=15)
    if waiter.done() and not waiter.cancelled() and waiter.exception() is not None:
        raise waiter.exception()  # type: ignore[misc]


if __name__ == "__main__":
    raise SystemExit(main())
