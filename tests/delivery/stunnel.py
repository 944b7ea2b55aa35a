"""Debian's stunnel as a TLS terminator in front of the broker, mutual TLS required."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from simulators.broker import wait_for_port


def stunnel_binary() -> str | None:
    return shutil.which("stunnel4") or shutil.which("stunnel")


@dataclass
class TlsTerminator:
    """Accept TLS on ``port`` (client certificate signed by ``client_ca`` required), forward
    plaintext to ``target_port``. Started and stopped (by PID) by its owner."""

    workdir: Path
    port: int
    target_port: int
    cert: Path
    key: Path
    client_ca: Path
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def config(self) -> str:
        return "\n".join(
            [
                "foreground = yes",
                "pid =",
                f"output = {self.workdir / 'stunnel.log'}",
                "[kafka]",
                f"accept = 127.0.0.1:{self.port}",
                f"connect = 127.0.0.1:{self.target_port}",
                f"cert = {self.cert}",
                f"key = {self.key}",
                f"CAfile = {self.client_ca}",
                "requireCert = yes",
                "verifyChain = yes",
                "",
            ]
        )

    def start(self) -> TlsTerminator:
        binary = stunnel_binary()
        assert binary is not None
        conf = self.workdir / "stunnel.conf"
        conf.write_text(self.config())
        self.process = subprocess.Popen(
            [binary, str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        try:
            wait_for_port(self.port, timeout=10)
        except Exception:
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
