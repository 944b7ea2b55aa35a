"""Tamper evidence for the whole records store (`otwatch-records verify`), on SQLite and
PostgreSQL: each kind of tampering an attacker with write access to the database can do is
done with raw SQL (as they would), and verify must fail and name the first bad item. An
untouched store, with every kind of trail action in it, verifies intact.

The store is built in three phases with a signed checkpoint after the first two (as the
classifier's checkpoint publisher makes them) and two comments after the last one, so that:
phase 3 is within the checkpoint interval (3 entries) and tolerated; deleting the newest
checkpoint leaves more than the interval uncovered.

``SHOW_VERIFY=1 pytest -s tests/records/test_tamper.py`` prints every verify run.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import orjson
import psycopg
import pytest

from detectors.classification import Severity
from detectors.identity import add_user
from detectors.records import (
    AddCapaAction,
    AddComment,
    AddExternalReference,
    AssessImpact,
    AssignLeads,
    AttachFile,
    CapaAction,
    CheckEffectiveness,
    ContainmentDecision,
    ContributeImpact,
    DecideNotification,
    DecisionKind,
    DecisionStatus,
    EvidenceChecklist,
    LinkTicket,
    ManualReport,
    MoveCapaDue,
    NotificationDecision,
    PlaceHold,
    RecordDecision,
    RecordRootCause,
    RecordStore,
    ReleaseHold,
    ReportTicketState,
    SetContainment,
    State,
    UpdateCapaAction,
    UpdateDecision,
    WhyAnswer,
)
from detectors.records.checkpoints import (
    Checkpoint,
    CheckpointKeyError,
    CheckpointSigner,
    Interval,
    checkpoint_if_due,
    generate_key,
)
from detectors.records.commands import Actor
from detectors.records.links import note_delivery
from detectors.records.trail import TrailWriter, append_rows, entry_hash, head_of
from detectors.records_cli import main
from tests.records.lifecycle_steps import assess, at, drive
from tests.records.people import OPERATOR, QA, SOC, VIEWER
from tests.support.events import RECORDS_T0 as T0
from tests.support.events import classified
from tests.support.events import record_event as event

SVC = Actor("svc-thehive")  # the ticket connector's service user
SNAPSHOT = b"ZoneTemp setpoint 210 -> 230, written by EWS-3 at 03:12\n"
EVERY = 3  # entries tolerated after the newest checkpoint (verify --checkpoint-every)
SQLITE_DROP = "DROP TRIGGER audit_trail_no_update; DROP TRIGGER audit_trail_no_delete;"
PG_DROP = ("DROP TRIGGER audit_trail_no_update ON audit_trail; "
           "DROP TRIGGER audit_trail_no_delete ON audit_trail;")


@dataclass
class Built:
    """The store under test and what a tampering test needs to know about it."""

    store: RecordStore
    target: str
    schema: str | None
    key: Path
    closed: str       # NC record driven to closed (signatures, CAPA, effectiveness check)
    open_: str        # NC record worked in containment (holds, decisions, impact, every step)
    cancelled: str
    reported: str     # opened by hand (a manual report)
    checkpoints: list[Checkpoint]

    def sql(self, statements: str) -> None:
        """Raw SQL on its own connection, bypassing the store (as an attacker would)."""
        if self.schema is None:
            with sqlite3.connect(self.target) as conn:
                conn.executescript(statements)
        else:
            with psycopg.connect(self.target, autocommit=True,
                                 options=f"-c search_path={self.schema}") as conn:
                conn.execute(statements)

    def drop_trail_triggers(self) -> None:
        """What a DBA (or an attacker with their rights) can do first."""
        self.sql(SQLITE_DROP if self.schema is None else PG_DROP)

    def verify(self, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, list[str]]:
        capsys.readouterr()
        db = ["--db", self.target, *(["--schema", self.schema] if self.schema else [])]
        code = main([*db, "verify", "--public-key", f"{self.key}.pub",
                     "--checkpoint-every", str(EVERY), *extra])
        out = capsys.readouterr().out
        if os.environ.get("SHOW_VERIFY"):  # the transcripts for the note
            with capsys.disabled():
                print(f"\n$ otwatch-records verify --public-key K.pub --checkpoint-every {EVERY} "
                      f"{' '.join(extra)}\n{out}(exit {code})")
        return code, out.splitlines()


def _checkpoint(store: RecordStore, signer: CheckpointSigner, hours: float) -> Checkpoint:
    made = checkpoint_if_due(store.database, signer, Interval(EVERY, 300), now=at(hours),
                             force=True)
    assert made is not None
    return made


def _containment_work(store: RecordStore, rid: str) -> None:
    now = at(2)
    store.transition(rid, State.TRIAGE, actor=QA, reason="triaged", now=now)
    store.execute(AssignLeads(record_id=rid, lead="qa.lee", co_lead="soc.kim", reason="leads"),
                  actor=QA, now=now)
    store.transition(rid, State.CONTAINMENT, actor=QA, reason="contain", now=now)
    assess(store, rid, now)  # the guards: signed-off contributions before containment
    store.execute(PlaceHold(record_id=rid, lot_id="LOT-7", reason="made under the change"),
                  actor=QA, now=now)
    store.execute(PlaceHold(record_id=rid, lot_id="LOT-8", reason="same shift"), actor=QA,
                  now=now)
    store.execute(ReleaseHold(record_id=rid, lot_id="LOT-8", reason="tested good"), actor=QA,
                  now=at(3))
    store.execute(RecordDecision(record_id=rid, reason="freeze", decision=ContainmentDecision(
        kind=DecisionKind.RELEASE_FREEZE, owner="qa")), actor=QA, now=now)
    store.execute(UpdateDecision(record_id=rid, reason="in effect", index=0,
                                 status=DecisionStatus.IN_EFFECT), actor=QA, now=now)
    store.execute(ContributeImpact(record_id=rid, reason="security view", function="security",
                                   assessment="workstation reached the PLC", risk="high"),
                  actor=SOC, now=now)
    action = CapaAction.model_validate({
        "id": "C1", "description": "two-person rule for downloads", "owner": "ot-lead",
        "domain": "both", "original_due": "2026-04-01", "current_due": "2026-04-01"})
    store.execute(AddCapaAction(record_id=rid, reason="planned", action=action), actor=QA,
                  now=now)
    store.execute(UpdateCapaAction(record_id=rid, reason="started", action_id="C1",
                                   changes={"status": "in_progress"}), actor=QA, now=now)
    store.execute(RecordRootCause(record_id=rid, reason="first why",
                                  five_whys=[WhyAnswer(answer="shared password")]),
                  actor=QA, now=now)
    store.update_field(rid, "log.root_cause", "shared engineering password", actor=QA,
                       reason="root cause", now=now)
    store.update_field(rid, "ticket.status", "in_progress", actor=SOC, reason="working it",
                       now=now)
    _joint_steps(store, rid)
    _links(store, rid)


def _joint_steps(store: RecordStore, rid: str) -> None:
    """Every step of the joint procedure (`steps.HANDLERS`) once, an attachment and its
    download (a custody entry)."""
    now = at(2.5)
    store.execute(AssessImpact(record_id=rid, reason="impact", product_impact="LOT-7 at risk",
                               data_integrity="batch record intact", look_back_from=T0,
                               look_back_basis="first unapproved write"), actor=QA, now=now)
    store.execute(DecideNotification(record_id=rid, reason="decided", decision=(
        NotificationDecision(audience="customer", notify=True, rationale="lot shipped",
                             notified_to="ACME QA", notified_at=now))), actor=QA, now=now)
    store.execute(RecordRootCause(record_id=rid, reason="RCA", root_cause="shared EWS password",
                                  validated_by=["qa.lee", "soc.kim"]), actor=QA, now=now)
    store.execute(SetContainment(record_id=rid, reason="preserved", evidence_checklist=(
        EvidenceChecklist(logs=True, configuration_snapshot=True))), actor=SOC, now=now)
    store.execute(MoveCapaDue(record_id=rid, action_id="C1", to_due=date(2026, 4, 15),
                              approved_by="soc.kim", reason="supplier late"), actor=QA, now=now)
    store.execute(UpdateCapaAction(record_id=rid, reason="done", action_id="C1",
                                   changes={"status": "done"}), actor=QA, now=now)
    store.execute(CheckEffectiveness(record_id=rid, reason="checked", action_id="C1",
                                     effective=True, against_criteria="no shared accounts"),
                  actor=QA, now=now)
    store.execute(AttachFile(record_id=rid, reason="preserve", content=SNAPSHOT,
                             filename="ews3.log", item="logs"), actor=SOC, now=now)
    store.download(rid, hashlib.sha256(SNAPSHOT).hexdigest(), actor=VIEWER, purpose="audit",
                   now=at(2.6))


def _links(store: RecordStore, rid: str) -> None:
    """A linked ticket, a state report from its tool and an external reference."""
    now = at(2.7)
    with store.database.write() as conn:
        add_user(conn, "svc-thehive", "TheHive connector", ["integration"], password_hash=None,
                 by="test", now=T0)
    store.execute(LinkTicket(record_id=rid, reason="ticket opened in thehive", system="thehive",
                             remote_id="~41", key="#7", url="https://th.example/cases/~41",
                             state="New"), actor=SVC, now=now)
    store.execute(ReportTicketState(record_id=rid, reason="inbound webhook", system="thehive",
                                    state="InProgress", assignee="analyst1",
                                    reported_by="analyst1"), actor=SVC, now=now)
    store.execute(AddExternalReference(record_id=rid, reason="change control", kind=(
        "change_control"), system="SAP QM", ref_id="CC-1001"), actor=SOC, now=now)


def _comment(store: RecordStore, rid: str, text: str, hours: float) -> None:
    store.execute(AddComment(record_id=rid, reason=text), actor=QA, now=at(hours))


@pytest.fixture
def built(store: RecordStore, store_target: tuple[str, str | None], tmp_path: Path) -> Built:
    target, schema = store_target
    key = tmp_path / "checkpoint.key"
    generate_key(key)
    signer = CheckpointSigner.from_file(key)
    # phase 1: the classifier opens three records (one gets more evidence: a severity rise
    # and new ticket indicators), quality works one to closure
    outs = store.record_events(
        [(event(1), classified()), (event(3), classified(key="other")),
         (event(4), classified(key="third"))], now=T0)
    store.record_events([(event(2, minutes=1, new_value=230.0),
                          classified(severity=Severity.CRITICAL).model_copy(
                              update={"attack_techniques": ("T0836", "T0831")}))],
                        now=at(0.1))
    closed, open_, cancelled = (o.record_id or "" for o in outs)
    drive(store, closed, State.CLOSED)
    _comment(store, open_, "phase 1 done", 9)
    first = _checkpoint(store, signer, 9)
    # phase 2: containment work on a second record, a third cancelled
    _containment_work(store, open_)
    store.transition(cancelled, State.CANCELLED, actor=QA, reason="duplicate of the first",
                     now=at(4))
    reported = store.report(ManualReport(
        controller="press-09", tag="Recipe", site="s", line="l", description="oven ran hot",
        quality_impact="LOT-9 at risk"), actor=OPERATOR, reason="seen on the floor",
        now=at(4)).id
    _comment(store, open_, "phase 2 nearly done", 10)
    _comment(store, open_, "phase 2 done", 10)
    second = _checkpoint(store, signer, 10)
    # phase 3: within the interval, not checkpointed yet
    _comment(store, open_, "phase 3", 11)
    _comment(store, open_, "phase 3 again", 11)
    return Built(store, target, schema, key, closed, open_, cancelled, reported,
                 [first, second])


def _first(lines: list[str]) -> str:
    assert lines, "verify printed nothing"
    return lines[0]


def test_an_untouched_store_with_every_action_verifies_intact(
    built: Built, capsys: pytest.CaptureFixture[str],
) -> None:
    fields = {e.field for e in built.store.trail()}
    assert {"record", "evidence", "severity", "ticket.indicators", "state", "ticket.status",
            "signature", "comment", "containment.lot_holds", "containment.decisions",
            "impact.contributions", "capa_actions", "rca", "log.root_cause",
            "effectiveness_check", "log.success_criteria", "lead", "co_lead",
            "impact.product_impact", "impact.notifications", "containment.evidence_checklist",
            "attachments", "custody", "external_ticket", "external_refs"} <= fields
    code, lines = built.verify(capsys)
    assert code == 0, lines
    assert lines[0].startswith("audit trail intact:")
    assert "head signed in 2 checkpoints" in lines[0]


@dataclass(frozen=True)
class Tampering:
    name: str
    do: Callable[[Built], None]
    #: What the first line must name, from the built store.
    names: Callable[[Built], list[str]]


def _edit_description(b: Built) -> None:
    b.sql(f"UPDATE records SET description = 'nothing happened' WHERE id = '{b.open_}'")


def _edit_section(b: Built) -> None:
    b.sql(f"UPDATE records SET log = replace(log, 'shared EWS password', "
          f"'operator error') WHERE id = '{b.open_}'")


def _edit_section_row(b: Built) -> None:
    b.sql(f"UPDATE capa_actions SET status = 'in_progress' WHERE record_id = '{b.open_}'")


def _edit_capa_due(b: Built) -> None:
    b.sql(f"UPDATE capa_actions SET current_due = '2026-06-30' WHERE record_id = '{b.open_}'")


def _edit_attachment_bytes(b: Built) -> None:
    forged = SNAPSHOT.replace(b"230", b"215").hex()
    value = f"X'{forged}'" if b.schema is None else f"'\\x{forged}'::bytea"
    b.sql(f"UPDATE attachment_blobs SET content = {value}")


def _edit_external_ticket(b: Built) -> None:
    b.sql(f"UPDATE external_tickets SET assignee = 'mallory' WHERE record_id = '{b.open_}'")


def _edit_state(b: Built) -> None:
    b.sql(f"UPDATE records SET state = 'closed' WHERE id = '{b.open_}'")


def _edit_evidence_bytes(b: Built) -> None:
    b.sql("UPDATE evidence SET raw = replace(raw, '215.0', '205.0') WHERE event_id = 'ev-3'")


def _edit_evidence_and_hash(b: Built) -> None:
    with b.store.database.read() as conn:
        raw = conn.exec_driver_sql("SELECT raw FROM evidence WHERE event_id = 'ev-3'").scalar()
    forged = str(raw).replace("215.0", "205.0")
    digest = hashlib.sha256(forged.encode()).hexdigest()
    b.sql(f"UPDATE evidence SET raw = '{forged}', sha256 = '{digest}' WHERE event_id = 'ev-3'")


def _edit_ticket(b: Built) -> None:
    b.sql(f"UPDATE tickets SET status = 'closed' WHERE record_id = '{b.open_}'")


def _cut_tail(b: Built) -> None:
    """The newest four entries (comments: no row to betray them) deleted."""
    b.drop_trail_triggers()
    head = b.checkpoints[-1].seq + 2
    b.sql(f"DELETE FROM audit_trail WHERE seq > {head - 4}")


def _recompute_chain(b: Built) -> None:
    """A comment of phase 1 rewritten, and every hash from there on recomputed."""
    b.drop_trail_triggers()
    entries = b.store.trail()
    target = next(e for e in entries if e.field == "comment")
    prev = entries[target.seq - 2].hash
    statements = []
    for e in entries[target.seq - 1:]:
        reason = "nothing to see" if e.seq == target.seq else e.reason
        new = '"nothing to see"' if e.seq == target.seq else e.new
        digest = entry_hash(e.seq, e.record_id, e.actor, e.at, e.field, e.old, new, reason, prev)
        statements.append(f"UPDATE audit_trail SET reason = '{reason}', new = '{new}', "
                          f"prev_hash = '{prev}', hash = '{digest}' WHERE seq = {e.seq};")
        prev = digest
    b.sql("\n".join(statements) if b.schema is None else " ".join(statements))


def _delete_newest_checkpoint(b: Built) -> None:
    b.sql(f"DELETE FROM trail_checkpoints WHERE seq = {b.checkpoints[-1].seq}")


def _forge_checkpoint(b: Built) -> None:
    b.sql(f"UPDATE trail_checkpoints SET hash = '{'0' * 64}' WHERE seq = {b.checkpoints[0].seq}")


TAMPERING = [
    Tampering("record field edited", _edit_description,
              lambda b: [b.open_, "field description", "nothing happened"]),
    Tampering("section edited", _edit_section,
              lambda b: [b.open_, "field log.root_cause", "operator error"]),
    Tampering("section row edited", _edit_section_row,
              lambda b: [b.open_, "field capa_actions[0].status", '"done"', '"in_progress"']),
    Tampering("CAPA due date edited", _edit_capa_due,
              lambda b: [b.open_, "field capa_actions[0].current_due", "2026-06-30"]),
    Tampering("attachment bytes edited", _edit_attachment_bytes,
              lambda b: [b.open_, "attachment ", "content edited"]),
    Tampering("linked ticket edited", _edit_external_ticket,
              lambda b: [b.open_, "thehive ticket assignee", "'mallory'", "'analyst1'"]),
    Tampering("state edited", _edit_state, lambda b: [b.open_, "field state", "'closed'"]),
    Tampering("evidence bytes edited", _edit_evidence_bytes,
              lambda b: [b.open_, "evidence ev-3", "content edited"]),
    Tampering("evidence bytes and hash edited", _edit_evidence_and_hash,
              lambda b: [b.open_, "evidence ev-3", "sha256 column"]),
    Tampering("ticket edited", _edit_ticket, lambda b: [b.open_, "ticket SEC-", "status"]),
    Tampering("trail tail deleted", _cut_tail,
              lambda b: [f"checkpoint of entry {b.checkpoints[-1].seq}", "tail was cut"]),
    Tampering("whole chain recomputed", _recompute_chain,
              lambda b: [f"checkpoint of entry {b.checkpoints[0].seq}", "recomputed"]),
    Tampering("checkpoint row deleted", _delete_newest_checkpoint,
              lambda b: [f"after the newest checkpoint (entry {b.checkpoints[0].seq}"]),
    Tampering("checkpoint row forged", _forge_checkpoint,
              lambda b: [f"checkpoint of entry {b.checkpoints[0].seq}", "does not verify"]),
]


@pytest.mark.parametrize("tampering", TAMPERING, ids=[t.name for t in TAMPERING])
def test_verify_names_the_first_bad_item(
    built: Built, tampering: Tampering, capsys: pytest.CaptureFixture[str],
) -> None:
    assert built.verify(capsys)[0] == 0
    tampering.do(built)
    code, lines = built.verify(capsys)
    assert code == 1
    first = _first(lines)
    for part in tampering.names(built):
        assert part in first, (part, lines)
    assert lines[-1].startswith("store NOT intact")


def test_without_checkpoints_a_cut_tail_goes_unseen_and_verify_says_so(
    built: Built, capsys: pytest.CaptureFixture[str],
) -> None:
    """Why checkpoints exist: the chain and the replay alone accept a cut tail."""
    _cut_tail(built)
    capsys.readouterr()
    db = ["--db", built.target, *(["--schema", built.schema] if built.schema else [])]
    assert main([*db, "verify"]) == 0
    out = capsys.readouterr().out
    assert "checkpoints NOT checked (no public key" in out


def test_a_checkpoint_deleted_from_between_is_named(
    built: Built, capsys: pytest.CaptureFixture[str],
) -> None:
    built.sql(f"DELETE FROM trail_checkpoints WHERE seq = {built.checkpoints[0].seq}")
    code, lines = built.verify(capsys)
    assert code == 1
    assert f"checkpoint of entry {built.checkpoints[1].seq}" in lines[0]
    assert "a checkpoint was deleted" in lines[0]


def test_an_action_verify_does_not_know_is_a_finding_not_a_crash(
    built: Built, capsys: pytest.CaptureFixture[str],
) -> None:
    with built.store.database.write() as conn:
        writer = TrailWriter.at_head(conn)
        writer.append(built.open_, "qa.lee", at(12).isoformat(), "frobnicate", None, '"x"',
                      "a newer otwatch's action")
        append_rows(conn, writer)
        seq = writer.seq
    code, lines = built.verify(capsys)
    assert code == 1
    assert f"trail entry {seq}" in lines[0] and "unknown trail action 'frobnicate'" in lines[0]


def test_a_record_row_added_outside_otwatch_is_named(
    built: Built, capsys: pytest.CaptureFixture[str],
) -> None:
    with built.store.database.read() as conn:
        row = dict(conn.exec_driver_sql(
            f"SELECT * FROM records WHERE id = '{built.open_}'").mappings().one())
    row.update(id="NC-2026-999999", security_ticket="SEC-2026-999999")
    columns = ", ".join(row)
    values = ", ".join("NULL" if v is None else "'" + str(v).replace("'", "''") + "'"
                       for v in row.values())
    built.sql(f"INSERT INTO records ({columns}) VALUES ({values})")
    code, lines = built.verify(capsys)
    assert code == 1
    assert any("NC-2026-999999" in line and "no trail entry opened" in line for line in lines)


def test_an_outbox_placeholder_ticket_is_not_audited_but_a_ticket_added_in_sql_is_named(
    built: Built, capsys: pytest.CaptureFixture[str],
) -> None:
    with built.store.database.write() as conn:  # the outbox, its tool down: no trail entry
        note_delivery(conn, built.cancelled, "jira", error="connection refused", attempts=3,
                      now=at(12))
    assert built.verify(capsys)[0] == 0
    built.sql(f"INSERT INTO external_tickets (record_id, system, remote_id, key, url, state, "
              f"assignee, last_error, attempts, updated_at) VALUES ('{built.closed}', "
              f"'servicenow', 'INC0042', 'INC0042', '', 'Closed', '', '', 0, '2026-03-02')")
    code, lines = built.verify(capsys)
    assert code == 1
    assert f"record {built.closed}, servicenow ticket (no trail entry): a linked ticket no " \
           "trail entry links" in _first(lines)


def test_a_custody_entry_for_a_file_never_attached_is_named(
    built: Built, capsys: pytest.CaptureFixture[str],
) -> None:
    with built.store.database.write() as conn:  # a forged download record, chain kept
        writer = TrailWriter.at_head(conn)
        writer.append(built.closed, "view.vic", "2026-03-02T20:00:00+00:00", "custody", None,
                      orjson.dumps({"sha256": "ab" * 32, "purpose": "x"}).decode(), "x")
        append_rows(conn, writer)
    code, lines = built.verify(capsys)
    assert code == 1
    assert "the chain of custody names a file (abababababab…)" in _first(lines)


def test_checkpoints_advance_every_n_entries_or_minutes(store: RecordStore,
                                                       tmp_path: Path) -> None:
    generate_key(tmp_path / "k")
    signer = CheckpointSigner.from_file(tmp_path / "k")
    every = Interval(entries=4, seconds=3600)

    def add(*numbers: int) -> None:
        store.record_events([(event(n), classified(key=f"k{n}")) for n in numbers], now=T0)

    def due(hours: float = 0) -> Checkpoint | None:
        return checkpoint_if_due(store.database, signer, every, now=at(hours))

    add(1, 2, 3)
    first = due()
    assert first is not None and (first.seq, first.previous) == (3, 0)
    assert due() is None                      # nothing new
    add(4)
    assert due() is None                      # 1 new entry < 4, and the last one is fresh
    add(5, 6, 7)
    second = due()
    assert second is not None and (second.seq, second.previous) == (7, 3)
    add(8)
    late = due(hours=2)                       # more than an hour after the last one
    assert late is not None and (late.seq, late.previous) == (8, 7)
    with store.database.read() as conn:
        assert head_of(conn) == (late.seq, late.hash)


def test_keygen_refuses_to_overwrite_and_a_world_readable_key_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "checkpoint.key"
    assert main(["checkpoints", "keygen", "--out", str(key)]) == 0
    assert key.stat().st_mode & 0o777 == 0o600
    assert main(["checkpoints", "keygen", "--out", str(key)]) == 2
    key.chmod(0o644)
    with pytest.raises(CheckpointKeyError, match=r"readable by everyone.*chmod 600"):
        CheckpointSigner.from_file(key)


def test_checkpoint_messages_round_trip() -> None:
    data = {"schema": "otwatch.checkpoint/1", "seq": 3, "hash": "ab", "previous": 0,
            "signed_at": "t", "key_id": "k", "signature": "s"}
    assert Checkpoint.from_message(orjson.loads(orjson.dumps(data))).message() == data
    with pytest.raises(ValueError, match="schema"):
        Checkpoint.from_message({**data, "schema": "x"})


def test_checkpoints_sign_and_list_from_the_command_line(
    store: RecordStore, store_target: tuple[str, str | None], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target, schema = store_target
    db = ["--db", target, *(["--schema", schema] if schema else [])]
    key = tmp_path / "checkpoint.key"
    assert main(["checkpoints", "keygen", "--out", str(key)]) == 0
    store.record_events([(event(1), classified())], now=T0)
    capsys.readouterr()
    assert main([*db, "checkpoints", "sign", "--key", str(key)]) == 0
    assert main([*db, "checkpoints", "sign", "--key", str(key)]) == 0
    assert main([*db, "checkpoints", "list"]) == 0
    signed, nothing, listed = capsys.readouterr().out.splitlines()
    assert signed.startswith("checkpoint: trail entry 1 signed")
    assert nothing == "nothing new to sign"
    assert listed.startswith("entry        1")
    assert main([*db, "checkpoints", "sign"]) == 2  # no key named anywhere
    assert "pass --key FILE" in capsys.readouterr().err
