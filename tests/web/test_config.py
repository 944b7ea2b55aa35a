"""The service's config: loopback by default, the command line overrides it, and bad TLS or
identity settings stop the start with a message naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from detectors.identity import IdentityConfigError
from detectors.web.__main__ import main, parse_args, settle_config
from detectors.web.config import load_service_config

ROOT = Path(__file__).parents[2]


def test_loopback_by_default_and_the_command_line_wins() -> None:
    config = settle_config(parse_args(["--db", "x.db"]))
    assert (config.service.host, config.service.port, config.service.tls) == (
        "127.0.0.1", 8080, None)
    sample = settle_config(parse_args(["--config", str(ROOT / "config/records-ui.yaml"),
                                       "--port", "9999"]))
    assert (sample.service.db, sample.service.host, sample.service.port) == (
        "records.db", "127.0.0.1", 9999)
    assert sample.identity.idle_timeout_s == 900 and sample.identity.lockout_after == 5


def test_bad_settings_name_the_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTWATCH_RECORDS_DB", str(tmp_path / "missing.db"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("identity:\n  idle_timeout_s: 0\n  nonsense: 1\n")
    with pytest.raises(IdentityConfigError) as info:
        load_service_config(bad)
    assert "identity.idle_timeout_s" in str(info.value)
    assert "identity.nonsense" in str(info.value)
    tls = tmp_path / "tls.yaml"
    tls.write_text("service:\n  db: x.db\n  tls: {cert: none.crt, key: none.key}\n")
    assert main(["--config", str(tls)]) == 2
    assert "service.tls: cannot load cert" in caplog.text
    assert main([]) == 2
    assert "no records database" in caplog.text
