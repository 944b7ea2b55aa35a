"""The README's metric catalogue lists every metric the product defines, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

from tests.deploy._metrics import defined_metrics

README = Path(__file__).parents[1] / "README.md"
#: Gauges made at scrape time (custom collectors) and the shared build info.
COLLECTED = {"otwatch_build_info", "otwatch_records_open", "otwatch_records_overdue_actions",
             "otwatch_records_overdue_records"}


def catalogue() -> set[str]:
    text = README.read_text(encoding="utf-8").split("## Metrics", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| [^|]+ \| `(otwatch_\w+)` \|", text, flags=re.MULTILINE))


def test_every_defined_metric_is_in_the_catalogue() -> None:
    from detectors.records.metrics import _GAUGES

    listed = catalogue()
    for name, kind in defined_metrics().items():
        exposed = name + "_total" if kind == "Counter" and not name.endswith("_total") else name
        assert exposed in listed, f"{exposed} ({kind}) is missing from README, ## Metrics"
    for _, name, _ in _GAUGES:
        assert name in listed
    assert COLLECTED <= listed


def test_the_catalogue_lists_no_metric_that_does_not_exist() -> None:
    from detectors.records.metrics import _GAUGES

    defined = {n + "_total" if k == "Counter" and not n.endswith("_total") else n
               for n, k in defined_metrics().items()}
    assert catalogue() <= defined | {n for _, n, _ in _GAUGES} | COLLECTED
