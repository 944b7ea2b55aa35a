"""The agent's event signing key: made on first use with mode 0600, shown for the classifier,
refused with the file and the fix when it cannot be trusted; the events section's limits."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.cli import main as agent_main
from agent.config import load_agent_config
from agent.contract import EventSigner, key_id_of
from agent.errors import ConfigError
from agent.keys import key_path, load_signer
from tests.agent.sources.factories import sample_config, write_config


def config_in(tmp_path: Path, **events: object) -> Path:
    data = sample_config()
    data["agent"]["state_dir"] = str(tmp_path / "state")
    data["approvals"]["files"] = []
    if events:
        data["events"] = events
    return write_config(tmp_path, data)


def test_keys_show_makes_the_key_once_and_prints_its_id_and_public_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_in(tmp_path)
    assert agent_main(["keys", "show", "--config", str(path)]) == 0
    first = capsys.readouterr().out
    assert "made now in" in first
    key_file = tmp_path / "state" / "event-signing.key"
    assert (key_file.stat().st_mode & 0o777) == 0o600
    assert agent_main(["keys", "show", "--config", str(path)]) == 0
    second = capsys.readouterr().out
    lines = dict(line.split(": ", 1) for line in second.splitlines()[1:])
    assert lines["key_id"] == key_id_of(lines["public_key"])
    signer = EventSigner.from_private_b64(key_file.read_text())
    assert (lines["key_id"], lines["public_key"]) == (signer.key_id, signer.public_key_b64)
    assert "made now" not in second


def test_a_key_others_can_read_is_refused(tmp_path: Path) -> None:
    config = load_agent_config(config_in(tmp_path))
    load_signer(config)
    os.chmod(key_path(config), 0o644)
    with pytest.raises(ConfigError, match=r"readable by others .* chmod 600"):
        load_signer(config)


def test_a_damaged_key_names_the_file_and_the_fix(tmp_path: Path) -> None:
    config = load_agent_config(config_in(tmp_path))
    path = key_path(config)
    path.parent.mkdir(parents=True)
    path.write_text("not a key\n")
    os.chmod(path, 0o600)
    with pytest.raises(ConfigError, match=str(path)) as info:
        load_signer(config)
    assert "fix:" in str(info.value)


def test_a_configured_key_file_must_exist(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                          ) -> None:
    path = config_in(tmp_path, signing_key_file="keys/agent.key")
    assert agent_main(["keys", "show", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "events.signing_key_file" in err and str(tmp_path / "keys" / "agent.key") in err


@pytest.mark.parametrize(
    ("events", "words"),
    [
        ({"max_value_bytes": 400_000}, "leaves no room for two values"),
        ({"max_event_bytes": 2_000_000}, "events.max_event_bytes"),
        ({"truncated_head_chars": 4000, "max_value_bytes": 4096}, "truncated_head_chars"),
        ({"max_value_bytes": 10}, "events.max_value_bytes"),
    ],
)
def test_event_limits_are_checked(tmp_path: Path, events: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        load_agent_config(config_in(tmp_path, **events))


def test_the_sample_documents_the_event_limits() -> None:
    config = load_agent_config(Path(__file__).parents[2] / "config" / "agent.yaml")
    assert config.events.limits.max_value_bytes == 64 * 1024
    assert config.events.limits.max_event_bytes == 512 * 1024
