"""TLS for the records service (certificate and key in its config): HTTPS only on its port,
Secure session cookies, HSTS."""

from __future__ import annotations

import re
import ssl
from pathlib import Path

import aiohttp
import pytest

from tests.records.people import PASSWORD
from tests.support.certs import self_signed
from tests.web.conftest import running_service

pytestmark = pytest.mark.integration




async def test_https_with_secure_cookies_and_hsts(db_path: Path, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    trust = ssl.create_default_context(cafile=str(cert))
    config = (f"service:\n  tls: {{cert: {cert.name}, key: {key.name}}}\n"
              "identity:\n  argon2: {time_cost: 1, memory_cost: 8, parallelism: 1}\n")
    with running_service(db_path, tmp_path, config, tls=trust) as base:
        assert base.startswith("https://127.0.0.1:")
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            with pytest.raises(aiohttp.ClientError):  # no plain HTTP on the TLS port
                await http.get(base.replace("https", "http") + "/healthz")
            page = await http.get(f"{base}/login", ssl=trust)
            assert page.headers["Strict-Transport-Security"].startswith("max-age=")
            assert page.cookies["otwatch_signin"]["secure"]
            token = re.search(r'name="csrf_token" value="([^"]+)"', await page.text())
            assert token is not None
            signed_in = await http.post(f"{base}/login", ssl=trust, allow_redirects=False,
                                        data={"csrf_token": token.group(1),
                                              "username": "view.vic", "password": PASSWORD})
            session = signed_in.cookies["otwatch_session"]
            assert session["secure"] and session["httponly"] and session["samesite"] == "Strict"
            records = await http.get(f"{base}/api/records", ssl=trust)
            assert records.status == 200 and len(await records.json()) == 2
