"""The pip-audit allowlist: its format, and what fails the build (no network here)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from tests.audit.allowlist import Allowed, AllowlistError, findings, judge, parse

ROOT = Path(__file__).resolve().parents[2]
REPORT = {"dependencies": [
    {"name": "Jinja2", "version": "3.1.2", "vulns": [
        {"id": "GHSA-h5c8-rqwp-cp95", "fix_versions": ["3.1.3"], "aliases": ["CVE-2024-22195"]},
    ]},
    {"name": "idna", "version": "3.6", "vulns": [
        {"id": "PYSEC-2024-60", "fix_versions": ["3.7"], "aliases": []},
    ]},
    {"name": "orjson", "version": "3.10.0", "vulns": []},
]}


def test_the_shipped_allowlist_parses() -> None:
    entries = parse((ROOT / ".ci" / "pip-audit-allowlist.txt").read_text())
    assert all(e.why and e.revisit for e in entries)


def test_an_entry_has_four_fields() -> None:
    (entry,) = parse("# comment\n\nCVE-2024-22195 | Jinja2 | 2027-03-31 | no untrusted "
                     "templates: every template ships in the package\n")
    assert entry == Allowed("CVE-2024-22195", "jinja2", date(2027, 3, 31),
                            "no untrusted templates: every template ships in the package")


@pytest.mark.parametrize("line,words", [
    ("CVE-1 | jinja2 | 2027-03-31", "expected `ID | package | revisit YYYY-MM-DD | why`"),
    ("CVE-1 | jinja2 | 2027-03-31 |  ", "none empty"),
    ("CVE-1 | jinja2 | next year | why", "'next year' is not YYYY-MM-DD"),
])
def test_a_malformed_entry_names_its_line(line: str, words: str) -> None:
    with pytest.raises(AllowlistError, match="allowlist:2: ") as caught:
        parse(f"# header\n{line}\n")
    assert words in str(caught.value)


def test_a_finding_fails_unless_allowlisted_by_id_or_alias_in_its_package() -> None:
    found = findings(REPORT)
    assert [(f.package, f.id) for f in found] == [
        ("jinja2", "GHSA-h5c8-rqwp-cp95"), ("idna", "PYSEC-2024-60")]
    allowed = parse("CVE-2024-22195 | jinja2 | 2027-03-31 | templates are ours\n"
                    "PYSEC-2024-60 | requests | 2027-03-31 | wrong package: does not count\n")
    failing, notes = judge(found, allowed, today=date(2026, 11, 30))
    assert [f.line() for f in failing] == ["idna 3.6: PYSEC-2024-60, fixed in 3.7"]
    assert notes == ["allowlist: PYSEC-2024-60 (requests) is no longer found: remove it"]


def test_an_entry_past_its_revisit_date_is_reported_not_failed() -> None:
    allowed = parse("GHSA-h5c8-rqwp-cp95 | jinja2 | 2026-01-31 | templates are ours\n"
                    "PYSEC-2024-60 | idna | 2027-01-31 | we resolve no names from users\n")
    failing, notes = judge(findings(REPORT), allowed, today=date(2026, 11, 30))
    assert failing == []
    assert notes == ["allowlist: GHSA-h5c8-rqwp-cp95 (jinja2) was to be revisited on "
                     "2026-01-31: check it again (templates are ours)"]
