"""``otwatch-agent approvals {list,validate,hash,keygen,sign,verify}``: approvals files by hand.

Wired into ``otwatch-agent`` by ``add_approvals_parser(subparsers)``;
``run_approvals_command(args)`` returns the exit code (0 fine, 1 a problem found, 2 bad
input). The agent CLI may fill ``args.file`` (list of Path), ``args.trusted_key`` (list of
base64 keys) and ``args.require_signed`` from ``--config AGENT.yaml`` before calling it.

Examples::

    otwatch-agent approvals keygen --private-key signer.key --public-key signer.pub
    otwatch-agent approvals sign --file approvals.yaml --private-key signer.key
    otwatch-agent approvals verify --file approvals.yaml --trusted-key-file signer.pub
    otwatch-agent approvals validate --file approvals.yaml --require-signed --trusted-key <b64>
    otwatch-agent approvals validate --config agent.yaml new-approvals.yaml
    otwatch-agent approvals hash --param recipe_temperature=210.0 --param recipe_dwell_time=30
    otwatch-agent approvals list --file approvals.yaml

``validate --config`` also refuses approvals that can never match a change the agent reports
(unknown controller or tag, a recipe member, a kind of change the tag cannot make), see
`agent.approvals.targets`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import yaml

from agent.approvals.errors import ApprovalsError, ApprovalsFileError, SigningError
from agent.approvals.hashing import recipe_parameters_hash
from agent.approvals.loading import load_approvals_file
from agent.approvals.matching import window_mismatch
from agent.approvals.model import EN_DASH, ApprovedChange, decode_public_key
from agent.approvals.signing import (
    SignatureCheck,
    check_signature,
    generate_keypair,
    public_key_of,
    sign_approval,
)
from agent.runtime.files import write_atomically


def add_approvals_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``approvals`` and its sub-commands to the agent's sub-command parser."""
    parser = subparsers.add_parser("approvals", help="list, validate, sign and verify approvals")
    commands = parser.add_subparsers(dest="approvals_command", required=True)

    listing = commands.add_parser("list", help="show the approved change records in files")
    _add_files(listing)
    listing.add_argument("--json", action="store_true", help="one JSON record per line")

    validate = commands.add_parser("validate", help="check files (and signatures, if keys given)")
    _add_files(validate)
    _add_trusted(validate)
    validate.add_argument("--require-signed", action="store_true",
                          help="an unsigned or forged record is an error")

    hashing = commands.add_parser(
        "hash", help="a recipe's parameters hash, for an approval's parameters_hash")
    hashing.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                         help="one recipe parameter and its value (repeatable)")
    hashing.add_argument("--file", type=Path,
                         help="YAML/JSON: {NAME: VALUE, ...} or {parameters: {NAME: VALUE}}")

    keygen = commands.add_parser("keygen", help="make an Ed25519 signing key pair")
    keygen.add_argument("--private-key", type=Path, required=True, help="file to write (0600)")
    keygen.add_argument("--public-key", type=Path, help="file to write the public key to")
    keygen.add_argument("--force", action="store_true", help="overwrite existing key files")

    sign = commands.add_parser("sign", help="sign every record of a file")
    sign.add_argument("--file", type=Path, required=True, help="approvals file to sign")
    sign.add_argument("--private-key", type=Path, required=True, help="key file from keygen")
    sign.add_argument("--output", type=Path, help="where to write (default: the file itself)")

    verify = commands.add_parser("verify", help="check every record's signature")
    _add_files(verify)
    _add_trusted(verify)


def _add_files(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", type=Path, nargs="*", metavar="FILE",
                        help="approvals file, YAML or JSON")
    parser.add_argument("--file", type=Path, action="append", default=[],
                        help="approvals file, YAML or JSON (repeatable)")
    parser.add_argument("--config", type=Path,
                        help="agent config: take its approvals files, trusted keys and policy "
                        "(validate: also check each approval against its controllers and tags)")


def _add_trusted(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trusted-key", action="append", default=[],
                        help="trusted Ed25519 public key, base64 (repeatable)")
    parser.add_argument("--trusted-key-file", type=Path, action="append", default=[],
                        help="file holding a trusted public key (repeatable)")


