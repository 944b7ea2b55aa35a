"""The joint procedure's steps on the command line: plain flags, `--help` per field, the
guards' refusals, manual reports and recurrence, against a real database (both dialects)."""

from __future__ import annotations

import pytest

from detectors.records import RecordStore, State
from detectors.records_cli import main
from tests.records.lifecycle_steps import drive
from tests.records.test_cli import argv_db

Cap = pytest.CaptureFixture[str]
NC1 = "NC-2026-000001"
__all__ = ["argv_db"]


def run(argv_db: list[str], user: str, *args: str) -> int:
    return main([*argv_db, "--user", user, *args])


def test_help_names_every_field(capsys: Cap) -> None:
    with pytest.raises(SystemExit):
        main(["rca", "--help"])
    text = capsys.readouterr().out
    for flag in ("--root-cause", "--why", "--bone", "--security-found",
                 "--security-statement", "--validated-by", "technical_security_controls"):
        assert flag in text
    with pytest.raises(SystemExit):
        main(["capa-add", "--help"])
    text = capsys.readouterr().out
    for flag in ("--type", "--owning-system", "--external-ref", "--priority", "--addresses",
                 "--revalidation-required", "--change-control-ref", "mes_change"):
        assert flag in text


def test_containment_then_plan_guards_and_the_steps_that_meet_them(
    argv_db: list[str], store: RecordStore, capsys: Cap,
) -> None:
    assert run(argv_db, "qa.lee", "hold", NC1, "LOT-7", "--reason", "made under it") == 1
    err = capsys.readouterr().err
    assert ("holding lot 'LOT-7' needs first: a quality contribution to the impact "
            "assessment (contribute-impact --function quality); a security contribution") in err
    assert run(argv_db, "qa.lee", "contribute-impact", NC1, "--function", "quality",
               "--severity", "major", "--likelihood", "likely", "--signed-off",
               "--reason", "QA view") == 0
    assert run(argv_db, "soc.kim", "contribute-impact", NC1, "--function", "security",
               "--reason", "SOC view") == 0
    assert run(argv_db, "qa.lee", "hold", NC1, "LOT-7", "--reason", "made under it") == 1
    assert "the security contribution signed off by security" in capsys.readouterr().err
    assert run(argv_db, "soc.kim", "contribute-impact", NC1, "--function", "security",
               "--signed-off", "--reason", "SOC view") == 0
    assert run(argv_db, "qa.lee", "hold", NC1, "LOT-7", "--reason", "made under it") == 0
    record = store.get_record(NC1)
    assert [h.lot_id for h in record.containment.lot_holds] == ["LOT-7"]
    assert record.impact.contributions[0].rating is not None
    assert record.impact.contributions[0].rating.level == "high"

    drive(store, NC1, State.ACTION_PLAN)
    assert run(argv_db, "qa.lee", "rca", NC1, "--why", "human_factors: password shared",
               "--why", "nonsense", "--reason", "RCA") == 2
    assert "--why 'nonsense': write it as 'DOMAIN: TEXT'" in capsys.readouterr().err
    assert run(argv_db, "qa.lee", "rca", NC1, "--root-cause", "shared password",
               "--why", "human_factors: password shared",
               "--why", "technical_security_controls: no individual accounts",
               "--security-found", "no", "--security-statement",
               "no misuse beyond the shared password", "--validated-by", "soc.kim",
               "--reason", "RCA") == 0
    rca = store.get_record(NC1).rca
    assert [(w.domain, w.answer) for w in rca.five_whys] == [
        ("human_factors", "password shared"),
        ("technical_security_controls", "no individual accounts")]
    assert rca.security_finding is not None and not rca.security_finding.found
    assert run(argv_db, "soc.kim", "capa-add", NC1, "A1", "--description", "own accounts",
               "--owner", "soc.kim", "--domain", "security", "--type", "corrective",
               "--owning-system", "itsm", "--external-ref", "CHG-1", "--due", "2026-04-01",
               "--reason", "plan") == 0
    assert run(argv_db, "qa.lee", "transition", NC1, "implementation", "--reason", "go") == 1
    err = capsys.readouterr().err
    assert "success criteria (field log.success_criteria)" in err
    assert "CAPA action" not in err and "security domain" not in err


def test_a_report_by_hand_opens_a_record_that_links_its_recurrence(
    argv_db: list[str], store: RecordStore, capsys: Cap,
) -> None:
    drive(store, NC1, State.CLOSED)
    closed = store.get_record(NC1)
    assert run(argv_db, "op.smith", "report", "--controller", closed.controller,
               "--tag", closed.tag, "--site", "plant-1", "--line", "line-a",
               "--description", "zone temperature ran high again", "--severity", "high",
               "--security-impact", "EWS seen logged in at night",
               "--reason", "seen on the HMI") == 0
    out = capsys.readouterr().out
    assert f"a recurrence of {NC1}" in out
    made = store.list_records()[-1]
    assert (made.state, made.reported_by, made.recurrence_of, made.classification) == (
        State.DETECTED, "op.smith", NC1, "joint")
    assert made.security_impact == "EWS seen logged in at night"
    first = store.trail(made.id)[0]
    assert (first.field, first.actor, first.reason) == ("record", "op.smith", "seen on the HMI")
    assert run(argv_db, "view.vic", "report", "--controller", "c", "--tag", "t",
               "--site", "s", "--line", "l", "--description", "d", "--reason", "r") == 1
    assert "may not report a suspected nonconformity by hand" in capsys.readouterr().err
    assert store.verify_trail().ok
