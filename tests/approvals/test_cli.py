"""``otwatch-agent approvals ...``: keygen, sign, verify, validate and list, on real files."""

from __future__ import annotations

import argparse
import io
import re
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.approvals import ApprovalBook, MatchPolicy, load_approvals_file
from agent.approvals.cli import add_approvals_parser, run_approvals_command
from agent.approvals.signing import check_signature, public_key_of
from agent.config_base import RecipeGroup
from agent.contract import ChangeKind, Verdict
from agent.recipes import recipe_value
from agent.sources.base import Reading
from tests.approvals.factory import OTHER_PUBLIC, record_yaml

CONFIG = Path(__file__).resolve().parents[2] / "config"


def run(*argv: str | Path) -> tuple[int, str]:
    """Parse as ``otwatch-agent`` would and run; the exit code and what went to stdout."""
    parser = argparse.ArgumentParser(prog="otwatch-agent")
    add_approvals_parser(parser.add_subparsers(dest="command", required=True))
    out = io.StringIO()
    code = run_approvals_command(parser.parse_args([str(a) for a in argv]), out)
    return code, out.getvalue()


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, str]:
    """A signing key file and its public key, made by ``keygen``."""
    private = tmp_path / "signer.key"
    code, out = run("approvals", "keygen", "--private-key", private,
                    "--public-key", tmp_path / "signer.pub")
    assert code == 0
    return private, out.strip()


@pytest.fixture
def unsigned(tmp_path: Path) -> Path:
    path = tmp_path / "approvals.yaml"
    path.write_text(yaml.safe_dump({"approvals": [
        record_yaml(), record_yaml(id="CR-2", expected={"min": 180.0, "max": 185.0}),
    ]}, allow_unicode=True), encoding="utf-8")
    return path


def test_keygen_writes_a_private_key_only_its_owner_reads(
    tmp_path: Path, keys: tuple[Path, str]
) -> None:
    private, public = keys
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert public_key_of(private.read_text()) == public
    assert (tmp_path / "signer.pub").read_text().strip() == public
    code, _ = run("approvals", "keygen", "--private-key", private)
    assert code == 2  # refuses to overwrite a key


def test_sign_then_verify(tmp_path: Path, keys: tuple[Path, str], unsigned: Path) -> None:
    private, public = keys
    signed = tmp_path / "signed.yaml"
    assert run("approvals", "sign", "--file", unsigned, "--private-key", private,
               "--output", signed)[0] == 0
    code, out = run("approvals", "verify", "--file", signed, "--trusted-key", public)
    assert code == 0
    assert out.count(": valid") == 2
    assert run("approvals", "verify", "--file", signed, "--trusted-key", OTHER_PUBLIC)[0] == 1
    assert run("approvals", "verify", "--file", unsigned, "--trusted-key", public)[0] == 1


def test_a_tampered_file_fails_verify_and_gives_approval_invalid(
    tmp_path: Path, keys: tuple[Path, str], unsigned: Path
) -> None:
    private, public = keys
    assert run("approvals", "sign", "--file", unsigned, "--private-key", private)[0] == 0
    text = unsigned.read_text(encoding="utf-8")
    unsigned.write_text(text.replace("exact: 185.0", "exact: 190.0", 1), encoding="utf-8")
    code, out = run("approvals", "verify", "--file", unsigned, "--trusted-key", public)
    assert code == 1
    assert re.search(r"CR-1: invalid", out) and re.search(r"CR-2: valid", out)
    book = ApprovalBook([unsigned], policy=MatchPolicy(require_signed=True, trusted_keys=[public]))
    result = book.decide(controller="press-01", tag="temperature_sp", new_value=190.0,
                         change_kind=ChangeKind.SETPOINT_CHANGE,
                         occurred_at=datetime(2026, 11, 23, 12, tzinfo=UTC))
    assert result.verdict is Verdict.APPROVAL_INVALID
    assert result.approval is not None and result.approval.id == "CR-1"


def test_sign_json_in_place(tmp_path: Path, keys: tuple[Path, str]) -> None:
    private, public = keys
    path = tmp_path / "approvals.json"
    path.write_text('{"approvals": [{"id": "CR-1", "controller": "press-01", '
                    '"tag": "temperature_sp", "expected": {"exact": 185.0}, '
                    '"valid_from": "2026-11-23T09:00:00+01:00", '
                    '"valid_until": "2026-11-23T21:00:00+01:00", "approved_by": "j.doe"}]}',
                    encoding="utf-8")
    assert run("approvals", "sign", "--file", path, "--private-key", private)[0] == 0
    (rec,) = load_approvals_file(path)
    assert check_signature(rec, [public]).value == "valid"


