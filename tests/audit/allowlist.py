"""The pip-audit allowlist (``.ci/pip-audit-allowlist.txt``): parsed, checked, applied.

Pure: `parse` reads the text (``ID | package | revisit YYYY-MM-DD | why``, ``#`` comments)
and raises `AllowlistError` naming the line and the fix; `findings` splits pip-audit's JSON
report into what fails the build and what the allowlist covers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any


class AllowlistError(ValueError):
    """A line of the allowlist is malformed; the message names it and the fix."""


@dataclass(frozen=True)
class Allowed:
    """One allowlisted vulnerability: which, in which package, until when, and why."""

    id: str
    package: str
    revisit: date
    why: str


@dataclass(frozen=True)
class Finding:
    """One vulnerability pip-audit reported in an installed package."""

    id: str
    package: str
    version: str
    fixed_in: tuple[str, ...]
    aliases: tuple[str, ...]

    def line(self) -> str:
        fix = f"fixed in {', '.join(self.fixed_in)}" if self.fixed_in else "no fixed version"
        also = f" ({', '.join(self.aliases)})" if self.aliases else ""
        return f"{self.package} {self.version}: {self.id}{also}, {fix}"


def parse(text: str, source: str = "allowlist") -> list[Allowed]:
    """The entries of an allowlist file; `AllowlistError` for a malformed line."""
    entries = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = [f.strip() for f in line.split(" | ")]
        where = f"{source}:{number}"
        if len(fields) != 4 or not all(fields):
            raise AllowlistError(
                f"{where}: expected `ID | package | revisit YYYY-MM-DD | why`, got {line!r}; "
                "fix: four fields separated by ' | ', none empty")
        try:
            revisit = date.fromisoformat(fields[2])
        except ValueError:
            raise AllowlistError(f"{where}: revisit date {fields[2]!r} is not YYYY-MM-DD; fix: "
                                 "e.g. 2027-03-31") from None
        entries.append(Allowed(fields[0], fields[1].lower(), revisit, fields[3]))
    return entries


def findings(report: dict[str, Any]) -> list[Finding]:
    """Every vulnerability in pip-audit's JSON report (``-f json``)."""
    found = []
    for dep in report.get("dependencies", []):
        for vuln in dep.get("vulns", []):
            found.append(Finding(
                id=vuln["id"], package=str(dep["name"]).lower(), version=str(dep["version"]),
                fixed_in=tuple(vuln.get("fix_versions") or ()),
                aliases=tuple(vuln.get("aliases") or ())))
    return found


def covered(finding: Finding, allowed: list[Allowed]) -> Allowed | None:
    """The allowlist entry for this finding (by its id or an alias, in its package)."""
    ids = {finding.id, *finding.aliases}
    for entry in allowed:
        if entry.id in ids and entry.package == finding.package:
            return entry
    return None


def judge(found: list[Finding], allowed: list[Allowed],
          today: date) -> tuple[list[Finding], list[str]]:
    """(the findings that fail the build, notes on the allowlist: entries past their revisit
    date, entries no finding needs any more)."""
    failing = [f for f in found if covered(f, allowed) is None]
    notes = []
    used = {covered(f, allowed) for f in found} - {None}
    for entry in allowed:
        if entry not in used:
            notes.append(f"allowlist: {entry.id} ({entry.package}) is no longer found: remove it")
        elif entry.revisit < today:
            notes.append(f"allowlist: {entry.id} ({entry.package}) was to be revisited on "
                         f"{entry.revisit}: check it again ({entry.why})")
    return failing, notes
