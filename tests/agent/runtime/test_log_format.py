"""``--log-format text|json`` with UTC times, and library noise demoted at the handler.

Each case runs in its own interpreter (the root handler is the process's, not pytest's). The
aiokafka case makes the real client fail to reach a closed loopback port, so the line checked
is the one aiokafka itself logs on each attempt.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

UTC_TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"

_SCRIPT = """
import asyncio, logging, sys
from agent.runtime.logs import setup_logging
from agent.kafka.client_logs import demote_kafka_client_logs
setup_logging(sys.argv[1], log_format=sys.argv[2])
demote_kafka_client_logs()
logging.getLogger("agent.test").info("hello %s", "world")
logging.getLogger("pymodbus.transport.transport").error("frame dump 0x01 0x03")
try:
    raise ValueError("boom")
except ValueError:
    logging.getLogger("agent.test").exception("it failed")

async def retry_line(port):
    from aiokafka import AIOKafkaProducer
    producer = AIOKafkaProducer(bootstrap_servers=f"127.0.0.1:{port}", request_timeout_ms=1000)
    try:
        await producer.start()
    except Exception:
        pass
    finally:
        await producer.stop()
asyncio.run(retry_line(int(sys.argv[3])))
"""


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens there once closed


def log_of(level: str, fmt: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, level, fmt, str(closed_port())],
        capture_output=True, text=True, timeout=60, check=True,
    )
    return done.stderr


def test_json_lines_with_utc_times() -> None:
    lines = [json.loads(line) for line in log_of("INFO", "json").splitlines()]
    hello, failed = lines[0], lines[1]
    assert hello["message"] == "hello world" and hello["level"] == "INFO"
    assert hello["logger"] == "agent.test" and re.fullmatch(UTC_TIME, hello["ts"])
    assert "ValueError: boom" in failed["exception"]
    assert len(lines) == 2, lines  # neither pymodbus's frame dump nor aiokafka's retry line


def test_text_lines_with_utc_times() -> None:
    lines = log_of("INFO", "text").splitlines()
    assert re.fullmatch(UTC_TIME + r" INFO agent\.test: hello world", lines[0])
    assert not any("pymodbus" in line or "aiokafka" in line for line in lines)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_library_noise_is_there_at_debug_as_debug(fmt: str) -> None:
    text = log_of("DEBUG", fmt)
    if fmt == "json":
        seen = {(r["logger"], r["level"]) for r in map(json.loads, text.splitlines())}
        assert ("pymodbus.transport.transport", "DEBUG") in seen
        assert ("aiokafka", "DEBUG") in seen
        assert not any(level != "DEBUG" for name, level in seen if name.startswith("aiokafka"))
        return
    retry = [line for line in text.splitlines() if "Unable connect to" in line]
    assert retry and all(" DEBUG aiokafka: " in line for line in retry), text
    assert " DEBUG pymodbus.transport.transport: frame dump" in text
