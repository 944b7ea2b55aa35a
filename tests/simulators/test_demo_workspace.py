"""`make demo` serves the workspace: it prints the address and the demo users with their
passwords, a printed user signs in there and reads the KPI page and the dossier of the record
the scenario opens, and with ``DEMO_SECONDS`` the demo then stops by itself (every process
it started stopped by PID, its own exit code 0)."""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SECONDS = 45
USER = re.compile(r"^ {4}(\S+) +(\S+) +([a-z, ]+)$")
WORKSPACE = re.compile(r"^  workspace +(http://127\.0\.0\.1:\d+)/ \(records\), \S+/kpis ")
RECORD = re.compile(r"^ {4}(http://127\.0\.0\.1:\d+/records/(NC-\d{4}-\d{6})) +dossier: ")


class Output:
    """The demo's standard output, line by line, read on a thread of its own."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if found := pattern.match(line):
                    return found
            time.sleep(0.2)
        raise AssertionError(f"no line like {pattern.pattern!r} in:\n" + "\n".join(self.lines))


def signed_in(base: str, user_id: str, password: str) -> urllib.request.OpenerDirector:
    """A browser-like opener with a session cookie, signed in through the form."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    with opener.open(f"{base}/login", timeout=10) as resp:
        token = re.search(r'name="csrf_token" value="([^"]+)"', resp.read().decode())
    assert token is not None
    form = urllib.parse.urlencode({"csrf_token": token.group(1), "username": user_id,
                                   "password": password, "next": "/kpis"}).encode()
    with opener.open(f"{base}/login", data=form, timeout=10) as resp:
        assert resp.url == f"{base}/kpis" and resp.status == 200
    return opener


def test_the_demo_serves_the_workspace_to_its_printed_users_then_stops(tmp_path: Path) -> None:
    env = {**os.environ, "DEMO_SECONDS": str(SECONDS), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "simulators.demo", "--workdir",
                             str(tmp_path / "demo")], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out = Output(proc)
        base = out.wait_for(WORKSPACE, 120).group(1)
        users = {m.group(1): (m.group(2), m.group(3)) for line in out.lines
                 if (m := USER.match(line))}
        assert users["quinn"] == (users["quinn"][0], "quality, approver")
        assert {"vera", "omar", "quinn", "sam", "tara", "ada"} <= set(users)
        assert f"  sign in at          {base}/login" in out.lines

        browser = signed_in(base, "vera", users["vera"][0])
        with browser.open(f"{base}/kpis", timeout=10) as resp:
            assert "Open records by state" in resp.read().decode()
        page, record_id = out.wait_for(RECORD, SECONDS).groups()
        with browser.open(f"{page}/dossier", timeout=60) as resp:
            dossier = resp.read().decode()
        assert f"Dossier of nonconformity {record_id}" in dossier
        assert "by Vera Viewer (vera)" in dossier

        assert proc.wait(timeout=SECONDS + 120) == 0, "\n".join(out.lines)
        assert re.search(r"\d+ master record\(s\) opened", out.lines[-1]), out.lines[-1]
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # the demo stops its children by PID
            proc.wait(timeout=60)
