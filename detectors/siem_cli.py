"""`otwatch-siem`: relay alerts from the alerts topic to the SIEM's syslog collector, as CEF.

Reads the classifier's config file (the same ``kafka``, ``topics`` and its ``siem`` section).
Exit codes: 0 stopped, 2 config problems (named with the key and the fix).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from prometheus_client import start_http_server

from agent.runtime.build_info import set_build_info
from agent.runtime.cli import add_common_arguments, setup_logging_from
from agent.runtime.errors import OtwatchError
from agent.runtime.signals import run_event_loop, stop_on_signals
from detectors.alert_formats.sample import FORMATS, sample
from detectors.config import ClassifierConfig, load_classifier_config
from detectors.errors import OtwatchDetectorError

EPILOG = """examples:
  otwatch-siem check --config config/classifier.yaml
  otwatch-siem run --config config/classifier.yaml
  otwatch-siem sample --format cef
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otwatch-siem",
        description="Reads the alerts topic in its own consumer group and sends every alert as "
        "CEF in an RFC 5424 syslog message to the SIEM's collector (TLS or TCP), committing "
        "once the collector has taken it.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_arguments(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("run", "relay until stopped"), ("check", "validate the config")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--config", required=True, help="classifier config file (YAML)")
        p.add_argument("--bootstrap-servers", help="override kafka.bootstrap_servers")
    p = sub.add_parser("sample", help="print an example alert in one format")
    p.add_argument("--format", choices=FORMATS, default="cef",
                   help="otwatch, ocsf (what the alerts topic carries), cef (the CEF line) or "
                   "syslog (the framed RFC 5424 message as sent)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "sample":
        print(sample(args.format))
        return 0
    setup_logging_from(args)
    try:
        config = load_classifier_config(args.config)
        if args.bootstrap_servers:
            kafka = config.kafka.model_copy(update={"bootstrap_servers": args.bootstrap_servers})
            config = config.model_copy(update={"kafka": kafka})
        from detectors.siem.target import collector_for

        collector = collector_for(config.siem)
        if args.command == "check":
            print(f"alerts: {config.topics.alerts} (group {config.siem.group_id}) on "
                  f"{config.kafka.bootstrap_servers} -> syslog collector {collector} "
                  f"(facility {config.siem.facility}, CEF, at most "
                  f"{config.siem.max_message_bytes} bytes a message)")
            return 0
        return serve(config)
    except OtwatchDetectorError as exc:
        print(f"otwatch-siem: {exc}", file=sys.stderr)
        return 2
    except OtwatchError as exc:
        print(f"otwatch-siem: {exc}", file=sys.stderr)
        return 1


def serve(config: ClassifierConfig) -> int:
    """Relay until SIGINT or SIGTERM."""
    from detectors.siem.relay import SiemRelay
    from detectors.siem.sink import SyslogSink
    from detectors.siem.target import collector_for

    if config.siem.metrics_port:
        set_build_info("siem")
        start_http_server(config.siem.metrics_port, addr=config.siem.metrics_host)
    relay = SiemRelay(config, SyslogSink(collector_for(config.siem)))

    async def main_loop() -> None:
        stop = asyncio.Event()
        with stop_on_signals(stop.set):
            await relay.run(stop)

    run_event_loop(main_loop())
    return 0


if __name__ == "__main__":
    sys.exit(main())
