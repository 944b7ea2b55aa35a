"""``python -m detectors.web --db PATH_OR_DSN [--host 127.0.0.1] [--port 8080]``.

Serves the records API and web UI until SIGTERM or SIGINT, then stops cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from aiohttp import web

from agent.runtime.logs import setup_logging
from agent.runtime.signals import stop_on_signals
from detectors.records.target import redact
from detectors.web.app import create_app

log = logging.getLogger("detectors.web")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m detectors.web", description="otwatch records API and web UI"
    )
    parser.add_argument("--db", required=True,
                        help="records database: SQLite path, sqlite:///abs/path or PostgreSQL DSN")
    parser.add_argument("--schema", default=None, help="PostgreSQL schema (PostgreSQL only)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to bind (default 8080)")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    return parser.parse_args(argv)


async def serve(db: str, host: str, port: int, schema: str | None = None) -> None:
    """Run until SIGTERM/SIGINT; the store is closed by the app's cleanup."""
    runner = web.AppRunner(create_app(db, schema=schema), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        stop = asyncio.Event()
        with stop_on_signals(stop.set):
            log.info("records UI on http://%s:%d/ (database %s)", host, port, redact(db))
            await stop.wait()
            log.info("stopping")
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.log_level)
    try:
        asyncio.run(serve(args.db, args.host, args.port, args.schema))
    except OSError as exc:
        log.error("cannot serve on %s:%d: %s; pick a free port with --port", args.host,
                  args.port, exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
