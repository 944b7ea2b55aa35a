"""deploy/README.md says what each shipped file is."""

from __future__ import annotations

from tests.deploy._metrics import DEPLOY


def test_readme_names_every_file() -> None:
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    files = [p.relative_to(DEPLOY).as_posix() for p in DEPLOY.rglob("*") if p.is_file()]
    missing = [f for f in files if f != "README.md" and f"`{f}`" not in readme]
    assert not missing, f"deploy/README.md does not describe {missing}"
