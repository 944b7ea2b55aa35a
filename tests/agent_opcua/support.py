"""Helpers for the OPC UA source tests: run a source, wait for what it emits, make certificates."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from agent.sources.base import Readings, Source, SourceEvent

#: Every wait in these tests is bounded by this (seconds).
WAIT_S = 15.0


class Recorder:
    """Runs a source in an owned task and records what it emits."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.events: list[SourceEvent] = []
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def emit(self, event: SourceEvent) -> None:
        self.events.append(event)
        self._arrived.set()

    async def __aenter__(self) -> Recorder:
        self._task = asyncio.create_task(self.source.run(self.emit))
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        if self._task.done() and not self._task.cancelled() and self._task.exception():
            raise AssertionError("the source died") from self._task.exception()

    async def next(self, match: Callable[[SourceEvent], bool], after: int = 0,
                   within: float = WAIT_S) -> tuple[int, SourceEvent]:
        """The first event at or after index ``after`` that matches, and its index."""

        async def scan() -> tuple[int, SourceEvent]:
            while True:
                for i in range(after, len(self.events)):
                    if match(self.events[i]):
                        return i, self.events[i]
                self._arrived.clear()
                await self._arrived.wait()

        async with asyncio.timeout(within):
            return await scan()


def is_complete(event: SourceEvent) -> bool:
    return isinstance(event, Readings) and event.complete


def changes(tag: str, value: object) -> Callable[[SourceEvent], bool]:
    def match(event: SourceEvent) -> bool:
        return (isinstance(event, Readings) and not event.complete and tag in event.values
                and event.values[tag].value == value)

    return match


def make_cert(directory: Path, name: str, uri: str, *, client: bool) -> tuple[Path, Path]:
    """A self-signed (CA-less) application certificate and its key: (cert.der, key.pem)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.UniformResourceIdentifier(uri), x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=True, key_encipherment=True,
            data_encipherment=True, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False,
        ), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / f"{name}.der"
    key_path = directory / f"{name}-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ))
    return cert_path, key_path
