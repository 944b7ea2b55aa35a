"""Benchmarks for ``make bench`` (issue 9): ratios against the bare libraries, or latencies.

``python -m tests.bench [--only KEY ...] [--quick]`` runs each benchmark module in a child
process of its own (bounded in time, killed by PID on overrun), prints a table and writes the
figures to ``$BENCH_OUT`` (default ``bench-results.json``), one number or null per key. The
baselines, reasons and notes go next to it, to ``<BENCH_OUT stem>.details.json``.

One module per benchmark; each has ``KEYS`` and ``run(quick) -> list[Result]`` and can be run
alone: ``python -m tests.bench.spool_drain --quick``.
"""