def run_approvals_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run one ``approvals`` sub-command; the exit code says how it went."""
    stdout = out or sys.stdout
    commands: dict[str, Callable[[argparse.Namespace, TextIO], int]] = {
        "list": _list, "validate": _validate, "keygen": _keygen, "sign": _sign, "verify": _verify,
        "hash": _hash,
    }
    try:
        return commands[args.approvals_command](args, stdout)
    except ApprovalsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _load_all(files: Sequence[Path]) -> tuple[list[tuple[Path, ApprovedChange]], list[str]]:
    """Every record with its file, and one error text per file that did not load."""
    records: list[tuple[Path, ApprovedChange]] = []
    errors: list[str] = []
    for path in files:
        try:
            records.extend((path, rec) for rec in load_approvals_file(path))
        except ApprovalsError as exc:
            errors.append(str(exc))
    return records, errors


def _need_files(args: argparse.Namespace) -> list[Path]:
    given = [*(getattr(args, "files", None) or []), *(getattr(args, "file", None) or [])]
    files: list[Path] = []
    for path in given:  # a file named and also in --config's list is read once
        if all(path.resolve() != seen.resolve() for seen in files):
            files.append(path)
    if not files:
        raise ApprovalsError(
            "no approvals file given (fix: pass --file FILE or --config AGENT.yaml)"
        )
    return files


def _trusted(args: argparse.Namespace) -> list[str]:
    keys = list(getattr(args, "trusted_key", []) or [])
    for path in getattr(args, "trusted_key_file", []) or []:
        keys.append(_read_key_file(path))
    for key in keys:
        try:
            decode_public_key(key)
        except ValueError as exc:
            raise SigningError(f"trusted key {key[:12]}...: {exc}") from exc
    return keys


def _read_key_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SigningError(f"{path}: cannot read the key file: {exc.strerror}") from exc


def describe_record(rec: ApprovedChange) -> str:
    """One line a person reads: id, where, what, when, who, status."""
    start = rec.valid_from.strftime("%Y-%m-%d %H:%M")
    end = rec.valid_until.strftime("%Y-%m-%d %H:%M")
    expected = f"{rec.approves or 'value'}: {rec.expected.describe()}"
    use = "single-use" if rec.single_use else "reusable"
    signed = "signed" if rec.signature else "unsigned"
    return (
        f"{rec.id}  {rec.controller}/{rec.tag}  {expected}  {start}{EN_DASH}{end} UTC  "
        f"by {rec.approved_by}  {rec.change_control_ref or '-'}  {rec.status}  {use}  {signed}"
    )


def _list(args: argparse.Namespace, out: TextIO) -> int:
    records, errors = _load_all(_need_files(args))
    for _path, rec in records:
        if args.json:
            print(rec.model_dump_json(exclude_none=True), file=out)
        else:
            print(describe_record(rec), file=out)
    for error in errors:
        print(error, file=sys.stderr)
    return 1 if errors else 0


def validation_problems(
    records: Sequence[tuple[Path, ApprovedChange]],
    trusted: Sequence[str],
    require_signed: bool,
) -> list[str]:
    """Problems that make a loaded set unfit: duplicate ids across files, bad signatures."""
    problems: list[str] = []
    first: dict[str, Path] = {}
    for path, rec in records:
        if rec.id in first:
            problems.append(f"{path}: approval {rec.id} is also in {first[rec.id]} "
                            "(fix: keep one; the later file would win)")
        first.setdefault(rec.id, path)
        check = check_signature(rec, trusted) if trusted else None
        if check is SignatureCheck.INVALID:
            problems.append(f"{path}: approval {rec.id}: signature does not verify with any "
                            "trusted key (fix: re-sign it, or add the signer's public key)")
        if require_signed and not rec.signature:
            problems.append(f"{path}: approval {rec.id}: not signed (fix: `approvals sign`)")
    return problems


def _validate(args: argparse.Namespace, out: TextIO) -> int:
    files = _need_files(args)
    records, errors = _load_all(files)
    trusted = _trusted(args)
    require = bool(getattr(args, "require_signed", False))
    if require and not trusted:
        raise SigningError("--require-signed needs --trusted-key or --trusted-key-file")
    problems = errors + validation_problems(records, trusted, require)
    if getattr(args, "config", None):
        problems += _against_config(args.config, records)
    now = datetime.now(UTC)
    for _path, rec in records:
        if rec.status == "active" and rec.valid_until < now:
            print(f"note: {rec.id} has expired: {window_mismatch(rec, now, 0)}", file=out)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    print(f"OK: {len(records)} approvals in {len(files)} file(s)", file=out)
    return 0


def _against_config(config_path: Path, records: Sequence[tuple[Path, ApprovedChange]]) -> list[str]:
    """Approvals that can never match a change the agent of ``config_path`` reports."""
    from agent.approvals.targets import target_problems
    from agent.config import load_agent_config

    config = load_agent_config(config_path)
    problems: list[str] = []
    for path in dict.fromkeys(p for p, _ in records):
        problems += target_problems(path, [r for p, r in records if p == path], config,
                                    config_path)
    return problems


def _hash(args: argparse.Namespace, out: TextIO) -> int:
    parameters: dict[str, Any] = _parameters_file(args.file) if args.file else {}
    for item in args.param:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise ApprovalsError(f"--param {item!r}: fix: write NAME=VALUE, e.g. "
                                 "--param recipe_temperature=210.0")
        parameters[name.strip()] = yaml.safe_load(text) if text.strip() else ""
    if not parameters:
        raise ApprovalsError("no parameters given (fix: --param NAME=VALUE ... or --file FILE)")
    print(recipe_parameters_hash(parameters), file=out)
    return 0


def _parameters_file(path: Path) -> dict[str, Any]:
    """A recipe's parameters from a YAML/JSON file: the mapping itself, or its ``parameters``."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))  # JSON is YAML too
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ApprovalsFileError(f"{path}: cannot read the parameters: {exc} (fix: a YAML or "
                                 "JSON mapping of parameter names to values)") from exc
    if isinstance(data, dict) and isinstance(data.get("parameters"), dict):
        data = data["parameters"]
    if not isinstance(data, dict) or not data:
        raise ApprovalsFileError(f"{path}: (top level): expected a mapping of parameter names "
                                 "to values (fix: e.g. recipe_temperature: 210.0)")
    if any(isinstance(v, dict | list) for v in data.values()):
        raise ApprovalsFileError(f"{path}: a parameter value is a mapping or a list (fix: one "
                                 "plain value per parameter, as the controller reports it)")
    return {str(k): v for k, v in data.items()}


