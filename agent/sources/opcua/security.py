"""OPC UA secure channel and user identity: certificates, the trust list, the password.

The server's certificate is checked against the trust list before the session is created
and before any credential is sent: it must be one of the listed certificates, or be issued
by one of them, and be within its validity period, unless ``trust_any_server`` is set.
Passwords come from an environment variable or a file and are never logged.
"""

from __future__ import annotations

import hashlib
import os
from datetime import datetime
from pathlib import Path

from asyncua import ua
from asyncua.client.client import Client
from asyncua.crypto import security_policies
from asyncua.ua.uaerrors import UaError
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding

from agent.errors import ConfigError, ControllerUnreachable
from agent.sources.opcua.config import OpcuaAuth, OpcuaSecurity

_CERT_SUFFIXES = (".der", ".pem", ".crt", ".cer")


class ServerNotTrusted(ControllerUnreachable):
    """The server's certificate is not in the trust list (retried: it may be added)."""


def load_certificate(path: Path) -> x509.Certificate:
    data = path.read_bytes()
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def load_trust_list(paths: list[Path]) -> list[x509.Certificate]:
    """Every certificate in the listed files and directories (.der, .pem, .crt, .cer)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in _CERT_SUFFIXES))
        else:
            files.append(path)
    return [load_certificate(f) for f in files]


def fingerprint(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def is_trusted(cert: x509.Certificate, trusted: list[x509.Certificate], now: datetime) -> bool:
    """The certificate is listed, or directly issued by a listed one, and valid at ``now``."""
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        return False
    return any(cert == anchor or _issued_by(cert, anchor) for anchor in trusted)


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def check_server_trusted(
    der: bytes | None, security: OpcuaSecurity, controller: str, now: datetime
) -> None:
    """Raise `ServerNotTrusted`, naming the certificate and the fix, unless it is trusted."""
    if security.trust_any_server:
        return
    if der is None:
        raise ServerNotTrusted("the server sent no certificate", controller=controller)
    cert = x509.load_der_x509_certificate(der)
    if is_trusted(cert, load_trust_list(security.trust), now):
        return
    raise ServerNotTrusted(
        f"the server certificate {cert.subject.rfc4514_string()} (sha256 {fingerprint(cert)}) "
        "is not in security.trust or is outside its validity period; fix: add the server "
        "certificate (or its CA) to security.trust after checking its fingerprint",
        controller=controller,
    )


def application_uri(cert_path: Path) -> str | None:
    """The URI in the client certificate's subjectAltName (the session must use the same)."""
    cert = load_certificate(cert_path)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return None
    uris = san.value.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else None


def read_password(auth: OpcuaAuth, controller: str) -> str | None:
    """The password from ``password_env`` or ``password_file``; None for anonymous."""
    if auth.password_env is not None:
        value = os.environ.get(auth.password_env)
        if value is None:
            raise ConfigError(
                f"controller {controller}: auth.password_env names {auth.password_env}, which "
                "is not set; fix: set that environment variable for the agent"
            )
        return value
    if auth.password_file is not None:
        return auth.password_file.read_text(encoding="utf-8").rstrip("\r\n")
    return None


async def apply_security(client: Client, security: OpcuaSecurity, controller: str,
                         now: datetime) -> None:
    """Set the policy, mode and certificates; fetch and check the server certificate."""
    if security.policy == "None":
        return
    assert security.certificate is not None and security.private_key is not None
    uri = application_uri(security.certificate)
    if uri is not None:
        client.application_uri = uri
    mode = getattr(ua.MessageSecurityMode, security.mode or "SignAndEncrypt")
    policy = getattr(security_policies, f"SecurityPolicy{security.policy}")
    # No server certificate given: asyncua reads it from the server's endpoint list.
    try:
        await client.set_security(
            policy, str(security.certificate), str(security.private_key),
            server_certificate=None, mode=mode,
        )
    except UaError as exc:
        if not str(exc).startswith("No matching endpoints"):
            raise
        raise ControllerUnreachable(
            f"the server offers no endpoint with policy {security.policy} and mode "
            f"{security.mode}; fix: use a security.policy and mode the server offers",
            controller=controller,
        ) from None
    check_server_trusted(client.security_policy.peer_certificate, security, controller, now)


def apply_user(client: Client, auth: OpcuaAuth, controller: str) -> None:
    if auth.username is None:
        return
    client.set_user(auth.username)
    password = read_password(auth, controller)
    if password is not None:
        client.set_password(password)
