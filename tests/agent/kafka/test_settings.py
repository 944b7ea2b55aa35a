"""Kafka client settings: aiokafka kwargs, secrets from env or file, errors naming the key."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.kafka.errors import KafkaSettingsError
from agent.kafka.settings import KafkaSettings, SaslSettings, TlsSettings, TopicNames


def test_defaults_are_safe_for_real_kafka() -> None:
    kwargs = KafkaSettings().producer_kwargs()
    assert kwargs["acks"] == "all"
    assert kwargs["enable_idempotence"] is True
    assert kwargs["security_protocol"] == "PLAINTEXT"
    assert kwargs["compression_type"] is None
    assert "acks" not in KafkaSettings().consumer_kwargs()


def test_sasl_password_comes_from_env_or_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAFKA_PW", "from-env")
    env = KafkaSettings(
        sasl=SaslSettings(mechanism="SCRAM-SHA-256", username="agent", password_env="KAFKA_PW")
    )
    kwargs = env.producer_kwargs()
    assert kwargs["security_protocol"] == "SASL_PLAINTEXT"
    assert (kwargs["sasl_mechanism"], kwargs["sasl_plain_password"]) == (
        "SCRAM-SHA-256",
        "from-env",
    )
    (tmp_path / "pw").write_text("from-file\n")
    file = SaslSettings(username="agent", password_file=tmp_path / "pw")
    assert KafkaSettings(sasl=file).consumer_kwargs()["sasl_plain_password"] == "from-file"
    assert "from-env" not in repr(env)


@pytest.mark.parametrize(
    ("sasl", "message"),
    [
        ({"username": "u", "password": "literal"}, "Extra inputs are not permitted"),
        ({"username": "u"}, "exactly one of password_env"),
        ({"username": "u", "mechanism": "GSSAPI", "password_env": "X"}, "mechanism"),
    ],
)
def test_bad_sasl_config_is_refused(sasl: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        KafkaSettings.model_validate({"sasl": sasl})


def test_missing_secret_or_file_names_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    unset = KafkaSettings(sasl=SaslSettings(username="u", password_env="NOT_SET_ANYWHERE"))
    with pytest.raises(KafkaSettingsError, match=r"kafka\.sasl\.password_env .*NOT_SET_ANYWHERE"):
        unset.producer_kwargs()
    no_ca = KafkaSettings(tls=TlsSettings(ca_file=tmp_path / "missing.pem"))
    with pytest.raises(KafkaSettingsError, match=r"kafka\.tls\.ca_file: no such file"):
        no_ca.producer_kwargs()
    with pytest.raises(ValidationError, match=r"cert_file and tls\.key_file go together"):
        TlsSettings(cert_file=tmp_path / "a.crt")


def test_tls_and_sasl_together_is_sasl_ssl(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_PW", "pw")
    settings = KafkaSettings(
        tls=TlsSettings(check_hostname=False),
        sasl=SaslSettings(mechanism="PLAIN", username="u", password_env="KAFKA_PW"),
    )
    kwargs = settings.producer_kwargs()
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["ssl_context"].check_hostname is False  # type: ignore[attr-defined]


def test_compression() -> None:
    assert KafkaSettings(compression="gzip").producer_kwargs()["compression_type"] == "gzip"
    zstd = KafkaSettings(compression="zstd")
    if importlib.util.find_spec("cramjam") is None:
        with pytest.raises(KafkaSettingsError, match="needs the package cramjam"):
            zstd.producer_kwargs()
    else:
        assert zstd.producer_kwargs()["compression_type"] == "zstd"


def test_one_set_of_topic_names_for_every_process() -> None:
    from agent.config import AgentConfig
    from detectors.config import ClassifierConfig

    topics = TopicNames()
    assert topics.model_dump() == {
        "suspect": "otwatch.changes.suspect", "authorized": "otwatch.changes.authorized",
        "heartbeat": "otwatch.agents.heartbeat", "approvals": "otwatch.approvals",
        "approvals_used": "otwatch.approvals.used",
        "alerts": "otwatch.alerts", "records": "otwatch.records", "dlq": "otwatch.dlq",
        "containment": "otwatch.containment",
    }
    assert AgentConfig.model_fields["topics"].annotation is TopicNames
    assert ClassifierConfig.model_fields["topics"].annotation is TopicNames


def test_each_process_names_itself_unless_the_config_does() -> None:
    from agent.config import AgentConfig
    from detectors.config import ClassifierConfig

    agent = {"agent": {"id": "edge-01", "site": "plant-1", "state_dir": "/tmp/x"},
             "controllers": [{"id": "press-01", "protocol": "modbus", "host": "127.0.0.1",
                              "tags": [{"name": "sp", "table": "holding", "address": 0,
                                        "data_type": "int16", "kind": "setpoint"}]}]}
    client_id = "client_id"
    assert AgentConfig.model_validate(agent).kafka.producer_kwargs()[client_id] == "otwatch-agent"
    with_kafka = {**agent, "kafka": {"bootstrap_servers": "kafka-1:9092"}}
    assert AgentConfig.model_validate(with_kafka).kafka.client_id == "otwatch-agent"
    assert ClassifierConfig().kafka.client_id == "otwatch-classifier"
    assert ClassifierConfig.model_validate(
        {"kafka": {"bootstrap_servers": "kafka-1:9092"}}
    ).kafka.consumer_kwargs()[client_id] == "otwatch-classifier"
    named = ClassifierConfig.model_validate({"kafka": {"client_id": "classifier-plant-2"}})
    assert named.kafka.client_id == "classifier-plant-2"
    assert KafkaSettings().consumer_kwargs()[client_id] == "otwatch"
    assert KafkaSettings().named("otwatch-sim").client_id == "otwatch-sim"
