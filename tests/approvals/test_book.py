"""ApprovalBook: reload on change, last good set on a broken file, single use across restarts,
and the topic's records, revocations and tombstones."""

from __future__ import annotations

import itertools
import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

from agent.approvals import ApprovalBook, ApprovalsStateError, MatchPolicy, MatchResult
from agent.approvals.targets import target_checker
from agent.config import load_agent_config
from agent.contract import ChangeKind, Verdict
from tests.approvals.factory import at, record, record_yaml

_mtimes = itertools.count(1_700_000_000)


def write(path: Path, data: Any) -> None:
    """Write a file as an editor would, with a later mtime than the last write.

    The kernel stamps files from a coarse clock, so two writes in one test can share an mtime;
    an explicit, increasing mtime stands in for the seconds between two real edits.
    """
    text = data if isinstance(data, str) else yaml.safe_dump(data, allow_unicode=True)
    path.write_text(text, encoding="utf-8")
    stamp = next(_mtimes) * 1_000_000_000
    os.utime(path, ns=(stamp, stamp))


def decide(book: ApprovalBook, value: float = 185.0, when: datetime | None = None) -> MatchResult:
    return book.decide(controller="press-01", tag="temperature_sp",
                       change_kind=ChangeKind.SETPOINT_CHANGE, new_value=value,
                       occurred_at=when or at(12))


