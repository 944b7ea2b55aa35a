"""Throughput of `RecordStore.record_events` on SQLite (not a test): 50,000 events, batches of 500.

Run: ``.venv/bin/python -m tests.bench.measure_records_throughput [--events N] [--keys K]``.
Events spread over K correlation keys (incidents): with few keys most attach as evidence,
with ``--keys`` equal to ``--events`` every event opens a record. ``--raw`` passes the message
bytes as the classifier has them from Kafka. Prints events/s (wall) and events per CPU-second
for the recording alone; on a shared machine the CPU figure is the one to compare.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from detectors.records import open_store
from tests.support.events import RECORDS_T0 as T0
from tests.support.events import classified
from tests.support.events import record_event as event


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--keys", type=int, default=1_000)
    parser.add_argument("--raw", action="store_true",
                        help="pass the message bytes, as the classifier has them from Kafka")
    args = parser.parse_args()
    items = [
        (event(n, controller=f"plc-{n % args.keys}", minutes=n / 1000),
         classified(key=f"plant-1/plc-{n % args.keys}"))
        for n in range(args.events)
    ]
    raws = [ev.to_json() for ev, _ in items] if args.raw else None
    with tempfile.TemporaryDirectory() as tmp, open_store(str(Path(tmp) / "r.db")) as store:
        store.migrate()
        start, cpu_start = time.perf_counter(), time.process_time()
        for i in range(0, len(items), args.batch):
            store.record_events(items[i : i + args.batch], now=T0 + timedelta(minutes=60),
                                raw=raws[i : i + args.batch] if raws else None)
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        records = len(store.list_records())
        ok = store.verify_trail().ok
    print(f"{args.events} events in {elapsed:.2f} s: {args.events / elapsed:,.0f} events/s "
          f"({records} records, trail verified: {ok}); CPU {cpu:.2f} s: "
          f"{args.events / cpu:,.0f} events per CPU-second")


if __name__ == "__main__":
    main()
