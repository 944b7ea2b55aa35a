"""The worklist query (`detectors.records.worklist`) on SQLite and PostgreSQL: filters,
free-text search, sort, paging, the open count by state and overdue CAPA actions, computed
in SQL over records the store itself wrote."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from detectors.classification import ClassKind, Severity
from detectors.records import (
    AddCapaAction,
    AssignLeads,
    CapaAction,
    Domain,
    RecordStore,
    State,
    Transition,
)
from detectors.records.worklist import WorklistError, WorklistFilter, query_worklist
from tests.records.people import QA
from tests.support.events import RECORDS_T0 as T0
from tests.support.events import classified, record_event

#: (controller, tag, severity, kind): record n is the n-th, one minute apart.
MADE = [
    ("press-01", "ZoneTemp", Severity.HIGH, ClassKind.JOINT),
    ("press-01", "Pressure", Severity.LOW, ClassKind.QUALITY_ONLY),
    ("oven-02", "Recipe_A", Severity.CRITICAL, ClassKind.JOINT),
    ("oven-02", "Speed", Severity.MEDIUM, ClassKind.SECURITY_ONLY),
    ("mixer-3", "ZoneTemp", Severity.HIGH, ClassKind.JOINT),
]
TODAY = date(2026, 3, 10)


def _id(n: int) -> str:
    return f"NC-2026-{n:06d}"


@pytest.fixture
def listed(store: RecordStore) -> RecordStore:
    now = T0 + timedelta(minutes=10)
    store.record_events([
        (record_event(n, controller=c, tag=t, minutes=n),
         classified(kind=k, severity=s, key=f"k{n}", description=f"{t} changed on {c}"))
        for n, (c, t, s, k) in enumerate(MADE, start=1)], now=now)
    store.execute(AssignLeads(record_id=_id(3), reason="leads", lead="qa.lee",
                              co_lead="soc.kim"), actor=QA, now=now)
    store.execute(Transition(record_id=_id(2), to=State.CANCELLED, reason="duplicate"),
                  actor=QA, now=now)
    for n, due in ((3, date(2026, 3, 5)), (5, date(2026, 4, 1))):
        store.execute(AddCapaAction(record_id=_id(n), reason="plan", action=CapaAction(
            id="A1", description="fix", owner="qa.lee", domain=Domain.QUALITY,
            original_due=due, current_due=due)), actor=QA, now=now)
    return store


def ids(store: RecordStore, **wanted: object) -> list[str]:
    with store.database.read() as conn:
        page = query_worklist(conn, WorklistFilter(**wanted), today=TODAY)  # type: ignore[arg-type]
    return [row.id for row in page.rows]


def test_open_records_newest_first_by_default(listed: RecordStore) -> None:
    assert ids(listed) == [_id(5), _id(4), _id(3), _id(1)]
    assert ids(listed, state="all") == [_id(n) for n in (5, 4, 3, 2, 1)]
    assert ids(listed, state="cancelled") == [_id(2)]


def test_filters_combine(listed: RecordStore) -> None:
    assert ids(listed, severity="high") == [_id(5), _id(1)]
    assert ids(listed, classification="joint", severity="critical") == [_id(3)]
    assert ids(listed, owner="soc.kim") == [_id(3)]
    assert ids(listed, overdue=True) == [_id(3)]


def test_search_matches_id_controller_tag_and_description(listed: RecordStore) -> None:
    assert ids(listed, q="OVEN") == [_id(4), _id(3)]
    assert ids(listed, q="zonetemp") == [_id(5), _id(1)]
    assert ids(listed, q="000004") == [_id(4)]
    assert ids(listed, q="_A") == [_id(3)]  # a LIKE wildcard is searched as itself
    assert ids(listed, q="%") == []


def test_sorts_and_pages(listed: RecordStore) -> None:
    assert ids(listed, sort="severity") == [_id(3), _id(5), _id(1), _id(4)]
    assert ids(listed, sort="oldest") == [_id(1), _id(3), _id(4), _id(5)]
    assert ids(listed, sort="overdue")[0] == _id(3)
    with listed.database.read() as conn:
        page = query_worklist(conn, WorklistFilter(state="all", sort="id", per_page=25,
                                                   page=1), today=TODAY)
        assert page.total == 5 and page.pages == 1
        assert page.open_by_state == {"detected": 4}
        (row,) = [r for r in page.rows if r.id == _id(3)]
        assert (row.lead, row.co_lead, row.overdue_actions) == ("qa.lee", "soc.kim", 1)
        beyond = query_worklist(conn, WorklistFilter(page=2), today=TODAY)
        assert beyond.rows == [] and beyond.total == 4


@pytest.mark.parametrize(("wanted", "named"), [
    ({"state": "flying"}, "state"), ({"severity": "huge"}, "severity"),
    ({"sort": "random"}, "sort"), ({"per_page": 7}, "per_page"), ({"page": 0}, "page"),
])
def test_unknown_filter_values_are_refused_by_name(wanted: dict[str, object],
                                                   named: str) -> None:
    with pytest.raises(WorklistError, match=named):
        WorklistFilter(**wanted)  # type: ignore[arg-type]
