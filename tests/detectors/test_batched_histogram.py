"""`BatchedHistogram` counts what ``Histogram.observe`` counts, a batch at a time."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from detectors.health import LATENCY, BatchedHistogram

BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
#: Latencies as the recorder observes them (never negative), bounds themselves included.
AMOUNTS = st.one_of(st.sampled_from(BUCKETS), st.floats(0.0, 100.0, allow_nan=False))


def _exposed(registry: CollectorRegistry) -> list[str]:
    """The exposition's samples, without ``_created`` (a `BatchedHistogram` has none) and
    with the sum left to `_sum_of` (added in another order, its last bits may differ)."""
    text = generate_latest(registry).decode()
    return [line for line in text.splitlines()
            if "_created" not in line and not line.startswith("x_seconds_sum")]


def _sum_of(registry: CollectorRegistry) -> float:
    value = registry.get_sample_value("x_seconds_sum")
    assert value is not None
    return value


@given(st.lists(st.lists(AMOUNTS, max_size=30), max_size=5))
def test_batches_count_as_single_observations(batches: list[list[float]]) -> None:
    one_by_one, batched = CollectorRegistry(), CollectorRegistry()
    plain = Histogram("x_seconds", "doc", buckets=BUCKETS, registry=one_by_one)
    counted = BatchedHistogram("x_seconds", "doc", BUCKETS, registry=batched)
    for batch in batches:
        for amount in batch:
            plain.observe(amount)
        counted.observe_counts(Counter(batch))
    assert _exposed(batched) == _exposed(one_by_one)
    total = _sum_of(one_by_one)
    assert abs(_sum_of(batched) - total) <= 1e-9 * max(1.0, total)


def test_the_latency_histogram_is_served_by_the_default_registry() -> None:
    from prometheus_client import REGISTRY

    before = REGISTRY.get_sample_value("otwatch_classifier_processing_seconds_count") or 0.0
    LATENCY.observe_counts({0.02: 3, 40.0: 1})
    after = REGISTRY.get_sample_value("otwatch_classifier_processing_seconds_count")
    assert after == before + 4
    inf = REGISTRY.get_sample_value("otwatch_classifier_processing_seconds_bucket",
                                    {"le": "+Inf"})
    assert inf == after
