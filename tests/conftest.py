"""Shared fixtures: the real embedded broker, free loopback ports, PostgreSQL; and the marker
rule (tests/support/markers.py): a test that uses a real part without its marker fails."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from simulators.broker import EmbeddedBroker
from tests.support import markers
from tests.support.markers import (  # noqa: F401  (hooks, found by name)
    pytest_runtest_makereport,
    pytest_runtest_protocol,
)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    markers.pytest_runtest_setup(item)


def pytest_configure(config: pytest.Config) -> None:
    markers.install_guards()


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    """A fresh Tansu broker on a free loopback port, stopped by PID after the test.

    Per test, on purpose (also under xdist, where each worker starts its own): Tansu starts
    in well under a second, and a fresh broker means no test reads another's topics, offsets
    or consumer groups; a shared one would need every test to use its own topic names.
    """
    with EmbeddedBroker() as running:
        yield running


PG_DSN = os.environ.get("OTWATCH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def pg_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_DSN, connect_timeout=3):
            return True
    except Exception:
        return False


@pytest.fixture
def pg_dsn() -> str:
    """The PostgreSQL test database; skipped if absent, unless OTWATCH_REQUIRE_PG=1."""
    if not pg_available():
        if os.environ.get("OTWATCH_REQUIRE_PG") == "1":
            pytest.fail(
                f"PostgreSQL is required (OTWATCH_REQUIRE_PG=1) but {PG_DSN} is not reachable"
            )
        pytest.skip(f"PostgreSQL not reachable at {PG_DSN}")
    return PG_DSN
