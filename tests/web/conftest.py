"""Web fixtures: a real SQLite records store in tmp_path with the test people enrolled (and an
API token each), served by the app on 127.0.0.1 with a clock the test moves."""

from __future__ import annotations

import base64
import re
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Browser, Playwright, async_playwright

from detectors.identity import IdentitySettings, create_token
from detectors.records import open_store
from detectors.tickets.inbound import InboundHook
from detectors.tickets.signing import signer
from detectors.web import create_app
from tests.records.people import CHEAP, PASSWORD, PEOPLE, enrol
from tests.support.events import RECORDS_T0 as T0
from tests.support.events import classified, record_event

SETTINGS = IdentitySettings(argon2=CHEAP, lockout_after=3, lockout_s=600, idle_timeout_s=900)
Client = TestClient[Any, Any]


@dataclass
class Clock:
    """The service's clock: starts an hour after the records were made; tests move it."""

    now: datetime = field(default_factory=lambda: T0 + timedelta(hours=1))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture(autouse=True)
def _page_waits_for_the_tamper_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worklist waits `PAGE_WAIT_S` (1 s) for a whole-store check it starts, then shows
    the older result: these two-record stores are checked within it, but not always on a
    machine loaded by a full suite beside other work (a page said 'under way' where the test
    expected the result). Tests wait longer; the test of a slow check sets its own wait."""
    from detectors.web import _verify

    monkeypatch.setattr(_verify, "PAGE_WAIT_S", 30.0)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Two records: NC-2026-000001 (older, with a <script> description) and NC-2026-000002;
    the people of `tests.records.people`."""
    path = tmp_path / "records.db"
    with open_store(str(path)) as store:
        store.migrate()
        enrol(store, T0)
        store.record_events(
            [
                (record_event(1, recipe="<R-12>"),
                 classified(key="k1", description="<script>alert(1)</script> changed")),
                (record_event(2, tag="Pressure", minutes=3, recipe="<R-12>"), classified(key="k2")),
            ],
            now=T0 + timedelta(minutes=5),
        )
    return path


@pytest.fixture
def tokens(db_path: Path) -> dict[str, str]:
    """An API token per person (30 days from T0)."""
    made = {}
    with open_store(str(db_path)) as store, store.database.write() as conn:
        for user_id in PEOPLE:
            _, made[user_id] = create_token(conn, user_id, "tests", now=T0, days=30, by="test")
    return made


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def clock() -> Clock:
    return Clock()


#: The inbound ticket webhook every test app accepts (TheHive, signed with this secret).
INBOUND_SECRET = "whsec_" + base64.b64encode(b"inbound-secret-for-the-web-tests!").decode()
INBOUND = {"thehive": InboundHook("thehive", signer(INBOUND_SECRET), "svc-thehive")}


async def serve(target: str, *, clock: Clock | None = None,
                settings: IdentitySettings = SETTINGS) -> Client:
    app = create_app(target, settings=settings, clock=clock or Clock(), inbound=INBOUND)
    client: Client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    return client


@pytest.fixture
async def client(db_path: Path, clock: Clock) -> AsyncIterator[Client]:
    running = await serve(str(db_path), clock=clock)
    yield running
    await running.close()


_FORM_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


async def sign_in(client: Client, user_id: str, password: str = PASSWORD) -> str:
    """Sign in through the form, as a browser does; returns the session's CSRF token."""
    resp = await sign_in_attempt(client, user_id, password)
    assert resp.status == 303, await resp.text()
    me = await (await client.get("/api/me")).json()
    assert me["user_id"] == user_id
    return str(me["csrf_token"])


async def sign_in_attempt(client: Client, user_id: str, password: str) -> Any:
    page = await (await client.get("/login")).text()
    match = _FORM_TOKEN.search(page)
    assert match is not None
    return await client.post("/login", data={"csrf_token": match.group(1), "username": user_id,
                                             "password": password, "next": "/"},
                             allow_redirects=False)


#: Debian's chromium, quiet on the network (no component updates, sync, translation, ...).
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--no-first-run", "--disable-domain-reliability",
    "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
]


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict[str, Any]:
    """pytest-playwright-asyncio's launch options: Debian's chromium, never a downloaded
    browser (``playwright install`` is not used)."""
    import shutil

    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("Debian's chromium is not installed (make test installs it as root: "
                    "`make system-tools`)")
    return {"executable_path": executable, "args": CHROMIUM_ARGS, "headless": True}


# pytest-playwright-asyncio's session fixtures leave their loop scope to the default, which is
# "function" in this suite; the browser lives on the session loop with the browser tests.
@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def playwright() -> AsyncIterator[Playwright]:
    async with async_playwright() as running:
        yield running


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser(launch_browser: Callable[[], Awaitable[Browser]]) -> AsyncIterator[Browser]:
    launched = await launch_browser()
    yield launched
    await launched.close()


@pytest.fixture(scope="session")
def base_url() -> str | None:
    """The plugin's own fallback is a method fixture that pytest 9 warns about; the browser
    tests pass whole URLs."""
    return None


ROOT = Path(__file__).parents[2]
CHEAP_SERVICE = """service:
  host: 127.0.0.1
identity:
  argon2: {time_cost: 1, memory_cost: 8, parallelism: 1}
"""


@contextmanager
def running_service(db_path: Path, workdir: Path, config_text: str,
                    tls: ssl.SSLContext | None = None) -> Iterator[str]:
    """``python -m detectors.web`` on a free loopback port, as its own process, stopped by
    PID; yields its base URL once /healthz answers."""
    from simulators.broker import free_port

    config = workdir / "records-ui.yaml"
    config.write_text(config_text)
    port = free_port()
    scheme = "https" if tls else "http"
    log = open(workdir / "service.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "detectors.web", "--config", str(config),
                             "--db", str(db_path), "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    base = f"{scheme}://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=1, context=tls) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the service did not start; see {log.name}") from None
                time.sleep(0.1)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()
