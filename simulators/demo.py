"""`make demo`: the whole pipeline on one machine, from an empty state, on free loopback ports.

Starts the embedded broker, the simulated plant, the agent, the classifier and the records
UI as child processes; plays a scenario; prints each master record as it opens; stops
every process (by PID) on Ctrl-C, or after ``DEMO_SECONDS`` when that is set.

Everything lives in ``.demo/`` (git-ignored), wiped at the start of each run, so that
``otwatch-records list`` in the repository root shows the demo's records afterwards.

Once the classifier has created the records database, the demo adds one user per role
(`DEMO_USERS`) with a fresh random password each, and prints them with how to sign in.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from agent.contract.signing import EventSigner
from simulators.approvals import write_approvals
from simulators.broker import EmbeddedBroker, free_port

#: The repository root: the demo runs from a source checkout (`make demo`).
ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config"


class Pipeline:
    """The child processes of one demo run, stopped in reverse order by PID."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.broker = EmbeddedBroker(log_path=workdir / "broker.log")

    def spawn(self, name: str, args: Sequence[str]) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{name}.log", "ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", *args], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
        )
        log.close()
        self.procs.append((name, proc))
        return proc

    def stop(self) -> None:
        for name, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    print(f"  {name} (pid {proc.pid}) did not stop in 10 s: killed")
                    proc.kill()
                    proc.wait(timeout=5)
        self.procs.clear()
        self.broker.stop()

    def check_alive(self) -> None:
        for name, proc in self.procs:
            if name != "sim" and proc.poll() is not None:
                log = self.workdir / f"{name}.log"
                raise RuntimeError(f"{name} exited with code {proc.returncode}; see {log}")


#: The demo agent's reconnect backoff cap (seconds), against the simulated plant.
DEMO_RECONNECT_MAX_S = 2.0


def agent_config(ports: dict[str, int], bootstrap: str, workdir: Path) -> dict[str, Any]:
    """config/agent.yaml, pointed at this run's ports, broker, state and approvals, with the
    reconnect backoff capped at `DEMO_RECONNECT_MAX_S`."""
    cfg: dict[str, Any] = yaml.safe_load((CONFIG / "agent.yaml").read_text())
    cfg["agent"]["state_dir"] = str(workdir / "agent")
    cfg["kafka"]["bootstrap_servers"] = bootstrap
    cfg["kafka"]["enable_idempotence"] = False
    cfg["metrics"]["port"] = free_port()
    cfg["approvals"]["files"] = [
        str(CONFIG / "approvals.yaml"),
        str(workdir / "scenario-approvals.yaml"),
    ]
    for ctl in cfg["controllers"]:
        # The simulated servers restart in seconds (a scenario's program download restarts
        # one, then goes on): retrying at most every 2 s sees the next change live. A plant's
        # 30 s cap spares its servers a storm of reconnects; on loopback there is none.
        ctl["reconnect_max_s"] = min(float(ctl.get("reconnect_max_s", 30.0)), DEMO_RECONNECT_MAX_S)
        port = ports[ctl["id"]]
        if ctl["protocol"] == "modbus":
            ctl["port"] = port
        else:
            ctl["endpoint"] = f"opc.tcp://127.0.0.1:{port}/otwatch/{ctl['id']}"
    return cfg


#: Where the agent keeps its event-signing key unless its config names one (agent.keys).
AGENT_KEY_FILE = "event-signing.key"


def agent_signing_key(state_dir: Path) -> EventSigner:
    """The demo agent's event-signing key, made before any process starts, where the agent
    looks for it (``<state_dir>/event-signing.key``: base64 of the seed, mode 0600), so the
    classifier trusts it from the first event on, as a site gives its classifier each agent's
    key (``otwatch-agent keys show``)."""
    signer = EventSigner.generate()
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir / AGENT_KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(signer.private_b64 + "\n")
    return signer


def classifier_config(bootstrap: str, workdir: Path, signer: EventSigner) -> dict[str, Any]:
    cfg: dict[str, Any] = yaml.safe_load((CONFIG / "classifier.yaml").read_text())
    cfg["classifier"]["records_db"] = str(workdir / "records.db")
    cfg["classifier"]["criteria"] = str(CONFIG / "criteria.yaml")
    cfg["classifier"]["agent_keys"] = {signer.key_id: signer.public_key_b64}
    cfg["classifier"]["require_signed_events"] = True
    cfg["kafka"]["bootstrap_servers"] = bootstrap
    cfg["metrics"]["port"] = free_port()
    return cfg


def wait_for_file(path: Path, pipeline: Pipeline, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        pipeline.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} did not appear within {timeout:.0f} s")
        time.sleep(0.2)


#: The agent's log line for each change it saw (`agent.runner`), in the text format.
_AGENT_CHANGE = re.compile(r" INFO agent\.runner: (authorized \S+ \S+: .*)$")


