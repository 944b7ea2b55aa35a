"""TLS: the broker behind stunnel with mutual TLS. The right client publishes; a wrong CA, no
client certificate or a certificate from another CA is refused with the setting to fix."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.kafka.errors import BrokerTlsError
from agent.kafka.settings import KafkaSettings, TlsSettings, TopicNames
from agent.kafka.tls_probe import diagnose_tls
from agent.publisher import SpoolPublisher
from agent.spool import Spool
from simulators.broker import EmbeddedBroker, free_port
from tests.delivery.checks import assert_delivered
from tests.delivery.kafka_read import read_topics
from tests.delivery.stunnel import TlsTerminator, stunnel_binary
from tests.delivery.waiting import eventually, wait_until_empty
from tests.support.certs import issue, make_ca
from tests.support.events import numbered_events

pytestmark = [pytest.mark.integration, pytest.mark.skipif(
    stunnel_binary() is None,
    reason="stunnel4/stunnel is not on PATH (apt-get install -y stunnel4; make test installs it)",
)]

KEY_PASSWORD_ENV = "OTWATCH_TEST_CLIENT_KEY_PASSWORD"


@dataclass(frozen=True)
class TlsSetup:
    bootstrap: str
    good: TlsSettings
    wrong_ca: TlsSettings
    no_client_cert: TlsSettings
    foreign_client_cert: TlsSettings

    def settings(self, tls: TlsSettings) -> KafkaSettings:
        return KafkaSettings(
            bootstrap_servers=self.bootstrap,
            enable_idempotence=False,
            tls=tls,
            request_timeout_ms=5000,
            reconnect_backoff_max_s=1.0,
        )


@pytest.fixture
def tls_broker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TlsSetup]:
    ca, other_ca = make_ca(tmp_path, "plant-ca"), make_ca(tmp_path, "other-ca")
    server = issue(ca, tmp_path, "broker", server=True)
    client = issue(ca, tmp_path, "agent-1", server=False, key_password=b"s3cret")
    foreign = issue(other_ca, tmp_path, "intruder", server=False)
    monkeypatch.setenv(KEY_PASSWORD_ENV, "s3cret")
    good = TlsSettings(
        ca_file=ca.cert,
        cert_file=client.cert,
        key_file=client.key,
        key_password_env=KEY_PASSWORD_ENV,
    )
    tls_port = free_port()
    with EmbeddedBroker(advertised_port=tls_port) as broker:
        terminator = TlsTerminator(
            tmp_path, tls_port, broker.port, server.cert, server.key, ca.cert
        )
        terminator.start()
        try:
            yield TlsSetup(
                bootstrap=f"127.0.0.1:{tls_port}",
                good=good,
                wrong_ca=good.model_copy(update={"ca_file": other_ca.cert}),
                no_client_cert=TlsSettings(ca_file=ca.cert),
                foreign_client_cert=TlsSettings(
                    ca_file=ca.cert, cert_file=foreign.cert, key_file=foreign.key
                ),
            )
        finally:
            terminator.stop()


async def test_mutual_tls_client_publishes(tls_broker: TlsSetup, tmp_path: Path) -> None:
    settings = tls_broker.settings(tls_broker.good)
    assert await diagnose_tls(settings) is None
    topics = TopicNames()
    spool = Spool(tmp_path / "spool.db", topics=topics)
    pub = SpoolPublisher(spool, settings)
    await pub.start()
    try:
        stored = spool.append(numbered_events(40))
        pub.wake()
        await wait_until_empty(spool)
    finally:
        await pub.stop()
        spool.close()
    consumer = settings.consumer_kwargs()
    bootstrap = str(consumer.pop("bootstrap_servers"))
    received = await read_topics(
        bootstrap, [topics.suspect, topics.authorized], until_count=len(stored), client=consumer
    )
    assert_delivered(stored, received, topics)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("wrong_ca", "kafka.tls.ca_file"),
        ("no_client_cert", "set kafka.tls.cert_file and kafka.tls.key_file"),
        ("foreign_client_cert", "the broker refused the client certificate kafka.tls.cert_file"),
    ],
)
async def test_refused_client_is_told_which_setting_to_fix(
    tls_broker: TlsSetup, tmp_path: Path, case: str, expected: str
) -> None:
    settings = tls_broker.settings(getattr(tls_broker, case))
    problem = await diagnose_tls(settings)
    assert isinstance(problem, BrokerTlsError)
    assert expected in str(problem)

    spool = Spool(tmp_path / "spool.db", topics=TopicNames())
    pub = SpoolPublisher(spool, settings)
    spool.append(numbered_events(5))
    await pub.start()
    try:
        assert await eventually(lambda: pub.last_error is not None, 15)
        assert expected in str(pub.last_error)
        assert not pub.connected
        assert spool.depth() == 5  # refused: nothing sent, nothing dropped
    finally:
        await pub.stop()
        spool.close()
