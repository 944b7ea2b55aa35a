"""Explain a failed TLS connection to the broker by the ``kafka.tls`` setting to fix.

aiokafka reports a failed TLS handshake only as "unable to bootstrap". `diagnose_tls` opens one
TLS session to the first bootstrap server, sends the smallest Kafka request, and turns what
went wrong into a `BrokerTlsError` whose message names the setting (`explain_tls_failure`).
`agent.kafka.startup.start_client` runs it when a client with TLS cannot start.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import struct

from agent.kafka.errors import BrokerTlsError
from agent.kafka.settings import KafkaSettings


def explain_tls_failure(
    settings: KafkaSettings, host: str, port: int, exc: ssl.SSLError | None
) -> str:
    """Turn an ssl failure into a sentence naming the ``kafka.tls`` setting to fix."""
    tls = settings.tls
    assert tls is not None
    where = f"TLS to the broker at {host}:{port} failed"
    if isinstance(exc, ssl.SSLCertVerificationError):
        if exc.verify_code == 62:  # X509_V_ERR_HOSTNAME_MISMATCH
            return (
                f"{where}: the broker's certificate does not name {host!r} ({exc.verify_message});"
                " fix kafka.bootstrap_servers to a name in the certificate, or set "
                "kafka.tls.check_hostname: false"
            )
        trusted = tls.ca_file or "the system CA store"
        return (
            f"{where}: the broker's certificate is not trusted by kafka.tls.ca_file ({trusted}):"
            f" {exc.verify_message}; set kafka.tls.ca_file to the CA that signed the broker's "
            "certificate"
        )
    reason = "the broker closed the session" if exc is None else str(exc.reason or exc)
    if "WRONG_VERSION_NUMBER" in reason or "RECORD_LAYER" in reason:
        return (
            f"{where}: the broker does not speak TLS on this port ({reason}); use the broker's "
            "TLS listener in kafka.bootstrap_servers or remove kafka.tls"
        )
    if tls.cert_file is None:
        return (
            f"{where}: {reason}; the broker requires a client certificate (mutual TLS): set "
            "kafka.tls.cert_file and kafka.tls.key_file"
        )
    return (
        f"{where}: {reason}; the broker refused the client certificate kafka.tls.cert_file "
        f"({tls.cert_file}): use a certificate signed by a CA the broker trusts"
    )


def _api_versions_request() -> bytes:
    """A Kafka ApiVersions v0 request: the smallest request that proves the session works."""
    client_id = b"otwatch-tls-probe"
    body = struct.pack(">hhih", 18, 0, 1, len(client_id)) + client_id
    return struct.pack(">i", len(body)) + body


def _first_server(bootstrap: str) -> tuple[str, int]:
    host, _, port = bootstrap.split(",")[0].strip().rpartition(":")
    return host.strip("[]"), int(port)


async def diagnose_tls(settings: KafkaSettings, limit_s: float = 5.0) -> BrokerTlsError | None:
    """Open one TLS session to the first bootstrap server and explain a failure by its setting.

    aiokafka reports a failed TLS handshake only as "unable to bootstrap"; this probe finds the
    setting to fix. Returns None when TLS works or the failure is not a TLS one (network down).
    """
    if settings.tls is None:
        return None
    host, port = _first_server(settings.bootstrap_servers)
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=settings.tls.ssl_context()), limit_s
        )
    except ssl.SSLError as exc:
        return BrokerTlsError(explain_tls_failure(settings, host, port, exc))
    except (OSError, TimeoutError):
        return None  # not a TLS problem: nothing listens, or the network is down
    try:
        writer.write(_api_versions_request())
        await writer.drain()
        await asyncio.wait_for(reader.readexactly(4), limit_s)
    except ssl.SSLError as exc:
        return BrokerTlsError(explain_tls_failure(settings, host, port, exc))
    except (OSError, asyncio.IncompleteReadError):
        # TLS 1.3: a refused client certificate shows after the handshake, as a dropped session
        return BrokerTlsError(explain_tls_failure(settings, host, port, None))
    except TimeoutError:
        return None
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    return None
