"""``e2e_latency_p99_ms``: PLC write → master record committed, 10 changes/s, 100 controllers.

Not written within the first time box of issue 9. The plan: `otwatch-sim` (100 Modbus PLCs)
with a server-side writer logging write times, the real ``otwatch-agent`` and
``otwatch-classifier`` in processes of their own, a fresh broker, and this process polling the
records database (WAL, read only) for new ``evidence`` rows every 10 ms; latency = first seen
committed − write time, one clock. Until then the key is null with this reason.
"""

from __future__ import annotations

from tests.bench._common import Result, child_main, failed

KEYS = ["e2e_latency_p99_ms"]


def run(quick: bool) -> list[Result]:
    return failed(KEYS, "not implemented yet (issue 9 time box); see tests/bench/e2e.py")


if __name__ == "__main__":
    child_main(KEYS, run)
