"""``python -m detectors.containment``: publish lot holds and releases to ``otwatch.containment``.

Runs until SIGINT / SIGTERM. The records database must exist (this tool never creates or
migrates it); the cursor lives in its table ``relay_cursor`` (named after the topic). Services
start in any order, so a database that is not reachable or not migrated yet is waited for, up to
``--wait-for-schema-s`` (one WARNING line, then quiet until it is ready). Exit codes: 0
stopped, 2 usage or database problems (a missing SQLite file, or still not migrated when the
wait ran out).

Example::

    python -m detectors.containment --db .demo/records.db --bootstrap-servers 127.0.0.1:9092
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Sequence

from prometheus_client import start_http_server

from agent.kafka.settings import KafkaSettings
from agent.runtime.build_info import set_build_info
from agent.runtime.cli import add_common_arguments, setup_logging_from
from agent.runtime.signals import stop_on_signals
from detectors.containment import DEFAULT_TOPIC, ContainmentPublisher
from detectors.records import RecordsError, RecordStore, TrailCursor, open_store
from detectors.records.target import sqlite_path
from detectors.records_db_env import RecordsDbEnvError, records_db_from_env

log = logging.getLogger("detectors.containment")

#: How long the publisher waits for the classifier to migrate the records database by default.
DEFAULT_WAIT_FOR_SCHEMA_S = 120.0
#: How often it looks again while it waits.
SCHEMA_POLL_S = 0.5


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otwatch-containment",
        description="Publish the lot holds of master records, and their release, for the MES.",
    )
    parser.add_argument("--db", help="records database: SQLite path, sqlite:///abs/path or "
                        "postgresql:// without a password (default: $OTWATCH_RECORDS_DB, or the "
                        "file $OTWATCH_RECORDS_DB_FILE names: a DSN with its password)")
    parser.add_argument("--schema", help="PostgreSQL schema (default: the DSN's search_path)")
    parser.add_argument("--bootstrap-servers", required=True, help="Kafka HOST:PORT[,…]")
    parser.add_argument("--topic", default=DEFAULT_TOPIC, help=f"default {DEFAULT_TOPIC}")
    parser.add_argument("--interval-s", type=float, default=1.0,
                        help="seconds between trail polls when caught up (default 1)")
    parser.add_argument("--wait-for-schema-s", type=float, default=DEFAULT_WAIT_FOR_SCHEMA_S,
                        help="seconds to wait for the database to be reachable and migrated by "
                        f"the classifier (default {DEFAULT_WAIT_FOR_SCHEMA_S:.0f}; 0: no wait)")
    parser.add_argument("--enable-idempotence", action="store_true",
                        help="idempotent producer (real Kafka; the embedded Tansu broker refuses)")
    parser.add_argument("--metrics-host", default="127.0.0.1",
                        help="address of the Prometheus endpoint (default 127.0.0.1)")
    parser.add_argument("--metrics-port", type=int, default=0,
                        help="port of the Prometheus endpoint (default 0: none)")
    add_common_arguments(parser)
    return parser


def _check_db(target: str) -> None:
    path = sqlite_path(target)
    if path is not None and not path.is_file():
        raise RecordsError(f"no records database at {str(path)!r}; give --db an existing file")


def _usage_error(args: argparse.Namespace) -> str | None:
    if args.interval_s <= 0:
        return "--interval-s must be greater than 0"
    if args.wait_for_schema_s < 0:
        return "--wait-for-schema-s must be 0 or more"
    if not 0 <= args.metrics_port <= 65535:
        return "--metrics-port must be a port number (0: no endpoint)"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    problem = _usage_error(args)
    if problem is not None:
        print(f"otwatch-containment: {problem}", file=sys.stderr)
        return 2
    setup_logging_from(args)
    try:
        args.db = args.db or records_db_from_env(os.environ)
        if not args.db:
            raise RecordsError("no records database; fix: set OTWATCH_RECORDS_DB or "
                               "OTWATCH_RECORDS_DB_FILE (a DSN with a password), or give --db")
        _check_db(args.db)
    except (RecordsError, RecordsDbEnvError) as exc:
        print(f"otwatch-containment: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    if args.metrics_port:
        set_build_info("containment")
        start_http_server(args.metrics_port, addr=args.metrics_host)
    stop = asyncio.Event()
    with stop_on_signals(stop.set):
        return await _run_until_stopped(args, stop)


async def _run_until_stopped(args: argparse.Namespace, stop: asyncio.Event) -> int:
    try:
        opened = await wait_for_schema(args, stop)
    except RecordsError as exc:
        print(f"otwatch-containment: {exc}", file=sys.stderr)
        return 2
    if opened is None:  # stopped while waiting
        return 0
    store, cursor = opened
    kafka = KafkaSettings(bootstrap_servers=args.bootstrap_servers,
                          client_id="otwatch-containment",
                          enable_idempotence=args.enable_idempotence)
    publisher = ContainmentPublisher(store, cursor, kafka, topic=args.topic,
                                     interval_s=args.interval_s)
    try:
        await _serve(publisher, stop)
    finally:
        cursor.close()
        store.close()
    return 0


async def wait_for_schema(
    args: argparse.Namespace, stop: asyncio.Event
) -> tuple[RecordStore, TrailCursor] | None:
    """The store and the cursor once the database is migrated; None if stopped meanwhile.

    A retryable problem (database unreachable, schema not there yet) is retried every
    `SCHEMA_POLL_S` until ``args.wait_for_schema_s`` has passed; anything else, or the
    same problem after the wait, raises `RecordsError`.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + args.wait_for_schema_s
    waiting = False
    while True:
        try:
            opened = _open(args)
        except RecordsError as exc:
            if not exc.retryable:
                raise
            if loop.time() >= deadline:
                if not waiting:
                    raise
                raise RecordsError(f"{exc} (waited {args.wait_for_schema_s:.0f} s)") from exc
            _log_wait(exc, args.wait_for_schema_s, first=not waiting)
            waiting = True
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(SCHEMA_POLL_S, max(0.0, deadline - loop.time()))):
                    await stop.wait()
            if stop.is_set():
                return None
            continue
        if waiting:
            log.info("the records database is ready; publishing")
        return opened


def _log_wait(exc: RecordsError, wait_s: float, *, first: bool) -> None:
    if first:
        log.warning("waiting up to %.0f s for the records database (the classifier migrates "
                    "it): %s", wait_s, exc)
    else:
        log.debug("still waiting for the records database: %s", exc)


def _open(args: argparse.Namespace) -> tuple[RecordStore, TrailCursor]:
    """Open the store and the cursor (which checks the schema version); close both on failure."""
    store = open_store(args.db, schema=args.schema)
    try:
        return store, TrailCursor.open(args.db, args.topic, schema=args.schema)
    except BaseException:
        store.close()
        raise


async def _serve(publisher: ContainmentPublisher, stop: asyncio.Event) -> None:
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
