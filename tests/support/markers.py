"""The marker rule, enforced: `make test-fast` (``-m "not integration and not e2e"``) must run
only tests that need nothing outside this process, so a test that uses a real part without
the marker that says so fails, naming itself and the marker to add.

- ``integration``: a real Tansu broker, PostgreSQL, a simulated PLC (OPC UA/Modbus server) or
  any subprocess (an otwatch CLI, slapd, stunnel, chromium, node...).
- ``e2e``: the whole pipeline (`simulators.demo.Pipeline`: broker, plant, agent, classifier as
  processes). An ``e2e`` test also satisfies the ``integration`` rule.

Two checks, because a test can reach a real part in two ways:
1. by fixture (`pytest_runtest_setup`): ``broker``, ``pg_dsn``, ``pg_schema``, ``pipeline``...
   in the test's fixture closure;
2. directly (`install_guards`): `EmbeddedBroker.start`, `Pipeline(...)`, `ModbusPLC.start`,
   `OpcUaPLC.start`, `subprocess.Popen` and `psycopg.connect` check the running test's
   markers. The failure is also recorded on the test, so code that swallows the exception
   (a retry loop) cannot hide it.

The hooks are imported by tests/conftest.py.
"""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Callable, Generator
from typing import Any

import pytest

INTEGRATION = frozenset({"integration", "e2e"})
E2E = frozenset({"e2e"})

#: Fixture name -> (what it is, markers that allow it). Closure-wide: a fixture that uses
#: ``pg_dsn`` makes its tests need the marker too.
FIXTURES: dict[str, tuple[str, frozenset[str]]] = {
    "broker": ("the `broker` fixture (a real Tansu broker)", INTEGRATION),
    "pg_dsn": ("the `pg_dsn` fixture (the real PostgreSQL)", INTEGRATION),
    "pg_schema": ("the `pg_schema` fixture (the real PostgreSQL)", INTEGRATION),
    "pipeline": ("the `pipeline` fixture (the whole pipeline)", E2E),
    "shared_pipeline": ("the `shared_pipeline` fixture (the whole pipeline)", E2E),
}

_current: pytest.Item | None = None
_violations = pytest.StashKey[list[str]]()


def message(item: pytest.Item, what: str, allowed: frozenset[str]) -> str:
    marker = "e2e" if allowed == E2E else "integration"
    path = item.nodeid.split("::", 1)[0]
    return (
        f"{item.nodeid} uses {what} but is not marked `{marker}`: add "
        f"`pytestmark = pytest.mark.{marker}` to {path} (a list if it has one already), or "
        f"`@pytest.mark.{marker}` on the test. `make test-fast` runs "
        f'`-m "not integration and not e2e"` and must not start real parts (README, "Tests").'
    )


def marked(item: pytest.Item, allowed: frozenset[str]) -> bool:
    return any(item.get_closest_marker(name) is not None for name in allowed)


def pytest_runtest_setup(item: pytest.Item) -> None:
    for name in getattr(item, "fixturenames", ()):
        if name in FIXTURES:
            what, allowed = FIXTURES[name]
            if not marked(item, allowed):
                pytest.fail(message(item, what, allowed), pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[
        None, object, object]:
    global _current
    _current = item
    item.stash[_violations] = []
    try:
        return (yield)
    finally:
        _current = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[
        None, pytest.TestReport, pytest.TestReport]:
    report = yield
    violations = item.stash.get(_violations, [])
    if violations and report.passed:
        # The guard's exception was swallowed by the code under test: fail all the same.
        report.outcome = "failed"
        report.longrepr = violations[0]
    return report


def check(what: str, allowed: frozenset[str] = INTEGRATION) -> None:
    """Fail the running test (if any) unless it carries one of ``allowed``."""
    item = _current
    if item is None or marked(item, allowed):
        return
    text = message(item, what, allowed)
    item.stash.setdefault(_violations, []).append(text)
    pytest.fail(text, pytrace=False)


def _guard(owner: Any, attr: str, what: Callable[..., str], allowed: frozenset[str]) -> None:
    original = getattr(owner, attr)

    @functools.wraps(original)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        check(what(*args, **kwargs), allowed)
        return original(*args, **kwargs)

    setattr(owner, attr, guarded)


def _argv0(_self: Any, args: Any, *_a: Any, **_k: Any) -> str:
    first = args if isinstance(args, str | bytes) else (list(args) or ["?"])[0]
    return f"a subprocess (`{first!s}`)"


def install_guards() -> None:
    """Wrap the entry points of the real parts (once per process)."""
    import psycopg

    from simulators.broker import EmbeddedBroker
    from simulators.demo import Pipeline
    from simulators.modbus_plc import ModbusPLC
    from simulators.opcua_plc import OpcUaPLC

    if getattr(EmbeddedBroker.start, "__otwatch_guarded__", False):
        return
    _guard(EmbeddedBroker, "start", lambda *a, **k: "a real Tansu broker (EmbeddedBroker)",
           INTEGRATION)
    _guard(Pipeline, "__init__", lambda *a, **k: "the whole pipeline (simulators.demo.Pipeline)",
           E2E)
    _guard(ModbusPLC, "start", lambda *a, **k: "a simulated Modbus PLC", INTEGRATION)
    _guard(OpcUaPLC, "start", lambda *a, **k: "a simulated OPC UA PLC", INTEGRATION)
    _guard(subprocess.Popen, "__init__", _argv0, INTEGRATION)
    _guard(psycopg, "connect", lambda *a, **k: "the real PostgreSQL (psycopg.connect)",
           INTEGRATION)
    EmbeddedBroker.start.__otwatch_guarded__ = True  # type: ignore[attr-defined]
