"""``otwatch-agent keys`` and ``otwatch-agent spool``: what the agent keeps in its state directory.

    otwatch-agent keys show --config agent.yaml       key id and public key, for the classifier
    otwatch-agent spool show --config agent.yaml      the queue and the quarantined events
    otwatch-agent spool requeue --config agent.yaml   quarantined events back into the queue

``keys show`` makes the agent's signing key if it has none yet (as the agent's first start
would), so the classifier can be told to trust it before the agent runs. ``spool requeue`` is
for when the cause of a quarantine is fixed (a broker that now takes larger messages); run it
while the agent is stopped.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # loaded when a command runs: `otwatch-agent` starts without them
    from agent.config import AgentConfig
    from agent.spool import Spool


def add_state_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("keys", help="the agent's event signing key")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    show = keys_sub.add_parser("show", help="print the key id and public key (made if absent)")
    show.add_argument("--config", required=True, help="agent config file (YAML)")
    spool = sub.add_parser("spool", help="the agent's spool: queue and quarantine")
    spool_sub = spool.add_subparsers(dest="spool_command", required=True)
    for name, text in (
        ("show", "print the queue depth and every quarantined event with its reason"),
        ("requeue", "put quarantined events back into the queue (agent stopped)"),
    ):
        cmd = spool_sub.add_parser(name, help=text)
        cmd.add_argument("--config", required=True, help="agent config file (YAML)")


def keys_show(config: AgentConfig) -> int:
    from agent.keys import key_path, load_signer

    signer, made = load_signer(config)
    where = "made now in" if made else "in"
    print(f"agent {config.agent.id}: event signing key {where} {key_path(config)}")
    print(f"key_id: {signer.key_id}")
    print(f"public_key: {signer.public_key_b64}")
    return 0


def spool_show(config: AgentConfig) -> int:
    spool = _open(config)
    try:
        print(f"spool {spool.path}: {spool.depth()} events queued, last seq {spool.last_seq()}")
        rows = spool.quarantined_rows()
        print(f"quarantine: {spool.quarantined()} events")
        for _id, seq, topic, size, at, reason in rows:
            when = datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")
            print(f"  seq {seq} to {topic}, {size} bytes, quarantined {when}: {reason}")
    finally:
        spool.close()
    return 0


def spool_requeue(config: AgentConfig) -> int:
    spool = _open(config)
    try:
        count = spool.requeue_quarantined()
    finally:
        spool.close()
    print(f"{count} quarantined events are queued again; the agent sends them when it runs")
    return 0


def _open(config: AgentConfig) -> Spool:
    from agent.spool import Spool

    return Spool(
        config.agent.state_dir / "spool.db", topics=config.topics,
        max_events=config.spool.max_events, max_bytes=config.spool.max_bytes,
    )


def run_state_command(args: argparse.Namespace, config: AgentConfig) -> int:
    if args.command == "keys":
        return keys_show(config)
    if args.spool_command == "show":
        return spool_show(config)
    return spool_requeue(config)
