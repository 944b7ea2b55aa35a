"""Throughput of `RecordStore.record_events` on SQLite (not a test): 50,000 events, batches of 500.

Run: ``.venv/bin/python -m tests.records.measure_throughput [--events N] [--keys K]``.
Events spread over K correlation keys (incidents), so most attach as evidence and some open
records, as a busy plant would produce; prints events/s for the recording alone.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from detectors.records import open_store
from tests.records.conftest import T0, classified, event


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--keys", type=int, default=1_000)
    args = parser.parse_args()
    items = [
        (event(n, controller=f"plc-{n % args.keys}", minutes=n / 1000),
         classified(key=f"plant-1/plc-{n % args.keys}"))
        for n in range(args.events)
    ]
    with tempfile.TemporaryDirectory() as tmp, open_store(str(Path(tmp) / "r.db")) as store:
        store.migrate()
        start, cpu_start = time.perf_counter(), time.process_time()
        for i in range(0, len(items), args.batch):
            store.record_events(items[i : i + args.batch], now=T0 + timedelta(minutes=60))
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        records = len(store.list_records())
        ok = store.verify_trail().ok
    print(f"{args.events} events in {elapsed:.2f} s: {args.events / elapsed:,.0f} events/s "
          f"({records} records, trail verified: {ok}); CPU {cpu:.2f} s: "
          f"{args.events / cpu:,.0f} events per CPU-second")


if __name__ == "__main__":
    main()
