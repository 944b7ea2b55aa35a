"""``otwatch-tickets``: keep the linked tickets in the incident and quality tools in step with
the master records (the ticket outbox), and, with ``--bootstrap-servers``, publish every record
change on ``otwatch.records`` (`detectors.record_changes`).

Runs until SIGINT / SIGTERM. The records database must exist and be migrated (the classifier
or ``otwatch-records migrate`` does it). Exit codes: 0 stopped, 2 usage, config or database
problems (the message names the file, key and fix; secrets are never printed).

Example::

    OTWATCH_THEHIVE_API_KEY=… otwatch-tickets --db records.db --config config/tickets.yaml \\
        --bootstrap-servers 127.0.0.1:9092
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from prometheus_client import start_http_server

from agent.kafka.settings import KafkaSettings
from agent.runtime.build_info import set_build_info
from agent.runtime.cli import add_common_arguments, setup_logging_from
from agent.runtime.signals import stop_on_signals
from detectors.record_changes import DEFAULT_TOPIC, RecordChangePublisher
from detectors.records import RecordsError, TrailCursor, open_store
from detectors.records.target import sqlite_path
from detectors.records_db_env import RecordsDbEnvError, records_db_from_env
from detectors.tickets import TicketOutbox, TicketsConfig, TicketsConfigError, load

log = logging.getLogger("detectors.tickets")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otwatch-tickets",
        description="Linked tickets in TheHive, ServiceNow, Jira or a signed webhook, kept in "
                    "step with the master records; every record change on otwatch.records.")
    parser.add_argument("--db",
                        help="records database: SQLite path, sqlite:///abs/path or postgresql://; "
                             "default $OTWATCH_RECORDS_DB or the file $OTWATCH_RECORDS_DB_FILE "
                             "names (keeps a password off the command line)")
    parser.add_argument("--schema", help="PostgreSQL schema (default: the DSN's search_path)")
    parser.add_argument("--config", type=Path, help="tickets config (config/tickets.yaml)")
    parser.add_argument("--bootstrap-servers",
                        help="Kafka HOST:PORT[,…]: also publish every record change")
    parser.add_argument("--records-topic", default=DEFAULT_TOPIC,
                        help=f"default {DEFAULT_TOPIC}")
    parser.add_argument("--enable-idempotence", action="store_true",
                        help="idempotent producer (real Kafka; the embedded Tansu broker refuses)")
    add_common_arguments(parser)
    return parser


def check(args: argparse.Namespace) -> TicketsConfig | None:
    """The config (None without ``--config``); raises with a clear message."""
    if args.config is None and not args.bootstrap_servers:
        raise TicketsConfigError("nothing to do: give --config (ticket connectors) and/or "
                                 "--bootstrap-servers (record changes on otwatch.records)")
    path = sqlite_path(args.db)
    if path is not None and not path.is_file():
        raise RecordsError(f"no records database at {str(path)!r}; give --db an existing file")
    return None if args.config is None else load(args.config)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging_from(args)
    try:
        args.db = args.db or records_db_from_env(os.environ)
        if not args.db:
            raise TicketsConfigError("no records database: give --db or set $OTWATCH_RECORDS_DB "
                                     "(or $OTWATCH_RECORDS_DB_FILE)")
        config = check(args)
    except (TicketsConfigError, RecordsError, RecordsDbEnvError) as exc:
        print(f"otwatch-tickets: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_run(args, config))
    except (TicketsConfigError, RecordsError, ValueError) as exc:
        print(f"otwatch-tickets: {exc}", file=sys.stderr)
        return 2


async def _run(args: argparse.Namespace, config: TicketsConfig | None) -> int:
    set_build_info("tickets")
    outbox = None if config is None else TicketOutbox.open(args.db, config, schema=args.schema)
    if config is not None and config.metrics_port:
        start_http_server(config.metrics_port, addr=config.metrics_host)
    publisher = None
    if args.bootstrap_servers:
        kafka = KafkaSettings(bootstrap_servers=args.bootstrap_servers,
                              client_id="otwatch-tickets",
                              enable_idempotence=args.enable_idempotence)
        store = outbox.store if outbox is not None else open_store(args.db, schema=args.schema)
        publisher = RecordChangePublisher(
            store, TrailCursor.open(args.db, args.records_topic, schema=args.schema), kafka,
            topic=args.records_topic)
    stop = asyncio.Event()
    with stop_on_signals(stop.set):
        if outbox is not None:
            await outbox.start()
            log.info("ticket connectors: %s", ", ".join(r.name for r in outbox.relays) or "none")
        if publisher is not None:
            await publisher.start()
        try:
            await stop.wait()
        finally:
            if publisher is not None:
                await publisher.stop()
            if outbox is not None:
                await outbox.stop()
            elif publisher is not None:
                publisher.relay.store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
