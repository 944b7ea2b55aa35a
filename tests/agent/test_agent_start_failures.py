"""Issue 14 item 5, the agent's share: every start-up failure of ``otwatch-agent run`` is one
clear line that names the setting and the fix (no traceback), after a bounded number of
retries where a retry can help (a metrics port an exiting agent still holds)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent import runner
from agent.cli import main as agent_main
from simulators.broker import free_port
from tests.agent.sources.factories import sample_config, write_config


def config_in(tmp_path: Path, **changes: object) -> Path:
    data = sample_config()
    data["agent"]["state_dir"] = str(tmp_path / "state")
    data["kafka"]["bootstrap_servers"] = f"127.0.0.1:{free_port()}"
    data["metrics"]["port"] = 0
    for key, value in changes.items():
        section, name = key.split("__")
        data[section][name] = value
    return write_config(tmp_path, data)


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "Traceback" not in err
    return lines[0]


def test_a_taken_metrics_port_is_retried_then_one_line(
    tmp_path: Path, taken_port: int, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runner, "METRICS_BIND_FIRST_WAIT_S", 0.01)
    tries: list[int] = []
    real = runner.start_http_server

    def counting(port: int, addr: str = "0.0.0.0") -> object:
        tries.append(port)
        return real(port, addr=addr)

    monkeypatch.setattr(runner, "start_http_server", counting)
    path = config_in(tmp_path, metrics__port=taken_port)
    assert agent_main(["--log-level", "WARNING", "run", "--config", str(path)]) == 1
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"otwatch-agent: metrics.port: cannot serve metrics on 127.0.0.1:"
                           f"{taken_port} (Address already in use, 5 attempts); fix: ")
    assert tries == [taken_port] * runner.METRICS_BIND_ATTEMPTS


def test_a_state_dir_that_cannot_be_made_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    path = config_in(tmp_path, agent__state_dir=str(blocker / "state"))
    assert agent_main(["--log-level", "WARNING", "run", "--config", str(path)]) == 1
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"otwatch-agent: agent.state_dir: cannot create {blocker / 'state'}")
    assert "fix:" in line


def test_a_damaged_baseline_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_in(tmp_path)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "baseline.json").write_text('{"controllers": [1, 2]}')
    assert agent_main(["--log-level", "WARNING", "run", "--config", str(path)]) == 2
    line = one_line(capsys.readouterr().err)
    assert "configuration error" in line and "baseline.json: the baseline file is unreadable" in \
        line and "fix:" in line


def test_a_bad_kafka_setting_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_in(tmp_path, kafka__tls={"ca_file": str(tmp_path / "no-such-ca.pem")})
    assert agent_main(["--log-level", "WARNING", "run", "--config", str(path)]) == 1
    line = one_line(capsys.readouterr().err)
    assert line.startswith("otwatch-agent: kafka.tls.ca_file: no such file") and "fix" in line
