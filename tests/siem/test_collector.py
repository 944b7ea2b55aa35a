"""The syslog sink against a real rsyslog on loopback (Debian's ``rsyslogd``; skipped, saying
why, where it is not installed): RFC 5424 over TLS (RFC 5425) and plain TCP, octet-counted,
read back from what rsyslog received and from how rsyslog itself parsed it."""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path
from typing import Any

import orjson
import pytest

from agent.runtime.backoff import Backoff
from detectors.alert_formats import alert_for
from detectors.alert_formats.syslog import SyslogHeader
from detectors.criteria import classify, load_criteria
from detectors.records import RecordOutcome
from detectors.siem import Collector, SyslogSink, syslog_frame
from tests.siem.parse import parse_cef, parse_syslog
from tests.siem.rsyslog import Rsyslog
from tests.support.certs import make_ca
from tests.support.events import make_event

pytestmark = pytest.mark.integration

CRITERIA = load_criteria(Path(__file__).parents[2] / "config" / "criteria.yaml")
HEADER = SyslogHeader(hostname="relay-test", facility="local4", procid="77")
HOSTILE = 'pipe| back\\ eq= nl\n cr\r cs1=forged \u00e9\U0001f525 \x07'


def alerts(n: int, **overrides: Any) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        event = make_event(tag={"name": f"sp_{i}"}, **overrides)
        outcome = RecordOutcome(event_id=event.event_id, record_id=f"NC-{i}",
                                ticket_id=f"SEC-{i}", created=True, duplicate=False)
        out.append(orjson.loads(orjson.dumps(
            alert_for(event, classify(event, CRITERIA), outcome))))
    return out


def collector_of(rsyslog: Rsyslog, *, ca: Path | None = None) -> Collector:
    context = None
    if rsyslog.tls:
        assert rsyslog.ca is not None
        context = ssl.create_default_context(cafile=str(ca or rsyslog.ca.cert))
    return Collector("127.0.0.1", rsyslog.port, context, connect_timeout_s=5, ack_timeout_s=10)


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "tcp"])
def test_the_collector_config_checks(tmp_path: Path, tls: bool) -> None:
    checked = Rsyslog(tmp_path, tls=tls).check()
    assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "tcp"])
async def test_rsyslog_receives_every_alert_as_rfc5424_with_its_cef_fields(
    tmp_path: Path, tls: bool
) -> None:
    sent = alerts(3, actor=HOSTILE, controller={"id": "plc|7=\\"})
    sent[1]["description"] = HOSTILE
    sent[2]["attack_techniques"] = ["T0836", "T0831"]
    with Rsyslog(tmp_path, tls=tls) as rsyslog:
        sink = SyslogSink(collector_of(rsyslog))
        try:
            frames = [syslog_frame(a, HEADER, 8192) for a in sent]
            assert await sink.deliver(frames, asyncio.Event())
        finally:
            await sink.close()
        raw = await asyncio.to_thread(rsyslog.wait_for, 3)
        parsed = rsyslog.parsed()
    for line, by_rsyslog, alert in zip(raw, parsed, sent, strict=True):
        ours = parse_syslog(line)
        assert (ours["pri"], ours["version"], ours["hostname"]) == ("163", "1", "relay-test")
        assert (ours["app_name"], ours["procid"], ours["msgid"]) == ("otwatch", "77", "alert")
        assert ours["timestamp"] == "2026-11-23T10:00:00.000000Z"
        # rsyslog's own RFC 5424 parser agrees on every field
        assert by_rsyslog["pri"] == "163" and by_rsyslog["hostname"] == "relay-test"
        assert (by_rsyslog["app_name"], by_rsyslog["msgid"]) == ("otwatch", "alert")
        assert by_rsyslog["msg"] == ours["msg"]
        cef = parse_cef(ours["msg"])
        ext = cef.extension
        assert ext["externalId"] == alert["alert_id"] and ext["cs3"] == alert["master_record"]
        assert ext["cs2"] == ",".join(alert["attack_techniques"])
        assert ext["dhost"] == "plc|7=\\"
        assert ext["suser"] == HOSTILE.replace("\x07", "\ufffd")
    assert parse_cef(parse_syslog(raw[1])["msg"]).extension["msg"] == HOSTILE.replace(
        "\x07", "\ufffd")


async def test_a_collector_that_is_not_there_is_an_outage_logged_once_until_it_comes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rsyslog = Rsyslog(tmp_path, tls=True)
    sink = SyslogSink(collector_of(rsyslog), backoff=Backoff(first_s=0.05, cap_s=0.2))
    frames = [syslog_frame(a, HEADER, 8192) for a in alerts(2)]
    caplog.set_level(logging.DEBUG, logger="detectors.siem")
    delivery = asyncio.create_task(sink.deliver(frames, asyncio.Event()))
    try:
        while sum(r.levelno == logging.DEBUG and "(still)" in r.message
                  for r in caplog.records) < 3:
            await asyncio.sleep(0.05)
        assert not delivery.done()
        await asyncio.to_thread(rsyslog.start)
        assert await asyncio.wait_for(delivery, 30)
        assert len(await asyncio.to_thread(rsyslog.wait_for, 2)) == 2
    finally:
        delivery.cancel()
        await sink.close()
        rsyslog.stop()
    errors = [r.message for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "not taking alerts" in errors[0]
    assert any("takes alerts again" in r.message for r in caplog.records
               if r.levelno == logging.INFO)


async def test_a_collector_with_a_certificate_we_do_not_trust_gets_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stranger = make_ca(tmp_path, "another-ca")
    stop = asyncio.Event()
    with Rsyslog(tmp_path / "collector", tls=True) as rsyslog:
        sink = SyslogSink(collector_of(rsyslog, ca=stranger.cert),
                          backoff=Backoff(first_s=0.05, cap_s=0.1))
        delivery = asyncio.create_task(
            sink.deliver([syslog_frame(alerts(1)[0], HEADER, 8192)], stop))
        while not any(r.levelno == logging.ERROR for r in caplog.records):
            await asyncio.sleep(0.05)
        stop.set()
        assert await asyncio.wait_for(delivery, 10) is False  # stopped, never delivered
        await sink.close()
        assert rsyslog.raw() == []
    (error,) = [r.message for r in caplog.records if r.levelno >= logging.ERROR]
    assert "CERTIFICATE_VERIFY_FAILED" in error


async def test_a_restarted_collector_gets_the_next_batch_on_a_new_connection(
    tmp_path: Path
) -> None:
    with Rsyslog(tmp_path, tls=False) as rsyslog:
        sink = SyslogSink(collector_of(rsyslog), backoff=Backoff(first_s=0.05, cap_s=0.2))
        try:
            first, second = alerts(2)
            assert await sink.deliver([syslog_frame(first, HEADER, 8192)], asyncio.Event())
            await asyncio.to_thread(rsyslog.wait_for, 1)
            await asyncio.to_thread(rsyslog.stop)
            await asyncio.to_thread(rsyslog.start)
            assert await asyncio.wait_for(
                sink.deliver([syslog_frame(second, HEADER, 8192)], asyncio.Event()), 30)
            got = await asyncio.to_thread(rsyslog.wait_for, 2)
        finally:
            await sink.close()
    ids = [parse_cef(parse_syslog(line)["msg"]).extension["externalId"] for line in got]
    assert ids[0] == first["alert_id"] and second["alert_id"] in ids[1:]