def _keygen(args: argparse.Namespace, out: TextIO) -> int:
    targets = [p for p in (args.private_key, args.public_key) if p is not None]
    existing = [str(p) for p in targets if p.exists()]
    if existing and not args.force:
        raise SigningError(
            f"{', '.join(existing)} already exists (fix: choose a new path or --force)"
        )
    private, public = generate_keypair()
    _write_private(args.private_key, private)
    if args.public_key is not None:
        args.public_key.write_text(public + "\n", encoding="utf-8")
    print(public, file=out)
    return 0


def _write_private(path: Path, private: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(private + "\n")
    os.chmod(path, 0o600)


def _sign(args: argparse.Namespace, out: TextIO) -> int:
    private = _read_key_file(args.private_key)
    records = [sign_approval(rec, private) for rec in load_approvals_file(args.file)]
    target: Path = args.output or args.file
    _write_approvals(target, records)
    print(f"signed {len(records)} approvals with key {public_key_of(private)} into {target}",
          file=out)
    return 0


def _write_approvals(path: Path, records: Sequence[ApprovedChange]) -> None:
    """Write records as YAML (or JSON for ``.json``), atomically."""
    doc: dict[str, Any] = {
        "approvals": [r.model_dump(mode="json", exclude_none=True) for r in records]
    }
    if path.suffix.lower() == ".json":
        text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    else:
        text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    write_atomically(path, text)


def _verify(args: argparse.Namespace, out: TextIO) -> int:
    trusted = _trusted(args)
    if not trusted:
        raise SigningError("verify needs --trusted-key or --trusted-key-file")
    records, errors = _load_all(_need_files(args))
    bad = len(errors)
    for error in errors:
        print(error, file=sys.stderr)
    for path, rec in records:
        check = check_signature(rec, trusted)
        print(f"{path}: {rec.id}: {check.value}", file=out)
        bad += check is not SignatureCheck.VALID
    return 1 if bad else 0