def print_approved_changes(agent_log: Path, seen: set[str]) -> None:
    """The changes the agent found covered by an approval: published to the audit-trail topic,
    and deliberately no record (the other changes appear as master records)."""
    if not agent_log.exists():
        return
    for line in agent_log.read_text(encoding="utf-8", errors="replace").splitlines():
        found = _AGENT_CHANGE.search(line)
        if found is None or found.group(1) in seen:
            continue
        seen.add(found.group(1))
        print(f"\n  APPROVED CHANGE {found.group(1).removeprefix('authorized ')}\n"
              "    matched its approved change record: audit trail only, no master record")


def print_new_records(db: Path, seen: set[str], ui_port: int | None = None) -> None:
    """Each master record the classifier opened since the last call, once; with its page
    and dossier in the workspace when the demo serves one."""
    if not db.exists():
        return
    from detectors.records import open_store

    store = open_store(str(db))
    try:
        records = store.list_records()
    except Exception:
        return
    finally:
        store.close()
    for rec in records:
        if rec.id in seen:
            continue
        seen.add(rec.id)
        print(
            f"\n  MASTER RECORD {rec.id}  [{rec.classification}, severity {rec.severity}, "
            f"state {rec.state}]\n    linked security ticket: {rec.security_ticket}\n"
            f"    {rec.controller}/{rec.tag}: {rec.description}"
        )
        if ui_port is not None:
            page = f"http://127.0.0.1:{ui_port}/records/{rec.id}"
            print(f"    {page}   dossier: {page}/dossier (PDF: {page}/dossier.pdf)")


#: One demo user per role: (user id, printed name, roles). Both approvers also hold the role
#: they sign as, so that plan approval and closure can be signed by two people.
DEMO_USERS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("vera", "Vera Viewer", ("viewer",)),
    ("omar", "Omar Operator", ("operator",)),
    ("quinn", "Quinn Quality", ("quality", "approver")),
    ("sam", "Sam Security", ("security", "approver")),
    ("tara", "Tara Technician", ("quality",)),
    ("ada", "Ada Admin", ("admin",)),
    # The webhook connector's service user (otwatch-tickets acts as it; nobody signs in).
    ("svc-webhook", "Webhook connector", ("integration",)),
)


def enrol_demo_users(db: Path, timeout: float = 60.0) -> dict[str, str]:
    """Wait for the classifier's migration, then add `DEMO_USERS` (each with a new random
    password) unless the database has users already; returns user id → password."""
    from detectors.identity import Argon2Settings, Passwords, add_user, count_users
    from detectors.records import HEAD_REVISION, open_store

    passwords = Passwords(Argon2Settings())
    deadline = time.monotonic() + timeout
    with open_store(str(db)) as store:
        while store.schema_version() < HEAD_REVISION:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{db} was not migrated within {timeout:.0f} s")
            time.sleep(0.2)
        made = {user_id: secrets.token_urlsafe(12) for user_id, _, _ in DEMO_USERS}
        hashes = {user_id: passwords.hash(pw) for user_id, pw in made.items()}
        with store.database.write() as conn:
            if count_users(conn):
                return {}
            for user_id, name, roles in DEMO_USERS:
                add_user(conn, user_id, name, roles, password_hash=hashes[user_id],
                         by="demo", now=datetime.now(UTC))
    return made


def print_sign_in(made: dict[str, str], ui_port: int | None, db: Path) -> None:
    """The demo users, their passwords and how to sign in (browser, CLI, API token)."""
    roles = {user_id: ", ".join(r) for user_id, _, r in DEMO_USERS}
    print("  demo users (passwords are new each run):")
    for user_id, password in made.items():
        print(f"    {user_id:6} {password:18} {roles[user_id]}")
    if ui_port is not None:
        base = f"http://127.0.0.1:{ui_port}"
        print(f"  sign in at          {base}/login")
        print(f"  workspace           {base}/ (records), {base}/kpis (KPI charts); "
              "it stays up until the demo ends")
    print(f"  or on the command line, e.g.: otwatch-records --db {db} --user quinn "
          "transition NC-2026-000001 triage --reason 'seen'   (asks the password)")


