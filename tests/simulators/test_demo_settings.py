"""`make demo` settings: a bad ``DEMO_SECONDS`` is one clear line and exit 2, before anything
is started or wiped (issue 14, item 5)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def demo(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``python -m simulators.demo ARGS``; should it start the pipeline after all, SIGTERM
    makes it stop every process it started (by PID) before the test fails."""
    proc = subprocess.Popen([sys.executable, "-m", "simulators.demo", *args], cwd=ROOT,
                            env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.parametrize("value", ["abc", "-5", "nan", "inf", "1e400", "5 s"])
def test_a_bad_demo_seconds_is_one_line_and_exit_2_and_changes_nothing(
    value: str, tmp_path: Path
) -> None:
    workdir = tmp_path / "demo"
    workdir.mkdir()
    (workdir / "kept.txt").write_text("from an earlier run")
    done = demo(["--workdir", str(workdir)], {**os.environ, "DEMO_SECONDS": value})
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"demo: DEMO_SECONDS={value!r}: ")
    assert "DEMO_SECONDS=60 make demo" in line and "Traceback" not in done.stderr
    assert done.stdout == ""
    assert (workdir / "kept.txt").exists(), "the demo's folder is wiped only for a real run"


def test_the_seconds_option_is_checked_the_same_way(tmp_path: Path) -> None:
    done = demo(["--workdir", str(tmp_path), "--seconds", "x"], dict(os.environ))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "demo: --seconds='x': not a number; fix: a number of seconds such as 60 "
        "(DEMO_SECONDS=60 make demo), or leave it unset to run until Ctrl-C"
    ]


@pytest.mark.parametrize(("text", "seconds"), [("", 0.0), (" ", 0.0), ("0", 0.0), ("60", 60.0),
                                               ("2.5", 2.5)])
def test_good_demo_seconds(text: str, seconds: float) -> None:
    from simulators.demo import run_seconds

    assert run_seconds(text) == seconds


def test_the_demo_makes_the_agents_key_first_and_its_classifier_trusts_it(
    tmp_path: Path
) -> None:
    """The agent finds its key where it keeps it (``<state_dir>/event-signing.key``, base64
    seed, mode 0600); the classifier's config trusts that key before either process starts."""
    import stat

    from agent.contract.signing import EventSigner
    from detectors.config import ClassifierConfig
    from simulators.demo import agent_signing_key, classifier_config

    signer = agent_signing_key(tmp_path / "agent")
    path = tmp_path / "agent" / "event-signing.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert EventSigner.from_private_b64(path.read_text()).key_id == signer.key_id
    config = ClassifierConfig.model_validate(classifier_config("127.0.0.1:1", tmp_path, signer))
    assert config.classifier.agent_keys == {signer.key_id: signer.public_key_b64}
