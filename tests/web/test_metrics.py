"""The records service's ``/metrics``: records KPIs, open records by state, overdue actions,
its own requests, parsed with Prometheus's own text parser."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.web.conftest import Client, Clock, bearer, serve


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_records_gauges_and_requests(client: Client, tokens: dict[str, str]) -> None:
    assert (await client.get("/api/kpis", headers=bearer(tokens["view.vic"]))).status == 200
    response = await client.get("/metrics")
    assert response.status == 200
    seen = samples(await response.text())
    assert seen[("otwatch_records_total_records", ())] == 2
    assert seen[("otwatch_records_open", (("state", "detected"),))] == 2
    assert ("otwatch_records_open", (("state", "closed"),)) not in seen  # open states only
    assert seen[("otwatch_records_overdue_actions", ())] == 0
    assert seen[("otwatch_records_overdue_records", ())] == 0
    kpi_calls = seen[("otwatch_records_http_requests_total",
                      (("method", "GET"), ("route", "/api/kpis"), ("status", "200")))]
    assert kpi_calls >= 1


async def test_metrics_before_the_database_exists(tmp_path: Path) -> None:
    client = await serve(str(tmp_path / "later.db"), clock=Clock())
    try:
        response = await client.get("/metrics")
        assert response.status == 200
        names = {f.name for f in text_string_to_metric_families(await response.text())}
        assert "otwatch_records_http_requests" in names
        assert "otwatch_records_open" not in names
    finally:
        await client.close()
    assert not (tmp_path / "later.db").exists()
