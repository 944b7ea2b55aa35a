"""`otwatch-records verify` and `otwatch-records checkpoints ...`: tamper evidence from the
command line (see `detectors.records.tamper` and `detectors.records.checkpoints`).

Where the checkpoint settings come from, first found wins: the flags; the classifier config
given with ``--classifier-config`` (or ``$OTWATCH_CLASSIFIER_CONFIG``), section
``checkpoints`` and its ``kafka`` settings; the defaults (every 1000 entries, topic
``otwatch.checkpoints``). The public key may also come from ``$OTWATCH_CHECKPOINT_PUBLIC_KEY``.

Example::

    otwatch-records checkpoints keygen --out /etc/otwatch/checkpoint.key
    otwatch-records verify --public-key /etc/otwatch/checkpoint.key.pub
    otwatch-records verify --public-key K.pub --checkpoints-from kafka --bootstrap 127.0.0.1:9092
    otwatch-records checkpoints export --bootstrap 127.0.0.1:9092 --out checkpoints.jsonl
    otwatch-records verify --public-key K.pub --checkpoints-from checkpoints.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from agent.kafka.settings import KafkaSettings
from detectors.checkpoint_publisher import key_file, read_topic
from detectors.config import CheckpointsSection, load_classifier_config
from detectors.records.checkpoints import (
    CheckpointKeyError,
    CheckpointSigner,
    checkpoint_if_due,
    generate_key,
    load_export,
    read_checkpoints,
    read_public_key,
)
from detectors.records.store import RecordStore
from detectors.records.tamper import Outside, describe, verify_store

ENV_CLASSIFIER_CONFIG = "OTWATCH_CLASSIFIER_CONFIG"
ENV_PUBLIC_KEY = "OTWATCH_CHECKPOINT_PUBLIC_KEY"


def add_verify(sub: Any) -> None:
    p = sub.add_parser("verify", help="check the trail, its signed checkpoints, and every "
                       "record, ticket and evidence row against it (exit 1 if tampered)")
    p.add_argument("--public-key", type=Path, help="the checkpoint public key (keygen's .pub)")
    p.add_argument("--checkpoints-from", default="database", metavar="SOURCE",
                   help="database (default), kafka (the topic), or a file exported from it")
    p.add_argument("--checkpoint-every", type=int, metavar="N",
                   help="entries allowed after the newest checkpoint (checkpoints.every_entries)")
    _kafka_arguments(p)


def add_checkpoint_commands(sub: Any) -> None:
    cp = sub.add_parser("checkpoints", help="signed checkpoints of the audit trail's head")
    csub = cp.add_subparsers(dest="checkpoints_command", required=True, metavar="ACTION")
    p = csub.add_parser("keygen", help="make a signing key (mode 0600) and FILE.pub")
    p.add_argument("--out", type=Path, required=True, help="the private key file to create")
    csub.add_parser("list", help="the checkpoints in the database")
    p = csub.add_parser("sign", help="sign the trail's head now (the classifier does it "
                        "every N entries or M minutes)")
    p.add_argument("--key", type=Path, help="the private key (else $OTWATCH_CHECKPOINT_KEY or "
                   "checkpoints.key_file)")
    _kafka_arguments(p)
    p = csub.add_parser("export", help="copy the checkpoints on the Kafka topic to a file, "
                        "for verify --checkpoints-from FILE")
    p.add_argument("--out", type=Path, required=True)
    _kafka_arguments(p)


def _kafka_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--classifier-config", type=Path, help=f"classifier config for the "
                   f"checkpoints and kafka sections (else ${ENV_CLASSIFIER_CONFIG})")
    p.add_argument("--bootstrap", help="Kafka bootstrap servers (else the config's)")
    p.add_argument("--topic", help="checkpoint topic (else checkpoints.topic)")


def keygen(args: argparse.Namespace) -> int:
    """Runs without a database."""
    public, key_id = generate_key(args.out)
    print(f"checkpoint key {key_id} written to {args.out} (mode 0600); its public key to "
          f"{public}. Keep {args.out} off the database host's backups and readable by the "
          "records service only; give the .pub file to whoever runs verify.")
    return 0


def run_verify(store: RecordStore, args: argparse.Namespace, env: dict[str, str]) -> int:
    section, kafka = _settings(args, env)
    key_path = args.public_key or _env_path(env, ENV_PUBLIC_KEY) or section.public_key_file
    key = None if key_path is None else read_public_key(key_path)
    every = section.interval()
    if args.checkpoint_every is not None:
        every = type(every)(entries=args.checkpoint_every, seconds=every.seconds)
    outside = _outside(args.checkpoints_from, section, kafka)
    if outside is not None and key is None:
        raise CheckpointKeyError("--checkpoints-from needs the public key: pass --public-key")
    report = verify_store(store.database, key=key, every=every, outside=outside)
    for line in describe(report):
        print(line)
    return 0 if report.ok else 1


def run_checkpoints(store: RecordStore, args: argparse.Namespace, env: dict[str, str]) -> int:
    section, kafka = _settings(args, env)
    if args.checkpoints_command == "list":
        with store.database.read() as conn:
            for cp in read_checkpoints(conn):
                print(f"entry {cp.seq:>8}  {cp.hash[:16]}…  signed {cp.signed_at}  key "
                      f"{cp.key_id}  after entry {cp.previous}")
        return 0
    if args.checkpoints_command == "sign":
        path = args.key or key_file(section, env)
        if path is None:
            raise CheckpointKeyError("no checkpoint key: pass --key FILE or set "
                                     "$OTWATCH_CHECKPOINT_KEY")
        made = checkpoint_if_due(store.database, CheckpointSigner.from_file(path),
                                 section.interval(), now=datetime.now(UTC), force=True)
        print("nothing new to sign" if made is None else
              f"checkpoint: trail entry {made.seq} signed (key {made.key_id})")
        return 0
    found = asyncio.run(read_topic(kafka, section.topic))
    args.out.write_text("".join(orjson.dumps(c.message()).decode() + "\n" for c in found),
                        encoding="utf-8")
    print(f"{len(found)} checkpoints from {section.topic} written to {args.out}")
    return 0


def _outside(source: str, section: CheckpointsSection, kafka: KafkaSettings) -> Outside | None:
    if source == "database":
        return None
    if source == "kafka":
        try:
            found = asyncio.run(read_topic(kafka, section.topic))
        except TimeoutError:
            raise CheckpointKeyError(f"cannot read topic {section.topic!r} from "
                                     f"{kafka.bootstrap_servers} (no such topic, or the "
                                     "broker is not reachable)") from None
        return Outside(found, f"topic {section.topic}")
    return Outside(load_export(Path(source)), f"file {source}")


def _settings(args: argparse.Namespace, env: dict[str, str]
              ) -> tuple[CheckpointsSection, KafkaSettings]:
    named = getattr(args, "classifier_config", None)  # `checkpoints list` takes none
    config_path = named or _env_path(env, ENV_CLASSIFIER_CONFIG)
    if config_path is not None:
        config = load_classifier_config(config_path)
        section, kafka = config.checkpoints, config.kafka
    else:
        section, kafka = CheckpointsSection(), KafkaSettings(enable_idempotence=False)
    if getattr(args, "topic", None):
        section = section.model_copy(update={"topic": args.topic})
    if getattr(args, "bootstrap", None):
        kafka = kafka.model_copy(update={"bootstrap_servers": args.bootstrap})
    return section, kafka


def _env_path(env: dict[str, str], name: str) -> Path | None:
    value = env.get(name)
    return Path(value) if value else None