def test_validate(tmp_path: Path, keys: tuple[Path, str], unsigned: Path) -> None:
    private, public = keys
    code, out = run("approvals", "validate", "--file", unsigned)
    assert (code, out.strip().splitlines()[-1]) == (0, "OK: 2 approvals in 1 file(s)")
    assert run("approvals", "validate", "--file", unsigned, "--require-signed",
               "--trusted-key", public)[0] == 1
    assert run("approvals", "validate", "--file", unsigned, "--require-signed")[0] == 2
    run("approvals", "sign", "--file", unsigned, "--private-key", private)
    assert run("approvals", "validate", "--file", unsigned, "--require-signed",
               "--trusted-key-file", tmp_path / "signer.pub")[0] == 0


def test_validate_reports_bad_file_and_duplicates(
    tmp_path: Path, unsigned: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"approvals": [record_yaml() | {"statu": "x"}]}), "utf-8")
    assert run("approvals", "validate", "--file", unsigned, "--file", bad)[0] == 1
    assert f"{bad}: approvals[0].statu:" in capsys.readouterr().err
    copy = tmp_path / "copy.yaml"
    copy.write_bytes(unsigned.read_bytes())
    assert run("approvals", "validate", "--file", unsigned, "--file", copy)[0] == 1
    assert "CR-1 is also in" in capsys.readouterr().err
    assert run("approvals", "validate", unsigned, "--file", unsigned)[0] == 0  # one file, once
    assert run("approvals", "validate")[0] == 2


def test_list_the_demo_sample() -> None:
    code, out = run("approvals", "list", "--file", CONFIG / "approvals.yaml")
    assert code == 0
    line = next(ln for ln in out.splitlines() if ln.startswith("CR-2026-0001"))
    assert "press-01/temperature_sp" in line and "exactly 185.0 °C" in line and "j.doe" in line
    code, out = run("approvals", "list", "--json", "--file", CONFIG / "approvals.yaml")
    records = load_approvals_file(CONFIG / "approvals.yaml")
    assert code == 0 and len(out.splitlines()) == len(records)


def test_the_signed_sample_verifies_with_its_published_key() -> None:
    path = CONFIG / "approvals-signed.yaml"
    match = re.search(r"^# public key: (\S+)$", path.read_text(encoding="utf-8"), re.M)
    assert match is not None
    code, out = run("approvals", "verify", "--file", path, "--trusted-key", match.group(1))
    assert code == 0, out


def test_hash_from_flags_is_the_hash_the_agent_reports(tmp_path: Path) -> None:
    """`approvals hash` and the agent's recipe value use one function: an approval's
    parameters_hash computed from values matches the recipe the agent reads."""
    group = RecipeGroup(name="active_recipe", id_tag="recipe_no",
                        parameter_tags=["recipe_temperature", "recipe_cycle_time"])
    read = {"recipe_no": Reading(2), "recipe_temperature": Reading(210.00000762939453),
            "recipe_cycle_time": Reading(4500)}
    reported = recipe_value(group, read)["hash"]
    code, out = run("approvals", "hash", "--param", "recipe_temperature=210",
                    "--param", "recipe_cycle_time=4500.0")
    assert (code, out.strip()) == (0, reported)
    as_file = tmp_path / "recipe.json"
    as_file.write_text('{"parameters": {"recipe_cycle_time": 4500, "recipe_temperature": 210.0}}')
    assert run("approvals", "hash", "--file", as_file)[1].strip() == reported
    as_yaml = tmp_path / "recipe.yaml"
    as_yaml.write_text("recipe_temperature: 210.0\nrecipe_cycle_time: 4500\n")
    assert run("approvals", "hash", "--file", as_yaml)[1].strip() == reported


def test_hash_refuses_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("approvals", "hash")[0] == 2
    assert "--param NAME=VALUE" in capsys.readouterr().err
    assert run("approvals", "hash", "--param", "recipe_temperature")[0] == 2
    assert "fix: write NAME=VALUE" in capsys.readouterr().err
    nested = tmp_path / "bad.yaml"
    nested.write_text("recipe_temperature: {min: 1}\n")
    assert run("approvals", "hash", "--file", nested)[0] == 2
    assert f"{nested}: a parameter value is a mapping" in capsys.readouterr().err


