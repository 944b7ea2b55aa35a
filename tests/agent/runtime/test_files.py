"""`write_atomically`: the one atomic file replacement of the product."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.runtime.files import write_atomically


def test_writes_replaces_and_keeps_the_mode(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    write_atomically(target, '{"a": 1}')
    assert target.read_text() == '{"a": 1}'
    target.chmod(0o600)
    write_atomically(target, b"\x00\x01", durable=False)
    assert target.read_bytes() == b"\x00\x01"
    assert target.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temporary left


def test_a_new_file_gets_the_mode_open_would_give(tmp_path: Path) -> None:
    mask = os.umask(0o027)
    os.umask(mask)
    write_atomically(tmp_path / "new.txt", "x")
    assert (tmp_path / "new.txt").stat().st_mode & 0o777 == 0o666 & ~mask


def test_a_failed_replace_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "baseline.json"
    target.write_text("old")

    def refuse(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="No space"):
        write_atomically(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["baseline.json"]


def test_a_missing_folder_is_an_error_and_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_atomically(tmp_path / "missing" / "x.json", "{}")
    assert not (tmp_path / "missing").exists()
