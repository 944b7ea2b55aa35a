"""`otwatch-agent`: run the edge agent, check its config, and manage approved change records.

``otwatch-agent run`` ends in one line, whatever ends it: SIGINT or SIGTERM (exit 0, at any
moment from `main` on: the agent's stop line, or "stopped during start-up"), a start-up
failure (exit 2 for the config, 1 otherwise: what failed, the setting and the fix; the
traceback only with ``--log-level DEBUG``). The heavy modules (pydantic models, protocol
libraries, the spool) are imported inside `main`, once it has taken the signals over.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, NoReturn

from agent.errors import ConfigError
from agent.runtime.cli import add_common_arguments, setup_logging_from
from agent.runtime.errors import OtwatchError
from agent.state_cli import add_state_parsers

if TYPE_CHECKING:
    from agent.config import AgentConfig

__all__ = ["build_parser", "check", "entry", "main", "run"]

#: Set when a signal stopped `main` before the agent's event loop took the signals over.
_stopped_by_signal: list[bool] = []

EPILOG = """examples:
  otwatch-agent check --config config/agent.yaml     validate, print the compiled read plan
  otwatch-agent run --config config/agent.yaml       watch the controllers until Ctrl-C
  otwatch-agent approvals list --config config/agent.yaml
  otwatch-agent keys show --config config/agent.yaml     the public key the classifier trusts
  otwatch-agent spool show --config config/agent.yaml    queued and quarantined events
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otwatch-agent",
        description="The otwatch edge agent: reads OPC UA and Modbus controllers (never writes), "
        "checks every setpoint, recipe, program and mode change against the approved change "
        "records, and publishes each change to Kafka through a durable local spool.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_arguments(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="watch the configured controllers until stopped")
    run.add_argument("--config", required=True, help="agent config file (YAML)")
    check = sub.add_parser("check", help="validate a config and print the compiled read plan")
    check.add_argument("--config", required=True, help="agent config file (YAML)")
    _add_approvals(sub)
    add_state_parsers(sub)
    return parser


def _add_approvals(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from agent.approvals.cli import add_approvals_parser

    add_approvals_parser(sub)


def entry() -> NoReturn:
    """The ``otwatch-agent`` command: `main`, then exit with its status.

    After a stop by signal the process ends with ``os._exit`` (logs and streams flushed
    first): CPython 3.11 marks a `KeyboardInterrupt` raised inside ``eval``/``exec`` (which
    namedtuple and dataclass creation use while modules are imported) as unhandled even once
    it was caught, and would then end the process by SIGINT (status -2) after all.
    """
    code = main()
    if _stopped_by_signal:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    with _signals_interrupt() as stopped:
        try:
            return _command(build_parser().parse_args(argv))
        except KeyboardInterrupt:
            stopped.append(True)
            _stopped_by_signal.append(True)
            print("otwatch-agent: stopped during start-up", file=sys.stderr)
            return 0


@contextmanager
def _signals_interrupt() -> Iterator[list[bool]]:
    """SIGINT and SIGTERM raise `KeyboardInterrupt` until the agent's event loop takes them
    (`agent.runtime.signals.stop_on_signals`): a SIGTERM during start-up is a clean stop too,
    and a SIGINT ignored by the shell that started us still stops the agent. Once stopped
    that way, further signals are ignored while the process exits (a signal still pending
    would otherwise end it by SIGINT after all, exit status -2)."""
    stopped: list[bool] = []
    if threading.current_thread() is not threading.main_thread():
        yield stopped
        return
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stopped
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_IGN if stopped else handler)


def _interrupt(signum: int, frame: object) -> None:
    """Not `signal.default_int_handler`: asyncio's runner would take SIGINT over from it (and
    its way of re-raising the interrupt can end the process by SIGINT after all)."""
    raise KeyboardInterrupt


def _command(args: argparse.Namespace) -> int:
    from agent.config import load_agent_config

    setup_logging_from(args)
    if args.command == "run":
        return _run_command(args.config)
    try:
        if args.command == "check":
            return check(load_agent_config(args.config))
        if args.command in ("keys", "spool"):
            from agent.state_cli import run_state_command

            return run_state_command(args, load_agent_config(args.config))
        return _approvals(args)
    except OtwatchError as exc:
        return _failed(exc)


def _failed(exc: OtwatchError) -> int:
    if isinstance(exc, ConfigError):
        print(f"otwatch-agent: configuration error: {exc}", file=sys.stderr)
        return 2
    print(f"otwatch-agent: {exc}", file=sys.stderr)
    return 1


def _run_command(config_path: str) -> int:
    """``run``: every failure is one line."""
    from agent.config import load_agent_config

    try:
        return run(load_agent_config(config_path))
    except OtwatchError as exc:
        return _failed(exc)
    except Exception as exc:  # a bug: one line, and the traceback at DEBUG
        logging.getLogger("agent").debug("otwatch-agent run failed", exc_info=exc)
        print(
            f"otwatch-agent: failed: {type(exc).__name__}: {exc} (run with --log-level DEBUG "
            "for the traceback)", file=sys.stderr,
        )
        return 1


def _approvals(args: argparse.Namespace) -> int:
    from agent.approvals.cli import run_approvals_command
    from agent.config import load_agent_config

    config_path = getattr(args, "config", None)
    if config_path:
        config = load_agent_config(config_path)
        args.file = [*(getattr(args, "file", None) or []), *config.approvals.files]
        if hasattr(args, "trusted_key"):
            args.trusted_key = [*args.trusted_key, *config.approvals.trusted_keys]
        if hasattr(args, "require_signed"):
            args.require_signed = args.require_signed or config.approvals.require_signed
    return run_approvals_command(args)


def check(config: AgentConfig) -> int:
    """Print what the agent would read: requests per controller and the tags they cover."""
    from agent.config import ModbusControllerConfig
    from agent.sources import modbus, opcua

    count = len(config.controllers)
    print(f"agent {config.agent.id} at site {config.agent.site}: {count} controllers")
    for ctl in config.controllers:
        watched = sum(1 for t in ctl.tags if t.kind is not None)
        print(
            f"- {ctl.id} ({ctl.protocol}, {ctl.endpoint}): {len(ctl.tags)} tags, {watched} watched"
        )
        if isinstance(ctl, ModbusControllerConfig):
            reads = [
                *modbus.describe_connection(ctl, config.controllers),
                *modbus.describe_plan(ctl),
            ]
        else:
            reads = opcua.describe_plan(ctl)
        for line in reads:
            print(f"    {line}")
    print(f"approvals: {', '.join(str(p) for p in config.approvals.files) or 'none'}")
    print(f"kafka: {config.kafka.bootstrap_servers}; state: {config.agent.state_dir}")
    return 0


def run(config: AgentConfig) -> int:
    from agent.runner import Agent
    from agent.runtime.signals import run_event_loop, stop_on_signals

    async def main_loop() -> None:
        agent = Agent(config)
        with stop_on_signals(agent.stop):
            await agent.run()

    run_event_loop(main_loop())
    return 0


if __name__ == "__main__":
    entry()
