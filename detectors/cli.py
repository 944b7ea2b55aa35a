"""`otwatch-classifier`: consume suspect changes, apply the joint criteria, open master records."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from agent.runtime.build_info import set_build_info
from agent.runtime.cli import add_common_arguments, setup_logging_from
from agent.runtime.errors import OtwatchError
from agent.runtime.signals import run_event_loop, stop_on_signals
from agent.runtime.tasks import task_counter
from detectors.config import ClassifierConfig, check_records_db, load_classifier_config
from detectors.criteria import load_criteria
from detectors.criteria_table import add_criteria_parser, run_criteria_command
from detectors.errors import OtwatchDetectorError
from detectors.health import ASYNCIO_TASKS
from detectors.liveness import ConsumerProgress, serve_metrics
from detectors.records_db_env import RecordsDbEnvError, records_db_from_env
from detectors.signatures import load_agent_keys
from detectors.store_retry import redact

EPILOG = """examples:
  otwatch-classifier check --config config/classifier.yaml
  otwatch-classifier run --config config/classifier.yaml
  otwatch-classifier run --config config/classifier.yaml --records-db postgresql://user@db/otwatch
  otwatch-classifier criteria explain --criteria config/criteria.yaml
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otwatch-classifier",
        description="Reads suspect changes from Kafka (one consumer group; run several for "
        "scale-out), classifies each against the joint quality + security criteria, and "
        "opens one master record with a linked security ticket per incident.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_arguments(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("run", "run until stopped"), ("check", "validate config and criteria")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--config", required=True, help="classifier config file (YAML)")
        p.add_argument("--records-db", help="override classifier.records_db (a path, or a DSN "
                       "without a password; else $OTWATCH_RECORDS_DB or the file "
                       "$OTWATCH_RECORDS_DB_FILE names)")
        p.add_argument("--bootstrap-servers", help="override kafka.bootstrap_servers")
    add_criteria_parser(sub)
    return parser


def _apply_overrides(config: ClassifierConfig, args: argparse.Namespace) -> ClassifierConfig:
    """``--records-db``, else ``$OTWATCH_RECORDS_DB`` (or its ``_FILE``), over the config's
    ``classifier.records_db``; ``--bootstrap-servers`` over ``kafka.bootstrap_servers``."""
    records_db = args.records_db or records_db_from_env(os.environ)
    if records_db:
        section = config.classifier.model_copy(update={"records_db": records_db})
        config = config.model_copy(update={"classifier": section})
    if args.bootstrap_servers:
        kafka = config.kafka.model_copy(update={"bootstrap_servers": args.bootstrap_servers})
        config = config.model_copy(update={"kafka": kafka})
    return config


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging_from(args)
    if args.command == "criteria":
        return run_criteria_command(args)
    try:
        config = _apply_overrides(load_classifier_config(args.config), args)
        criteria = load_criteria(Path(config.classifier.criteria))
        if args.command == "check":
            check_records_db(config.classifier.records_db)
            keys = load_agent_keys(config.classifier)
            signed = ("required" if config.classifier.require_signed_events
                      else "checked where present")
            print(f"criteria {criteria.version}: {len(criteria.rules)} rules; "
                  f"records: {redact(config.classifier.records_db)}; "
                  f"kafka: {config.kafka.bootstrap_servers}; "
                  f"event signatures {signed}, {len(keys)} agent key(s) trusted")
            return 0
        return serve(config)
    except (OtwatchDetectorError, RecordsDbEnvError) as exc:
        print(f"otwatch-classifier: {exc}", file=sys.stderr)
        return 2
    except OtwatchError as exc:
        print(f"otwatch-classifier: {exc}", file=sys.stderr)
        return 1


def serve(config: ClassifierConfig, *, after_record: Callable[[], None] | None = None) -> int:
    """Run the classifier until SIGINT or SIGTERM: records store, metrics endpoint, service.

    ``after_record`` goes to `detectors.service.Classifier` (tests end the process there).
    """
    from detectors.service import Classifier
    from detectors.store_retry import RetryingStore

    criteria = load_criteria(Path(config.classifier.criteria))
    check_records_db(config.classifier.records_db)
    progress = ConsumerProgress(config.classifier.stall_after_s)
    if config.metrics.port:
        set_build_info("classifier")
        serve_metrics((config.metrics.host, config.metrics.port), progress)
    # Opened inside the loop, where SIGTERM is heard: a database that is not there yet is
    # waited for (one line per outage), and a stop meanwhile still exits 0.
    store = RetryingStore(config.classifier.records_db)

    async def main_loop() -> None:
        ASYNCIO_TASKS.set_function(task_counter())
        classifier = Classifier(config, criteria, store, after_record=after_record,
                                progress=progress)
        with stop_on_signals(classifier.stop):
            await classifier.run()

    try:
        run_event_loop(main_loop())
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
