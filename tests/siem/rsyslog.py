"""A private rsyslog (Debian's ``rsyslogd``) receiving syslog on a free loopback port, over
plain TCP or TLS (``rsyslog-gnutls``), writing every message it takes twice: as received
(``%rawmsg%``, one a line) and as rsyslog parsed it (JSON lines: PRI, timestamp, hostname,
app-name, procid, msgid, structured data, msg). Started in the foreground (the Popen PID is
rsyslogd's) from a temp config, stopped by that PID; it can be stopped and started again on
the same port (a collector outage)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from simulators.broker import free_port
from tests.support.certs import Authority, issue, make_ca

GTLS = Path("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so")

CONF = """global(workDirectory="{dir}/work"{tls_global})
module(load="imtcp"{tls_module})
input(type="imtcp" port="{port}" address="127.0.0.1")
template(name="raw" type="string" string="%rawmsg%\\n")
template(name="parsed" type="list" option.jsonf="on") {{
  property(outname="pri" name="pri" format="jsonf")
  property(outname="version" name="protocol-version" format="jsonf")
  property(outname="timestamp" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="hostname" name="hostname" format="jsonf")
  property(outname="app_name" name="app-name" format="jsonf")
  property(outname="procid" name="procid" format="jsonf")
  property(outname="msgid" name="msgid" format="jsonf")
  property(outname="structured_data" name="structured-data" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
}}
action(type="omfile" file="{dir}/raw.log" template="raw")
action(type="omfile" file="{dir}/parsed.jsonl" template="parsed")
"""


def rsyslogd() -> str:
    found = shutil.which("rsyslogd") or shutil.which("rsyslogd", path="/usr/sbin:/sbin")
    if found is None:
        pytest.skip("Debian's rsyslog is not installed (make test installs it as root: "
                    "`make system-tools`)")
    return found


class Rsyslog:
    """``with Rsyslog(tmp, tls=True) as collector: collector.port, collector.ca``."""

    def __init__(self, workdir: Path, *, tls: bool) -> None:
        self.binary = rsyslogd()
        if tls and not GTLS.exists():
            pytest.skip("rsyslog-gnutls is not installed (make test installs it as root)")
        self.workdir = workdir
        (workdir / "work").mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.tls = tls
        self.ca: Authority | None = None
        if tls:
            self.ca = make_ca(workdir, "siem-ca")
            server = issue(self.ca, workdir, "collector", server=True)
            tls_global = (f' DefaultNetstreamDriverCAFile="{self.ca.cert}"'
                          f' DefaultNetstreamDriverCertFile="{server.cert}"'
                          f' DefaultNetstreamDriverKeyFile="{server.key}"')
            tls_module = ' StreamDriver.Name="gtls" StreamDriver.Mode="1" ' \
                         'StreamDriver.AuthMode="anon"'
        else:
            tls_global = tls_module = ""
        self.conf = workdir / "rsyslog.conf"
        self.conf.write_text(CONF.format(dir=workdir, port=self.port, tls_global=tls_global,
                                         tls_module=tls_module))
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    def check(self) -> subprocess.CompletedProcess[str]:
        """``rsyslogd -N1``: the config as rsyslog reads it."""
        return subprocess.run([self.binary, "-N1", "-f", str(self.conf)], capture_output=True,
                              text=True, timeout=30)

    def start(self) -> None:
        self._log = open(self.workdir / "rsyslogd.log", "ab")  # closed in stop()
        self.proc = subprocess.Popen(
            [self.binary, "-n", "-f", str(self.conf), "-i", str(self.workdir / "rsyslogd.pid")],
            stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, "LANG": "C"})
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"rsyslogd exited {self.proc.returncode}; see "
                                   f"{self.workdir / 'rsyslogd.log'}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("rsyslogd did not listen within 10 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def raw(self) -> list[str]:
        """The messages received, as received (rsyslog strips the octet count)."""
        path = self.workdir / "raw.log"
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        return text.splitlines()

    def parsed(self) -> list[dict[str, Any]]:
        path = self.workdir / "parsed.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]

    def wait_for(self, count: int, timeout_s: float = 20.0) -> list[str]:
        """The received messages once there are at least ``count`` (rsyslog writes async)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            got = self.raw()
            if len(got) >= count and len(self.parsed()) >= count:
                return got
            time.sleep(0.05)
        raise AssertionError(f"rsyslog received {len(self.raw())} messages, expected {count}")

    def __enter__(self) -> Rsyslog:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
