"""`otwatch-siem check` and the config it reads: bad input is named with the key and the fix."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from detectors.config import load_classifier_config
from detectors.errors import ClassifierConfigError
from detectors.siem_cli import main

ROOT = Path(__file__).parents[2]


def test_the_shipped_config_checks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--config", str(ROOT / "config" / "classifier.yaml")]) == 0
    out = capsys.readouterr().out
    assert "tls://siem-collector.example:6514" in out and "otwatch.alerts" in out


def write(tmp_path: Path, siem: object, **more: object) -> Path:
    path = tmp_path / "classifier.yaml"
    path.write_text(yaml.safe_dump({"siem": siem, **more}))
    return path


@pytest.mark.parametrize(("siem", "says"), [
    ({}, "siem.host: not set; fix: name the syslog collector"),
    ({"host": "c", "tls": {"ca_file": "missing-ca.pem"}}, "siem.tls.ca_file: no such file"),
    ({"host": "c", "transport": "udp"}, "siem.transport: Input should be 'tls' or 'tcp'"),
    ({"host": "c", "facility": "local9"}, "siem.facility"),
    ({"host": "c", "max_message_bytes": 1024}, "siem.max_message_bytes"),
    ({"host": "two words"}, "siem.host: 'two words' is not a host name or address"),
    ({"host": "c", "tls": {"cert_file": "x.crt"}}, "cert_file and key_file go together"),
    ({"host": "c", "colector": "typo"}, "siem.colector: Extra inputs are not permitted; fix: "
     "remove or correct this key"),
])
def test_a_bad_siem_section_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], siem: object, says: str
) -> None:
    assert main(["check", "--config", str(write(tmp_path, siem))]) == 2
    assert says in capsys.readouterr().err


def test_a_file_that_is_no_pem_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    (tmp_path / "ca.pem").write_text("not a certificate")
    assert main(["check", "--config", str(write(tmp_path, {"host": "c", "tls": {
        "ca_file": "ca.pem"}}))]) == 2
    assert "siem.tls: cannot load ca_file/cert_file/key_file" in capsys.readouterr().err


def test_tls_files_are_relative_to_the_config(tmp_path: Path) -> None:
    config = load_classifier_config(write(tmp_path, {"host": "c", "tls": {"ca_file": "ca.pem"}}))
    assert config.siem.tls.ca_file == tmp_path / "ca.pem"


def test_the_alert_format_is_one_of_two(tmp_path: Path) -> None:
    assert load_classifier_config(write(tmp_path, {}, alerts={"format": "ocsf"})
                                  ).alerts.format == "ocsf"
    with pytest.raises(ClassifierConfigError,
                       match=re.escape("alerts.format: Input should be 'otwatch' or 'ocsf'")):
        load_classifier_config(write(tmp_path, {}, alerts={"format": "cef"}))


@pytest.mark.parametrize("fmt", ["otwatch", "ocsf", "cef", "syslog"])
def test_sample_prints_each_format(capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    assert main(["sample", "--format", fmt]) == 0
    assert "5b0f8a52-6d1e-4c43-9a4f-2f8e0c1d7a10" in capsys.readouterr().out
