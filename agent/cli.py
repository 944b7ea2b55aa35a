"""`otwatch-agent`: run the edge agent, check its config, and manage approved change records."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from agent import __version__
from agent.config import AgentConfig, ModbusControllerConfig, load_agent_config
from agent.errors import ConfigError
from agent.runtime.errors import OtwatchError
from agent.runtime.logs import quiet_libraries, setup_logging
from agent.runtime.signals import run_event_loop, stop_on_signals
from agent.sources import modbus, opcua
from agent.state_cli import add_state_parsers, run_state_command

# `quiet_libraries` stays importable from here until detectors/containment_cli.py uses
# `agent.runtime.logs.setup_logging` (the merge repoints it; then drop it from this list).
__all__ = ["build_parser", "check", "main", "quiet_libraries", "run"]

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
    parser.add_argument("--version", action="version", version=f"otwatch-agent {__version__}")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")
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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    try:
        if args.command == "check":
            return check(load_agent_config(args.config))
        if args.command == "run":
            return run(load_agent_config(args.config))
        if args.command in ("keys", "spool"):
            return run_state_command(args, load_agent_config(args.config))
        return _approvals(args)
    except ConfigError as exc:
        print(f"otwatch-agent: configuration error\n{exc}", file=sys.stderr)
        return 2
    except OtwatchError as exc:
        print(f"otwatch-agent: {exc}", file=sys.stderr)
        return 1


def _approvals(args: argparse.Namespace) -> int:
    from agent.approvals.cli import run_approvals_command

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
    count = len(config.controllers)
    print(f"agent {config.agent.id} at site {config.agent.site}: {count} controllers")
    for ctl in config.controllers:
        watched = sum(1 for t in ctl.tags if t.kind is not None)
        print(
            f"- {ctl.id} ({ctl.protocol}, {ctl.endpoint}): {len(ctl.tags)} tags, {watched} watched"
        )
        if isinstance(ctl, ModbusControllerConfig):
            reads = modbus.describe_plan(ctl)
        else:
            reads = opcua.describe_plan(ctl)
        for line in reads:
            print(f"    {line}")
    print(f"approvals: {', '.join(str(p) for p in config.approvals.files) or 'none'}")
    print(f"kafka: {config.kafka.bootstrap_servers}; state: {config.agent.state_dir}")
    return 0


def run(config: AgentConfig) -> int:
    from agent.runner import Agent

    async def main_loop() -> None:
        agent = Agent(config)
        with stop_on_signals(agent.stop):
            await agent.run()

    run_event_loop(main_loop())
    return 0


if __name__ == "__main__":
    sys.exit(main())