@pytest.mark.parametrize("sample", sorted(CONFIG.glob("approvals*.yaml")),
                         ids=lambda p: p.name)
def test_every_sample_fits_the_sample_agent_config(sample: Path) -> None:
    code, out = run("approvals", "validate", "--config", CONFIG / "agent.yaml", sample)
    assert code == 0, out
    assert out.strip().splitlines()[-1].startswith("OK: ")


def approval(**changes: Any) -> dict[str, Any]:
    return record_yaml(**changes)


#: (approval, the words its refusal names: key, what is wrong, the fix)
NEVER_MATCH: dict[str, tuple[dict[str, Any], str]] = {
    "unknown controller": (
        approval(controller="press-09"),
        "controller: 'press-09' is not a controller of ",
    ),
    "unknown tag": (
        approval(tag="temp_sp"),
        "tag: 'temp_sp' is not a tag or recipe that press-01 reports (it reports "
        "active_recipe, auto_mode, ",
    ),
    "a recipe member on its own": (
        approval(id="CR-9", controller="oven-01", tag="recipe_version", expected={"exact": 4}),
        "approval CR-9: tag: recipe_version is only ever reported as part of recipe "
        "'active_recipe' on oven-01, so this approval can never match; fix: set tag: "
        "active_recipe",
    ),
    "a context tag": (
        approval(tag="lot_counter"), "tag: press-01/lot_counter is a context tag",
    ),
    "a measurement": (
        approval(tag="pressure_actual"),
        "tag: press-01/pressure_actual is a measurement (read as context, never a change "
        "itself); fix:",
    ),
    "a kind the tag cannot make": (
        approval(change="mode", expected={"exact": True}),
        "change: mode can never happen on press-01/temperature_sp, a setpoint tag (it makes "
        "setpoint); fix: set change: setpoint",
    ),
    "a single value for a recipe group": (
        approval(tag="active_recipe", expected={"exact": 2}),
        "change: a single value can never happen to recipe 'active_recipe'",
    ),
    "an edit of a parameter the recipe does not have": (
        approval(tag="active_recipe", change="recipe_edit",
                 expected={"parameters": {"recipe_speed": 3}}),
        "expected.parameters: recipe_speed is not a parameter of recipe 'active_recipe' (its "
        "parameters: recipe_temperature, recipe_pressure, recipe_cycle_time)",
    ),
    "a version for a recipe without a version tag": (
        approval(tag="active_recipe", expected={"recipe_id": 2, "recipe_version": 1}),
        "expected.recipe_version: recipe 'active_recipe' has no version tag",
    ),
}


@pytest.mark.parametrize(("record", "words"), NEVER_MATCH.values(), ids=NEVER_MATCH.keys())
def test_validate_against_the_config_refuses_approvals_that_never_match(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], record: dict[str, Any], words: str
) -> None:
    path = tmp_path / "new-approvals.yaml"
    path.write_text(yaml.safe_dump({"approvals": [record]}, allow_unicode=True), "utf-8")
    assert run("approvals", "validate", "--file", path)[0] == 0  # fine without a config
    code, out = run("approvals", "validate", "--config", CONFIG / "agent.yaml", path)
    err = capsys.readouterr().err
    assert code == 1 and "OK:" not in out
    assert f"{path}: approval {record['id']}: " in err and words in err
    assert "fix:" in err


def test_validate_with_the_agent_cli_reads_the_configs_files_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`otwatch-agent approvals validate --config agent.yaml FILE`: the config's approvals files
    and FILE, each once (the sample's own file named again is not a duplicate)."""
    from agent.cli import main

    path = tmp_path / "new.yaml"
    path.write_text(yaml.safe_dump({"approvals": [approval(id="CR-77", controller="x")]}))
    agent_yaml = str(CONFIG / "agent.yaml")
    assert main(["approvals", "validate", "--config", agent_yaml, str(path)]) == 1
    err = capsys.readouterr().err
    assert "approval CR-77: controller: 'x'" in err and "is also in" not in err
    assert main(["approvals", "validate", "--config", agent_yaml,
                 str(CONFIG / "approvals.yaml")]) == 0
    assert "OK: 6 approvals in 1 file(s)" in capsys.readouterr().out