def metric(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_refresh_picks_up_a_changed_file(tmp_path: Path) -> None:
    path = tmp_path / "approvals.yaml"
    write(path, {"approvals": [record_yaml()]})
    book = ApprovalBook([path], policy=MatchPolicy())
    assert decide(book, 190.0).verdict is Verdict.VALUE_MISMATCH
    write(path, {"approvals": [record_yaml(expected={"exact": 190.0})]})
    book.refresh()
    assert [r.expected for r in book.approvals()] == [record(expected={"exact": 190.0}).expected]
    assert decide(book, 190.0).verdict is Verdict.AUTHORIZED


def test_a_record_added_later_overrides_the_remembered_no_record_verdict(tmp_path: Path) -> None:
    path = tmp_path / "approvals.yaml"
    write(path, {"approvals": [record_yaml(tag="pressure_sp")]})
    book = ApprovalBook([path], policy=MatchPolicy())
    first = decide(book)
    assert first.verdict is Verdict.UNAPPROVED
    assert first.reason == "no approved change record for press-01/temperature_sp"
    write(path, {"approvals": [record_yaml(tag="pressure_sp"), record_yaml(id="CR-2")]})
    assert decide(book).verdict is Verdict.AUTHORIZED  # decide refreshes: the new record counts
    write(path, {"approvals": [record_yaml(tag="pressure_sp")]})
    book.refresh()
    assert decide(book) == first  # revoked again: back to no record


class _CountingValidator:
    """Stands in for a model's validator and counts its calls (each is one validation)."""

    def __init__(self, real: Any) -> None:
        self.real, self.calls = real, 0

    def validate_python(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.real.validate_python(*args, **kwargs)


def test_the_no_record_verdict_is_built_not_validated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tag no record names gets its verdict without a validation (one per tag's first change
    on a 10,000-tag controller), and the result is the one validation gives."""
    path = tmp_path / "approvals.yaml"
    write(path, {"approvals": [record_yaml(tag="pressure_sp")]})
    book = ApprovalBook([path], policy=MatchPolicy())
    counting = _CountingValidator(MatchResult.__pydantic_validator__)
    monkeypatch.setattr(MatchResult, "__pydantic_validator__", counting)
    found = decide(book)
    assert counting.calls == 0
    monkeypatch.undo()
    expected = MatchResult(verdict=Verdict.UNAPPROVED,
                           reason="no approved change record for press-01/temperature_sp")
    assert found == expected
    assert found.model_fields_set == expected.model_fields_set
    assert found.model_dump_json() == expected.model_dump_json()


def test_broken_file_keeps_last_good_set(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "approvals.yaml"
    write(path, {"approvals": [record_yaml()]})
    book = ApprovalBook([path], policy=MatchPolicy())
    errors_before = metric("otwatch_agent_approvals_file_load_errors_total", file=str(path)) or 0
    caplog.set_level(logging.DEBUG, logger="agent.approvals")
    for broken in ("approvals: [", {"approvals": [record_yaml() | {"valid_from": "tomorrow"}]}):
        write(path, broken)
        book.refresh()
        assert [r.id for r in book.approvals()] == ["CR-1"]
        assert decide(book).verdict is Verdict.AUTHORIZED
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and str(path) in errors[0].getMessage()
    assert metric("otwatch_agent_approvals_file_broken", file=str(path)) == 1
    assert metric("otwatch_agent_approvals_file_load_errors_total", file=str(path)) == (
        errors_before + 2
    )
    write(path, {"approvals": [record_yaml(id="CR-2")]})
    book.refresh()
    assert [r.id for r in book.approvals()] == ["CR-2"]
    assert metric("otwatch_agent_approvals_file_broken", file=str(path)) == 0


def test_missing_file_is_empty_until_it_appears(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "approvals.yaml"
    book = ApprovalBook([path], policy=MatchPolicy())
    assert book.approvals() == []
    assert decide(book).verdict is Verdict.UNAPPROVED
    book.refresh()
    assert sum(str(path) in r.getMessage() for r in caplog.records) == 1
    write(path, {"approvals": [record_yaml()]})
    assert decide(book).verdict is Verdict.AUTHORIZED
    path.unlink()
    assert decide(book).verdict is Verdict.UNAPPROVED


def test_broken_at_start_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "approvals.yaml"
    write(path, "approvals: [")
    book = ApprovalBook([path], policy=MatchPolicy())
    assert book.approvals() == []


def test_several_files_merge_in_order(tmp_path: Path) -> None:
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    write(first, {"approvals": [record_yaml(), record_yaml(id="CR-2")]})
    write(second, {"approvals": [record_yaml(id="CR-2", expected={"exact": 190.0})]})
    book = ApprovalBook([first, second], policy=MatchPolicy())
    assert [(r.id, r.expected.model_dump()) for r in book.approvals()] == [
        ("CR-1", {"exact": 185.0, "unit": None}),
        ("CR-2", {"exact": 190.0, "unit": None}),
    ]


def test_single_use_survives_a_restart(tmp_path: Path) -> None:
    path, state = tmp_path / "approvals.yaml", tmp_path / "state" / "approvals-used.json"
    write(path, {"approvals": [record_yaml(single_use=True)]})
    book = ApprovalBook([path], policy=MatchPolicy(), state_path=state)
    first = decide(book)
    assert (first.verdict, first.consumed) == (Verdict.AUTHORIZED, "CR-1")
    assert decide(book).verdict is Verdict.UNAPPROVED
    assert json.loads(state.read_text())["used"].keys() == {"CR-1"}
    assert metric("otwatch_agent_approvals_used") == 1

    restarted = ApprovalBook([path], policy=MatchPolicy(), state_path=state)
    assert "CR-1" in restarted.used()
    again = decide(restarted)
    assert again.verdict is Verdict.UNAPPROVED
    assert again.reason == (
        "approval CR-1 is single-use and was already used (by the change at "
        "2026-11-23T12:00:00+00:00)"
    )


def test_corrupt_state_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "approvals-used.json"
    state.write_text("{not json", encoding="utf-8")
    with pytest.raises(ApprovalsStateError, match=str(state)):
        ApprovalBook([], policy=MatchPolicy(), state_path=state)


def test_expired_metric_counts_ended_windows(tmp_path: Path) -> None:
    path = tmp_path / "approvals.yaml"
    ended = record_yaml(id="CR-2", valid_until="2026-11-23T10:00:00Z")
    write(path, {"approvals": [record_yaml(), ended]})
    ApprovalBook([path], policy=MatchPolicy(), clock=lambda: at(15))
    assert metric("otwatch_agent_approvals_loaded") == 2
    assert metric("otwatch_agent_approvals_expired") == 1


def topic_value(**changes: Any) -> bytes:
    return json.dumps(record_yaml(**changes)).encode()


#: A site that trusts every writer of the approvals topic (unsigned records from it count):
#: these tests are about the topic's records, tombstones and revocations, not their signatures
#: (tests/approvals/test_topic_trust.py).
TOPIC_TRUSTED = MatchPolicy(topic_require_signed=False)


def test_topic_record_defines_and_tombstone_revokes(tmp_path: Path) -> None:
    book = ApprovalBook([], policy=TOPIC_TRUSTED)
    assert book.apply_topic_record(b"CR-1", topic_value())
    assert decide(book).verdict is Verdict.AUTHORIZED
    assert book.apply_topic_record(b"CR-1", None)
    assert book.approvals() == []
    assert decide(book).verdict is Verdict.UNAPPROVED
    assert book.apply_topic_record(b"CR-1", topic_value())
    assert decide(book).verdict is Verdict.AUTHORIZED


def test_topic_status_revoked(tmp_path: Path) -> None:
    book = ApprovalBook([], policy=MatchPolicy())
    book.apply_topic_record(b"CR-1", topic_value())
    book.apply_topic_record(b"CR-1", topic_value(status="revoked"))
    result = decide(book)
    assert (result.verdict, result.reason) == (Verdict.UNAPPROVED, "approval CR-1 was revoked")


def test_topic_overrides_and_tombstones_a_file_record(tmp_path: Path) -> None:
    path = tmp_path / "approvals.yaml"
    write(path, {"approvals": [record_yaml()]})
    book = ApprovalBook([path], policy=TOPIC_TRUSTED)
    book.apply_topic_record(b"CR-1", topic_value(expected={"exact": 190.0}))
    assert decide(book, 190.0).verdict is Verdict.AUTHORIZED
    book.apply_topic_record(b"CR-1", None)
    assert decide(book).verdict is Verdict.UNAPPROVED


@pytest.mark.parametrize("key,value,why", [
    (b"CR-1", b"{not json", "Invalid JSON"),
    (b"CR-1", json.dumps(record_yaml() | {"valid_from": "2026-11-23T08:00:00"}).encode(),
     "valid_from"),
    (b"CR-2", topic_value(), "carries a record with id CR-1"),
    (b"\xff", topic_value(), "not a UTF-8"),
])
def test_topic_bad_record_is_refused_and_earlier_kept(
    key: bytes, value: bytes, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    book = ApprovalBook([], policy=MatchPolicy())
    book.apply_topic_record(b"CR-1", topic_value())
    before = metric("otwatch_agent_approvals_topic_record_errors_total") or 0
    assert not book.apply_topic_record(key, value)
    assert [r.id for r in book.approvals()] == ["CR-1"]
    assert metric("otwatch_agent_approvals_topic_record_errors_total") == before + 1
    assert why in caplog.text


def test_decide_reports_utc_times() -> None:
    book = ApprovalBook([], policy=MatchPolicy())
    book.apply_topic_record(b"CR-1", topic_value())
    result = decide(book, when=datetime(2026, 11, 23, 13, tzinfo=UTC))
    assert result.approval is not None and result.approval.valid_from == at(8)


def test_approvals_the_agent_can_never_match_are_refused_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The agent checks its approvals against its own config, as ``approvals validate
    --config`` does: a record that can never match is left out and logged once with its fix;
    the others stay in force, and nothing stops."""
    config = load_agent_config(Path(__file__).parents[2] / "config" / "agent.yaml")
    path = tmp_path / "approvals.yaml"
    member = record_yaml(id="CR-9", tag="recipe_temperature", expected={"exact": 190.0})
    write(path, {"approvals": [record_yaml(), member]})
    with caplog.at_level(logging.ERROR, logger="agent.approvals.book"):
        book = ApprovalBook([path], policy=MatchPolicy(),
                            refuse=target_checker(config, "agent.yaml"))
        write(path, {"approvals": [record_yaml(), member, record_yaml(id="CR-2")]})
        book.refresh()  # reloaded: CR-9 is still refused, and not logged again
    assert [r.id for r in book.approvals()] == ["CR-1", "CR-2"]
    assert list(book.refused()) == ["CR-9"]
    lines = [r.getMessage() for r in caplog.records if "CR-9" in r.getMessage()]
    assert len(lines) == 1
    assert "approval CR-9 is refused and authorizes nothing: tag: recipe_temperature is only " \
        "ever reported as part of recipe 'active_recipe'" in lines[0] and "fix:" in lines[0]
    assert REGISTRY.get_sample_value("otwatch_agent_approvals_refused") == 1
    assert decide(book).verdict is Verdict.AUTHORIZED
