"""``python -m detectors.web [--config FILE] [--db PATH_OR_DSN] [--host 127.0.0.1] [--port 8080]``.

Serves the records API and web UI until SIGTERM or SIGINT, then stops cleanly. The config file
(`detectors.web.config`, sample ``config/records-ui.yaml``) holds the database, the address,
TLS and the identity settings; ``--db``, ``--host`` and ``--port`` override it. Without a
database in either, the one every records command uses (``$OTWATCH_RECORDS_DB``, else
``.demo/records.db``). The service binds to the loopback address unless told otherwise.
``otwatch-records serve`` is the same service.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import ssl
import sys
from collections.abc import Mapping

from aiohttp import web

from agent.runtime.build_info import set_build_info
from agent.runtime.cli import add_common_arguments, setup_logging_from
from agent.runtime.signals import stop_on_signals
from detectors.identity import IdentityConfigError, IdentitySettings
from detectors.records import WorkflowSettings
from detectors.records.target import redact
from detectors.tickets import TicketsConfigError
from detectors.tickets import load as load_tickets
from detectors.tickets.inbound import InboundHook, inbound_hooks
from detectors.web.app import create_app
from detectors.web.config import RecordsServiceConfig, load_service_config

log = logging.getLogger("detectors.web")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m detectors.web", description="otwatch records API and web UI"
    )
    parser.add_argument("--config", help="service config (YAML): database, address, TLS, "
                        "identity; see config/records-ui.yaml")
    parser.add_argument("--db", help="records database: SQLite path, sqlite:///abs/path or "
                        "PostgreSQL DSN (overrides service.db)")
    parser.add_argument("--schema", default=None, help="PostgreSQL schema (PostgreSQL only)")
    parser.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port to bind (default 8080)")
    add_common_arguments(parser)
    return parser.parse_args(argv)


def settle_config(args: argparse.Namespace) -> RecordsServiceConfig:
    """The config file (or the defaults) with the command line's overrides."""
    config = load_service_config(args.config) if args.config else RecordsServiceConfig()
    service = config.service.model_copy(update={
        key: value for key, value in (("db", args.db), ("host", args.host), ("port", args.port),
                                      ("schema_name", args.schema)) if value is not None})
    if not service.db:  # the default of every records command (`otwatch-records`)
        from detectors.records.target import sqlite_path
        from detectors.records_cli import resolve_db
        from detectors.records_db_env import ENV_DB, RecordsDbEnvError

        try:
            default = resolve_db(None, dict(os.environ))
        except RecordsDbEnvError as exc:
            raise IdentityConfigError(str(exc)) from None
        path = sqlite_path(default)
        if path is not None and not path.is_file():
            raise IdentityConfigError(
                f"no records database: the default {default!r} does not exist; fix: pass "
                f"--db PATH_OR_DSN, set service.db in the config or {ENV_DB}, or run the demo")
        service = service.model_copy(update={"db": default})
    return config.model_copy(update={"service": service})


async def serve(db: str, host: str, port: int, schema: str | None = None, *,
                settings: IdentitySettings | None = None,
                tls: ssl.SSLContext | None = None,
                workflow: WorkflowSettings | None = None,
                inbound: Mapping[str, InboundHook] | None = None) -> None:
    """Run until SIGTERM/SIGINT; the store is closed by the app's cleanup."""
    set_build_info("records")
    app = create_app(db, schema=schema, settings=settings, tls=tls is not None,
                     workflow=workflow, inbound=inbound)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, ssl_context=tls).start()
        stop = asyncio.Event()
        with stop_on_signals(stop.set):
            scheme = "https" if tls else "http"
            log.info("records UI on %s://%s:%d/ (database %s)", scheme, host, port, redact(db))
            await stop.wait()
            log.info("stopping")
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging_from(args)
    try:
        config = settle_config(args)
    except IdentityConfigError as exc:
        log.error("%s", exc)
        return 2
    return serve_config(config)


def serve_config(config: RecordsServiceConfig) -> int:
    """Serve with a settled config until stopped: 0, or 2 for a TLS or address problem."""
    service = config.service
    try:
        tls = service.tls.context() if service.tls else None
        inbound = inbound_hooks(load_tickets(config.tickets)) if config.tickets else {}
    except (IdentityConfigError, TicketsConfigError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    assert service.db is not None
    try:
        asyncio.run(serve(service.db, service.host, service.port, service.schema_name,
                          settings=config.identity, tls=tls, workflow=config.workflow,
                          inbound=inbound))
    except OSError as exc:
        log.error("cannot serve on %s:%d: %s; pick a free port with --port", service.host,
                  service.port, exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
