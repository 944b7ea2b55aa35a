"""`make audit`: the installed dependencies against PyPI's vulnerability advisories.

    make audit          # .ci/run runs it before `make test`

pip-audit checks every package installed in ``.venv`` (otwatch itself, installed editable, is
skipped) against the advisories PyPI serves (``--vulnerability-service pypi``: osv.dev is not
reachable from the machines this project runs on; pypi.org is). A vulnerability fails the
build unless `.ci/pip-audit-allowlist.txt` lists it with the reason it does not apply and a
date to look at it again (`tests.audit.allowlist`).

When pypi.org cannot be reached the audit says so in one line and exits 0: a network outage
must not block every build, and the line makes the skip visible in the log. Real findings
always fail.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from tests.audit.allowlist import AllowlistError, findings, judge, parse

ROOT = Path(__file__).resolve().parents[2]
ALLOWLIST = ROOT / ".ci" / "pip-audit-allowlist.txt"
PROBE = "https://pypi.org/pypi/pip/json"
#: pip-audit's own words for a service it could not reach.
NETWORK_WORDS = ("ConnectionError", "ConnectTimeout", "ReadTimeout", "Max retries exceeded",
                 "Name or service not known", "Temporary failure in name resolution")


def reachable() -> str | None:
    """None when PyPI answers, else why not (one line)."""
    try:
        with urllib.request.urlopen(PROBE, timeout=15) as resp:
            resp.read(1)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        return str(getattr(exc, "reason", exc))
    return None


def run_pip_audit(report: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip_audit", "--vulnerability-service", "pypi", "--skip-editable",
         "--progress-spinner", "off", "--timeout", "30", "--format", "json",
         "--output", str(report)],
        capture_output=True, text=True, timeout=900, check=False,
    )


def main() -> int:
    try:
        allowed = parse(ALLOWLIST.read_text(encoding="utf-8"), str(ALLOWLIST.relative_to(ROOT)))
    except (OSError, AllowlistError) as exc:
        print(f"audit: {exc}", file=sys.stderr)
        return 2
    why_not = reachable()
    if why_not is not None:
        print(f"audit: skipped: pypi.org is unreachable ({why_not}); the dependencies were NOT "
              "checked for known vulnerabilities")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "audit.json"
        done = run_pip_audit(report)
        try:
            data = json.loads(report.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = None
    if data is None:
        text = (done.stderr or done.stdout).strip()
        if any(word in text for word in NETWORK_WORDS):
            print("audit: skipped: PyPI's vulnerability service did not answer; the "
                  "dependencies were NOT checked for known vulnerabilities")
            return 0
        print(f"audit: pip-audit failed (exit {done.returncode}):\n{text[-2000:]}",
              file=sys.stderr)
        return 2
    found = findings(data)
    failing, notes = judge(found, allowed, datetime.now(UTC).date())
    for note in notes:
        print(f"audit: {note}")
    packages = len(data.get("dependencies", []))
    if failing:
        print(f"audit: {len(failing)} known vulnerabilities in {packages} packages (not in "
              f"{ALLOWLIST.relative_to(ROOT)}); upgrade, or allowlist with the reason:")
        for finding in failing:
            print(f"  {finding.line()}")
        return 1
    print(f"audit: {packages} packages checked against PyPI's advisories: no known "
          f"vulnerability{f' ({len(found)} allowlisted)' if found else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
