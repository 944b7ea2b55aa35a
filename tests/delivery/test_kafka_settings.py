"""Kafka client settings: aiokafka kwargs, secrets from env or file, errors naming the key."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.kafka_settings import KafkaSettings, KafkaSettingsError, SaslSettings, TlsSettings


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