def start(pipeline: Pipeline, scenario: Path, workdir: Path, *, with_ui: bool = True) -> int | None:
    """Start every process; return the records UI port (None without the UI)."""
    pipeline.broker.start()
    bootstrap = pipeline.broker.bootstrap
    print(f"  broker (Tansu)      {bootstrap}")
    ports_file = workdir / "ports.json"
    ready = workdir / "agent" / "ready"
    pipeline.spawn(
        "sim",
        [
            "simulators.cli",
            "run",
            "--plant",
            str(CONFIG / "plant.yaml"),
            "--scenario",
            str(scenario),
            "--free-ports",
            "--ports-file",
            str(ports_file),
            "--labels-out",
            str(workdir / "labels.jsonl"),
            "--approvals-out",
            str(workdir / "scenario-approvals.yaml"),
            "--start-when-exists",
            str(ready),
            "--hold",
            "3600",
        ],
    )
    wait_for_file(ports_file, pipeline, 60)
    ports = json.loads(ports_file.read_text())
    print("  simulated plant     " + ", ".join(f"{k}:{v}" for k, v in sorted(ports.items())))
    agent_cfg = agent_config(ports, bootstrap, workdir)
    (workdir / "agent.yaml").write_text(yaml.safe_dump(agent_cfg))
    # The simulator writes the scenario's approvals when the play starts (their windows begin
    # then); until then the file holds none, rather than being missing (an ERROR in the
    # agent's log, about a file that is only late).
    write_approvals(workdir / "scenario-approvals.yaml", [])
    signer = agent_signing_key(workdir / "agent")
    (workdir / "classifier.yaml").write_text(
        yaml.safe_dump(classifier_config(bootstrap, workdir, signer))
    )
    pipeline.spawn(
        "classifier", ["detectors.cli", "run", "--config", str(workdir / "classifier.yaml")]
    )
    pipeline.spawn("agent", ["agent.cli", "run", "--config", str(workdir / "agent.yaml")])

    ui_port = free_port() if with_ui else None
    if ui_port is not None:
        pipeline.spawn(
            "records-ui",
            [
                "detectors.web",
                "--db",
                str(workdir / "records.db"),
                "--port",
                str(ui_port),
            ],
        )
    wait_for_file(ready, pipeline, 60)
    # The classifier creates records.db, then migrates it; the publisher waits for the
    # migration itself (as it must wherever services start in any order).
    wait_for_file(workdir / "records.db", pipeline, 30)
    pipeline.spawn("containment", [
        "detectors.containment_cli", "--db", str(workdir / "records.db"),
        "--bootstrap-servers", bootstrap, "--wait-for-schema-s", "60",
    ])
    watched = [ctl["id"] for ctl in agent_cfg["controllers"]]
    print(f"  agent               watching {len(watched)} controllers ({', '.join(watched)}; "
          f"logs in {workdir})")
    if ui_port is not None:
        print(f"  records UI          http://127.0.0.1:{ui_port}/")
    return ui_port


def run_seconds(text: str) -> float:
    """How long the demo runs: ``DEMO_SECONDS`` or ``--seconds`` as given (0 or empty: until
    Ctrl-C). `ValueError` saying what is wrong with anything else."""
    if not text.strip():
        return 0.0
    try:
        value = float(text)
    except ValueError:
        raise ValueError("not a number") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError("not a number of seconds (0 or more)")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="otwatch-demo", description=__doc__)
    parser.add_argument("--scenario", default=os.environ.get("DEMO_SCENARIO") or "demo")
    parser.add_argument("--seconds", help="stop after this many seconds (default: "
                        "DEMO_SECONDS, else run until Ctrl-C)")
    parser.add_argument("--workdir", type=Path, default=ROOT / ".demo")
    args = parser.parse_args(argv)
    named, raw = (("--seconds", args.seconds) if args.seconds is not None
                  else ("DEMO_SECONDS", os.environ.get("DEMO_SECONDS", "")))
    try:
        args.seconds = run_seconds(raw)
    except ValueError as exc:
        print(f"demo: {named}={raw!r}: {exc}; fix: a number of seconds such as 60 "
              "(DEMO_SECONDS=60 make demo), or leave it unset to run until Ctrl-C",
              file=sys.stderr)
        return 2
    scenario = CONFIG / "scenarios" / f"{args.scenario}.yaml"
    if not scenario.exists():
        names = ", ".join(sorted(p.stem for p in (CONFIG / "scenarios").glob("*.yaml")))
        print(f"demo: no scenario {args.scenario!r}; choose one of: {names}", file=sys.stderr)
        return 2
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    deadline = time.monotonic() + args.seconds if args.seconds else None
    print(
        f"otwatch demo: scenario {args.scenario!r}"
        + (f", {args.seconds:.0f} s" if deadline else ", Ctrl-C to stop")
    )
    pipeline = Pipeline(args.workdir)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    seen: set[str] = set()
    approved: set[str] = set()
    try:
        ui_port = start(pipeline, scenario, args.workdir)
        print_sign_in(enrol_demo_users(args.workdir / "records.db"), ui_port,
                      args.workdir / "records.db")
        print("  playing the scenario; master records appear below as the classifier opens them")
        while deadline is None or time.monotonic() < deadline:
            pipeline.check_alive()
            print_approved_changes(args.workdir / "agent.log", approved)
            print_new_records(args.workdir / "records.db", seen, ui_port)
            time.sleep(1.0)
    except KeyboardInterrupt:
        print("\n  stopping")
    except RuntimeError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    finally:
        pipeline.stop()
    print_approved_changes(args.workdir / "agent.log", approved)
    print_new_records(args.workdir / "records.db", seen)
    print(
        f"\n{len(approved)} approved change(s) seen, {len(seen)} master record(s) opened."
        f" Inspect them: otwatch-records list / show ID"
        f" (database {args.workdir / 'records.db'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
