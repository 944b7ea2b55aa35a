"""The helper the metric-name checks rest on: it must find names, and find wrong ones."""

from __future__ import annotations

from tests.deploy._metrics import exposed_series, metric_names


def test_metric_names_strips_matchers_ranges_grouping_and_functions() -> None:
    expr = ('histogram_quantile(0.95, sum by (le, controller) (rate(a_bucket{job=~"$j", '
            'x="up"}[$__rate_interval]))) > 1e3 and on (instance) b offset 5m unless c')
    assert metric_names(expr) == {"a_bucket", "b", "c"}
    assert metric_names('(time() - g{c="x"}) > 300') == {"g"}


def test_exposed_series_expands_counters_and_histograms() -> None:
    series = exposed_series()
    assert "otwatch_agent_approvals_file_load_errors_total" in series  # Counter gains _total
    assert "otwatch_agent_reads_total" in series  # not _total_total
    assert {"otwatch_agent_read_seconds_bucket", "otwatch_agent_read_seconds_count"} <= series
    assert "otwatch_agent_read_seconds" not in series
    assert "otwatch_agent_reads" not in series
