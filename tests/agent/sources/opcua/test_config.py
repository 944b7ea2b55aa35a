"""OPC UA controller config: modes, security and auth checked at load time, naming key and fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from agent.config import OpcuaControllerConfig
from agent.errors import ConfigError
from agent.sources.opcua import OpcuaPollingSource, OpcuaSource, OpcuaSubscriptionSource
from agent.sources.opcua.config import OpcuaAuth
from agent.sources.opcua.security import read_password

TAG = {"name": "t", "kind": "setpoint", "node": "nsu=urn:x;s=T"}


def controller(**extra: Any) -> dict[str, Any]:
    return {"id": "oven-01", "protocol": "opcua", "endpoint": "opc.tcp://127.0.0.1:4840",
            "tags": [TAG], **extra}


def load(raw: dict[str, Any], base: Path | None = None) -> OpcuaControllerConfig:
    context = {"base_dir": base} if base is not None else None
    return OpcuaControllerConfig.model_validate(raw, context=context)


def error(raw: dict[str, Any], base: Path | None = None) -> str:
    with pytest.raises(ValidationError) as info:
        load(raw, base)
    return str(info.value)


def test_subscribe_is_the_default_and_poll_the_fallback() -> None:
    config = load(controller())
    assert config.mode == "subscribe" and config.security.policy == "None"
    assert type(OpcuaSource(config)) is OpcuaSubscriptionSource
    assert type(OpcuaSource(load(controller(mode="poll")))) is OpcuaPollingSource
    assert "mode" in error(controller(mode="push"))


def test_a_tag_may_set_its_own_sampling_interval() -> None:
    tag = {**TAG, "sampling_interval_ms": 500}
    assert load(controller(tags=[tag])).tags[0].sampling_interval_ms == 500


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    for name in ("client.der", "client.pem", "server.der"):
        (tmp_path / name).write_bytes(b"x")
    return tmp_path


def test_secure_config_resolves_files_against_the_config_directory(pki: Path) -> None:
    security = {"policy": "Basic256Sha256", "mode": "Sign", "certificate": "client.der",
                "private_key": "client.pem", "trust": ["server.der", "."]}
    config = load(controller(security=security), base=pki)
    assert config.security.certificate == pki / "client.der"
    assert config.security.trust == [pki / "server.der", pki]


@pytest.mark.parametrize(("security", "says"), [
    ({"mode": "Sign"}, "policy None takes no mode; fix: set policy: Basic256Sha256"),
    ({"policy": "Basic256Sha256", "certificate": "client.der", "private_key": "client.pem",
      "trust": ["server.der"]}, "needs mode; fix: add mode (Sign or SignAndEncrypt)"),
    ({"policy": "Basic256Sha256", "mode": "Sign", "certificate": "missing.der",
      "private_key": "client.pem", "trust": ["server.der"]},
     "security.certificate\n  Value error, file"),
    ({"policy": "Basic256Sha256", "mode": "Sign", "certificate": "client.der",
      "private_key": "client.pem"}, "needs a trust list; fix: add trust:"),
    ({"policy": "Basic256Sha256", "mode": "Sign", "certificate": "client.der",
      "private_key": "client.pem", "trust": ["nowhere/"]}, "security.trust"),
    ({"policy": "Basic128Rsa15"}, "security.policy"),
    ({"policy": "Basic256Sha256", "mode": "None"}, "security.mode"),
])
def test_security_errors_name_the_key_and_the_fix(
    pki: Path, security: dict[str, Any], says: str
) -> None:
    assert says in error(controller(security=security), base=pki)


def test_trust_any_server_must_be_said_explicitly(pki: Path) -> None:
    security = {"policy": "Basic256Sha256", "mode": "SignAndEncrypt", "certificate": "client.der",
                "private_key": "client.pem", "trust_any_server": True}
    assert load(controller(security=security), base=pki).security.trust_any_server


@pytest.mark.parametrize(("auth", "says"), [
    ({"username": "otwatch"}, "exactly one of password_env or password_file"),
    ({"username": "otwatch", "password_env": "A", "password_file": "client.pem"}, "exactly one"),
    ({"password_env": "A"}, "password_env without username"),
    ({"username": "otwatch", "password": "secret"}, "auth.password\n  Extra inputs"),
    ({"username": "otwatch", "password_file": "missing"}, "auth.password_file"),
])
def test_auth_errors_name_the_key_and_the_fix(pki: Path, auth: dict[str, Any], says: str) -> None:
    assert says in error(controller(auth=auth), base=pki)


def test_password_comes_from_the_environment_or_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTWATCH_TEST_OPCUA_PW", "s3cret")
    from_env = OpcuaAuth(username="u", password_env="OTWATCH_TEST_OPCUA_PW")
    assert read_password(from_env, "c") == "s3cret"
    (tmp_path / "pw").write_text("fromfile\n")
    auth = OpcuaAuth.model_validate({"username": "u", "password_file": "pw"},
                                    context={"base_dir": tmp_path})
    assert read_password(auth, "c") == "fromfile"
    assert read_password(OpcuaAuth(), "c") is None
    monkeypatch.delenv("OTWATCH_TEST_OPCUA_PW")
    with pytest.raises(ConfigError, match="OTWATCH_TEST_OPCUA_PW, which is not set; fix"):
        read_password(OpcuaAuth(username="u", password_env="OTWATCH_TEST_OPCUA_PW"), "c")
