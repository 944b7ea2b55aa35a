"""The SIEM relay through the real broker (Tansu) to a real rsyslog: what the classifier
writes on the alerts topic, in either format, reaches the collector as CEF; offsets are
committed only once the collector took a batch, so a collector outage loses nothing."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.runtime.backoff import Backoff
from detectors.alert_formats import alert_json, finding_json
from detectors.config import ClassifierConfig
from detectors.criteria import classify, load_criteria
from detectors.records import RecordOutcome
from detectors.siem import SiemRelay, SyslogSink, collector_for
from simulators.broker import EmbeddedBroker, free_port
from tests.detectors.running import (
    ROOT,
    classifier,
    create_topics,
    produce,
    read_topic,
    signed,
    wait_until,
    write_config,
)
from tests.siem.parse import parse_cef, parse_syslog
from tests.siem.rsyslog import Rsyslog
from tests.siem.test_ocsf import problems
from tests.support.events import make_event

pytestmark = pytest.mark.e2e
CRITERIA = load_criteria(ROOT / "config" / "criteria.yaml")
ALERTS = "otwatch.alerts"


def received_ids(rsyslog: Rsyslog) -> list[str]:
    return [parse_cef(parse_syslog(line)["msg"]).extension["externalId"]
            for line in rsyslog.raw()]


def alert_messages(n: int, fmt: str) -> list[tuple[bytes, bytes, str]]:
    encode = alert_json if fmt == "otwatch" else finding_json
    out = []
    for i in range(n):
        event = make_event(controller={"id": f"plc-{i % 3}"})
        outcome = RecordOutcome(event_id=event.event_id, record_id=f"NC-{i}", ticket_id=None,
                                created=i % 2 == 0, duplicate=False)
        out.append((event.kafka_key(), encode(event, classify(event, CRITERIA), outcome),
                    event.event_id))
    return out


def relay_config(bootstrap: str, rsyslog: Rsyslog, group: str) -> ClassifierConfig:
    return ClassifierConfig.model_validate({
        "kafka": {"bootstrap_servers": bootstrap, "enable_idempotence": False,
                  "topic_partitions": 4},
        "siem": {"host": "127.0.0.1", "port": rsyslog.port, "transport": "tcp",
                 "group_id": group, "batch_size": 50, "hostname": "relay-test"},
    })


@contextmanager
def relay_process(config: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m detectors.siem_cli run` (the `otwatch-siem` command), stopped by PID."""
    with open(config.parent / "relay.log", "ab") as log:
        relay = subprocess.Popen(
            [sys.executable, "-m", "detectors.siem_cli", "run", "--config", str(config)],
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        yield relay
    finally:
        relay.terminate()
        try:
            relay.wait(timeout=20)
        except subprocess.TimeoutExpired:
            relay.kill()
            relay.wait(timeout=5)


async def wait_for(predicate: Any, timeout_s: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def test_alerts_wait_for_a_collector_outage_and_are_committed_once_taken(
    broker: EmbeddedBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await create_topics(broker.bootstrap)
    native, ocsf = alert_messages(30, "otwatch"), alert_messages(30, "ocsf")
    garbage = (b"x", b'{"schema": "otwatch.alert/7"}')
    await produce(broker.bootstrap, ALERTS, [(k, v) for k, v, _ in native] + [garbage]
                  + [(k, v) for k, v, _ in ocsf])
    expected = {i for _, _, i in native + ocsf}
    rsyslog = Rsyslog(tmp_path, tls=False)  # down at first: an outage from the start
    config = relay_config(broker.bootstrap, rsyslog, "siem-outage")
    caplog.set_level(logging.INFO, logger="detectors.siem")
    stop = asyncio.Event()
    relay = SiemRelay(config, SyslogSink(collector_for(config.siem),
                                         backoff=Backoff(first_s=0.1, cap_s=0.5)))
    running = asyncio.create_task(relay.run(stop))
    try:
        await wait_for(lambda: any("not taking alerts" in r.message for r in caplog.records),
                       60, "the outage to be noticed")
        assert relay.forwarded == 0
        await asyncio.to_thread(rsyslog.start)
        await wait_for(lambda: expected <= set(received_ids(rsyslog)), 60, "every alert")
        await wait_for(lambda: relay.forwarded >= len(expected), 30, "the commit")
    finally:
        stop.set()
        await asyncio.wait_for(running, 30)
    errors = [r.message for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors  # one line for the whole outage
    dead = await read_topic(broker.bootstrap, "otwatch.dlq", lambda m: len(m) >= 1)
    assert dead[0]["topic"] == ALERTS and "not an alert" in dead[0]["reason"]

    # the same group again: the committed alerts are not sent twice, new ones are
    more = alert_messages(5, "otwatch")
    await produce(broker.bootstrap, ALERTS, [(k, v) for k, v, _ in more])
    before = len(rsyslog.raw())
    stop = asyncio.Event()
    relay = SiemRelay(config, SyslogSink(collector_for(config.siem)))
    running = asyncio.create_task(relay.run(stop))
    try:
        await wait_for(lambda: {i for _, _, i in more} <= set(received_ids(rsyslog)), 60,
                       "the new alerts")
    finally:
        stop.set()
        await asyncio.wait_for(running, 30)
        rsyslog.stop()
    assert sorted(received_ids(rsyslog)[before:]) == sorted(i for _, _, i in more)


async def test_classifier_writes_ocsf_and_the_relay_process_forwards_it_over_tls(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """The whole path: signed events -> classifier process (alerts.format: ocsf) -> alerts
    topic (valid OCSF) -> `otwatch-siem run` process -> rsyslog over TLS (CEF)."""
    await create_topics(broker.bootstrap)
    config = write_config(tmp_path, broker.bootstrap)
    cfg = yaml.safe_load(config.read_text())
    cfg["alerts"] = {"format": "ocsf"}
    events = [make_event(controller={"id": f"oven-{i}"}, actor="j.doe") for i in range(3)]
    with Rsyslog(tmp_path / "collector", tls=True) as rsyslog:
        assert rsyslog.ca is not None
        cfg["siem"] = {"host": "127.0.0.1", "port": rsyslog.port, "transport": "tls",
                       "tls": {"ca_file": str(rsyslog.ca.cert)}, "metrics_port": free_port(),
                       "hostname": "relay-e2e"}
        config.write_text(yaml.safe_dump(cfg))
        await produce(broker.bootstrap, "otwatch.changes.suspect", [signed(e) for e in events])
        with classifier(config), relay_process(config) as relay:
            await asyncio.to_thread(
                wait_until, lambda: len(rsyslog.raw()) >= 3 or None, 90,
                "three alerts at the collector", relay)
        assert relay.returncode == 0, (tmp_path / "relay.log").read_text()[-2000:]
        on_topic = await read_topic(broker.bootstrap, ALERTS, lambda m: len(m) >= 3)
    for finding in on_topic:
        assert problems(finding, "1.1.0") == []
    received = {}
    for line in rsyslog.raw():
        message = parse_syslog(line)
        assert message["hostname"] == "relay-e2e"
        cef = parse_cef(message["msg"])
        received[cef.extension["externalId"]] = cef
    assert set(received) == {e.event_id for e in events}
    for finding in on_topic:
        cef = received[finding["finding_info"]["uid"]]
        techniques = [a["technique"]["uid"] for a in finding["finding_info"]["attacks"]]
        assert "T0836" in techniques and cef.extension["cs2"] == ",".join(techniques)
        assert cef.signature_id == finding["finding_info"]["analytic"]["uid"]
        assert cef.extension["suser"] == "j.doe" == finding["actor"]["user"]["name"]
