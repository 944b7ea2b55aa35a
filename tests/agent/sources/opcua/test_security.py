"""Secure channels and user identity against a real in-process asyncua server.

One server (started once for the module: an asyncua server takes seconds to start) offers
None, Basic256Sha256 Sign and Basic256Sha256 SignAndEncrypt, trusts one client certificate,
and knows one user. Certificates are generated, CA-less and self-signed, for every run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from asyncua import ua
from asyncua.common.callback import CallbackType, ServerItemCallback
from asyncua.common.node import Node
from asyncua.common.utils import ServiceError
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.server import Server
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.status_codes import StatusCodes
from cryptography import x509

from agent.config import OpcuaControllerConfig
from agent.sources.base import Connected, Readings
from agent.sources.opcua import OpcuaSource
from agent.sources.opcua.security import ServerNotTrusted
from agent.sources.opcua.session import (
    OpcuaSession,
    close_quietly,
    describe,
    open_session,
    read_all,
)
from simulators.broker import free_port
from tests.agent.sources.running import Recorder, changes, is_complete
from tests.support.certs import make_cert

pytestmark = pytest.mark.asyncio(loop_scope="module")

NAMESPACE = "urn:otwatch:test:secure"
USER, PASSWORD = "otwatch", "s3cret-not-in-any-config"


@dataclass
class Pki:
    dir: Path
    server_cert: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path      # a client the server does not trust
    stranger_key: Path
    other_server_cert: Path  # a server certificate that is not this server's


@dataclass
class SecureServer:
    endpoint: str
    pki: Pki
    setpoint: Node
    server: Server
    foreign_writes: int = 0


class OneUser:
    """Anonymous, or the one user with the right password."""

    def get_user(self, iserver: Any, username: str | None = None, password: str | None = None,
                 certificate: Any = None) -> User | None:
        if username is None or (username == USER and password == PASSWORD):
            return User(role=UserRole.User)
        return None


def make_pki(directory: Path) -> Pki:
    server_cert, _ = make_cert(directory, "server", "urn:otwatch:test:server",
                                        client=False)
    client_cert, client_key = make_cert(directory, "client", "urn:otwatch:test:agent", client=True)
    stranger_cert, stranger_key = make_cert(directory, "stranger", "urn:otwatch:test:stranger",
                                            client=True)
    other_cert, _ = make_cert(directory, "other-server", "urn:otwatch:test:other", client=False)
    return Pki(directory, server_cert, client_cert, client_key, stranger_cert, stranger_key,
               other_cert)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def secure(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SecureServer]:
    pki = make_pki(tmp_path_factory.mktemp("pki"))
    trusted_client = x509.load_der_x509_certificate(pki.client_cert.read_bytes())

    async def only_our_agent(cert: x509.Certificate, app: ua.ApplicationDescription) -> None:
        if cert != trusted_client:
            raise ServiceError(StatusCodes.BadCertificateUntrusted)

    port = free_port()
    server = Server(user_manager=OneUser())  # type: ignore[arg-type]
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/secure")
    server.set_security_policy([
        ua.SecurityPolicyType.NoSecurity,
        ua.SecurityPolicyType.Basic256Sha256_Sign,
        ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
    ])
    await server.load_certificate(str(pki.server_cert))
    await server.load_private_key(str(pki.dir / "server-key.pem"))
    server.set_certificate_validator(only_our_agent)
    idx = await server.register_namespace(NAMESPACE)
    line = await server.nodes.objects.add_folder(f"ns={idx};s=Line", "Line")
    setpoint = await line.add_variable(f"ns={idx};s=Line.Setpoint", "Setpoint", 42.0)
    running = SecureServer(f"opc.tcp://127.0.0.1:{port}/secure", pki, setpoint, server)

    def count_writes(event: ServerItemCallback, dispatcher: Any) -> None:
        if event.is_external:
            running.foreign_writes += len(event.request_params.NodesToWrite)

    server.subscribe_server_callback(CallbackType.PreWrite, count_writes)
    await server.start()
    try:
        yield running
    finally:
        await server.stop()
    assert running.foreign_writes == 0, "the agent wrote to the secure server"


def config(secure: SecureServer, *, security: dict[str, Any] | None = None,
           auth: dict[str, Any] | None = None, **extra: Any) -> OpcuaControllerConfig:
    raw = {
        "id": "secure-01", "protocol": "opcua", "endpoint": secure.endpoint, "timeout_s": 5,
        "reconnect_max_s": 0.5, "publishing_interval_ms": 100,
        "tags": [{"name": "setpoint", "kind": "setpoint",
                  "node": f"nsu={NAMESPACE};s=Line.Setpoint"}],
        "security": security or {}, "auth": auth or {}, **extra,
    }
    return OpcuaControllerConfig.model_validate(raw, context={"base_dir": secure.pki.dir})


def signed(mode: str = "SignAndEncrypt", cert: str = "client.der", key: str = "client-key.pem",
           **extra: Any) -> dict[str, Any]:
    return {"policy": "Basic256Sha256", "mode": mode, "certificate": cert, "private_key": key,
            **extra}


async def read_once(cfg: OpcuaControllerConfig) -> dict[str, object]:
    session: OpcuaSession = await open_session(cfg)
    try:
        return {k: r.value for k, r in (await read_all(session, cfg.id)).items()}
    finally:
        await close_quietly(session.client)


@pytest.mark.parametrize("mode", ["Sign", "SignAndEncrypt"])
async def test_each_secure_mode_connects_with_the_trusted_certificates(
    secure: SecureServer, mode: str
) -> None:
    cfg = config(secure, security=signed(mode, trust=["server.der"]))
    assert await read_once(cfg) == {"setpoint": 42.0}


async def test_the_trust_list_may_be_a_directory(secure: SecureServer, tmp_path: Path) -> None:
    (tmp_path / "server.der").write_bytes(secure.pki.server_cert.read_bytes())
    cfg = config(secure, security=signed("Sign", trust=[str(tmp_path)]))
    assert await read_once(cfg) == {"setpoint": 42.0}


async def test_an_untrusted_server_is_refused_before_any_credential_is_sent(
    secure: SecureServer,
) -> None:
    cfg = config(secure, security=signed(trust=["other-server.der"]),
                 auth={"username": USER, "password_env": "OTWATCH_TEST_NEVER_READ"})
    with pytest.raises(ServerNotTrusted) as info:
        await read_once(cfg)
    message = str(info.value)
    assert "CN=server" in message and "sha256 " in message
    assert "fix: add the server certificate (or its CA) to security.trust" in message


async def test_trust_any_server_accepts_an_unlisted_server(secure: SecureServer) -> None:
    cfg = config(secure, security=signed(trust_any_server=True))
    assert await read_once(cfg) == {"setpoint": 42.0}


async def test_a_client_certificate_the_server_does_not_trust_is_refused_clearly(
    secure: SecureServer,
) -> None:
    cfg = config(secure, security=signed(cert="stranger.der", key="stranger-key.pem",
                                         trust=["server.der"]))
    with pytest.raises(Exception) as info:
        await read_once(cfg)
    assert "BadCertificateUntrusted" in describe(info.value)
    assert "fix: trust the client certificate (security.certificate) on the server" in describe(
        info.value)


async def test_username_and_password_from_a_file(secure: SecureServer, tmp_path: Path) -> None:
    (tmp_path / "password").write_text(PASSWORD + "\n")
    auth = {"username": USER, "password_file": str(tmp_path / "password")}
    cfg = config(secure, security=signed(trust=["server.der"]), auth=auth)
    assert await read_once(cfg) == {"setpoint": 42.0}


async def test_a_wrong_password_is_refused_and_never_logged(
    secure: SecureServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("OTWATCH_TEST_SECURE_PW", "wrong-password-xyz")
    cfg = config(secure, auth={"username": USER, "password_env": "OTWATCH_TEST_SECURE_PW"})
    with pytest.raises(Exception) as info:
        await read_once(cfg)
    assert describe(info.value) == ("the server refused the session (BadUserAccessDenied); "
                                    "fix: check auth.username and its password")
    assert "wrong-password-xyz" not in caplog.text


async def test_policy_none_with_username_from_the_environment(
    secure: SecureServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTWATCH_TEST_SECURE_PW", PASSWORD)
    cfg = config(secure, auth={"username": USER, "password_env": "OTWATCH_TEST_SECURE_PW"})
    assert await read_once(cfg) == {"setpoint": 42.0}


async def test_an_untrusted_server_is_logged_once_per_outage(
    secure: SecureServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="agent.sources.opcua.source")
    cfg = config(secure, security=signed(trust=["other-server.der"]))

    def ours(level: int) -> list[logging.LogRecord]:
        return [r for r in caplog.records
                if r.name == "agent.sources.opcua.source" and r.levelno == level]

    async with Recorder(OpcuaSource(cfg)) as rec:
        for _ in range(150):  # until the second failed attempt; bounded: 15 s
            if ours(logging.DEBUG):
                break
            await asyncio.sleep(0.1)
    assert len(ours(logging.ERROR)) == 1 and ours(logging.DEBUG)
    assert "not in security.trust" in ours(logging.ERROR)[0].getMessage()
    assert rec.events == []


async def test_subscription_over_sign_and_encrypt_with_a_user(
    secure: SecureServer, tmp_path: Path
) -> None:
    (tmp_path / "password").write_text(PASSWORD)
    auth = {"username": USER, "password_file": str(tmp_path / "password")}
    cfg = config(secure, security=signed(trust=["server.der"]), auth=auth)
    async with Recorder(OpcuaSource(cfg)) as rec:
        i, _ = await rec.next(lambda e: isinstance(e, Connected))
        i, full = await rec.next(is_complete, after=i)
        assert isinstance(full, Readings) and full.values["setpoint"].value == 42.0
        await secure.setpoint.write_value(43.5)  # the server's own write: internal
        await rec.next(changes("setpoint", 43.5), after=i)
    await secure.setpoint.write_value(42.0)


async def test_reads_are_chunked_to_the_servers_own_limit(secure: SecureServer) -> None:
    limits = ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead
    limit = secure.server.get_node(limits)
    before = await limit.read_value()
    await limit.write_value(ua.Variant(1, ua.VariantType.UInt32))  # the server's own setting
    try:
        session = await open_session(config(secure))
        try:
            assert session.max_per_read == 1
            assert (await read_all(session, "secure-01"))["setpoint"].value == 42.0
        finally:
            await close_quietly(session.client)
    finally:
        await limit.write_value(ua.Variant(before, ua.VariantType.UInt32))
    session = await open_session(config(secure, max_nodes_per_read=7))
    try:
        assert session.max_per_read == (7 if not before else min(7, before))
    finally:
        await close_quietly(session.client)
