"""The collector of ``siem`` in the config, checked and ready to connect to (never connects)."""

from __future__ import annotations

import ssl

from detectors.config import SiemSection
from detectors.errors import ClassifierConfigError
from detectors.siem.sink import Collector


def collector_for(siem: SiemSection) -> Collector:
    """Where the relay sends; `ClassifierConfigError` names the key to fix."""
    if siem.host is None:
        raise ClassifierConfigError(
            "siem.host: not set; fix: name the syslog collector (host name or address) in the "
            "siem section of the classifier config"
        )
    context = tls_context(siem) if siem.transport == "tls" else None
    return Collector(siem.host, siem.port, context, connect_timeout_s=siem.connect_timeout_s,
                     ack_timeout_s=siem.ack_timeout_s)


def tls_context(siem: SiemSection) -> ssl.SSLContext:
    """A client context that verifies the collector (its CA, or the system's)."""
    tls = siem.tls
    for key in ("ca_file", "cert_file", "key_file"):
        path = getattr(tls, key)
        if path is not None and not path.is_file():
            raise ClassifierConfigError(f"siem.tls.{key}: no such file {path}; fix: the path")
    try:
        context = ssl.create_default_context(
            cafile=str(tls.ca_file) if tls.ca_file is not None else None)
        if tls.cert_file is not None and tls.key_file is not None:
            context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    except ssl.SSLError as exc:
        raise ClassifierConfigError(
            f"siem.tls: cannot load ca_file/cert_file/key_file ({exc.reason or exc}); fix: "
            "give PEM files, and a key that matches the certificate"
        ) from None
    context.check_hostname = tls.check_hostname
    return context
