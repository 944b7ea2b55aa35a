"""Signed checkpoints of the audit trail's head: what catches a cut tail or a recomputed chain.

The hash chain alone proves only that the trail is *a* chain: someone with write access can
delete the newest entries, or edit an old one and recompute every hash after it, and the
chain verifies. A checkpoint is the head (seq and hash) signed with an Ed25519 key that lives
in a file outside the database (the records service reads it; the database never holds it),
so neither can be done without the signatures no longer matching:

- a checkpoint whose seq the trail no longer reaches: the tail was cut;
- a checkpoint whose seq holds another hash: the chain was recomputed (or cut and regrown);
- more entries after the newest checkpoint than the interval allows: checkpoints stopped, or
  the newest were deleted together with their entries;
- a checkpoint whose signature does not verify, or whose ``previous`` is not the checkpoint
  before it: forged, or one deleted from between.

Each checkpoint is stored in ``trail_checkpoints`` and published to Kafka
(``otwatch.checkpoints``, `detectors.checkpoint_publisher`), so that a copy lives outside the
database; `verify --checkpoints-from kafka|FILE` checks against that copy when the table itself
may have been tampered with.

The key file holds base64 of the 32-byte Ed25519 seed (the format of the agent's keys) and must
not be readable by everyone: ``otwatch-records checkpoints keygen --out FILE`` makes one (mode
0600) and writes the public key beside it (``FILE.pub``).

Example::

    >>> signer = CheckpointSigner.from_file(Path("/etc/otwatch/checkpoint.key"))
    >>> made = checkpoint_if_due(db, signer, Interval(entries=1000, seconds=300), now=now)
    >>> checkpoint_problems(trail_heads, [made], signer.public_key, Interval(1000, 300))
    []
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Connection, insert, select

from agent.contract.signing import key_id_of, load_private_key, load_public_key, public_key_b64
from detectors.records._exceptions import RecordsError
from detectors.records.db import Database
from detectors.records.tables import trail_checkpoints
from detectors.records.trail import canonical_json, head_of, iso

SCHEMA = "otwatch.checkpoint/1"
#: The environment variable that names the private key file (else the config's key_file).
ENV_KEY_FILE = "OTWATCH_CHECKPOINT_KEY"


class CheckpointKeyError(RecordsError):
    """The checkpoint key file cannot be used; the message names the file and the fix."""


@dataclass(frozen=True)
class Interval:
    """How often a checkpoint is made: after ``entries`` new trail entries, or when
    ``seconds`` have passed since the last one and there is anything new."""

    entries: int = 1000
    seconds: float = 300.0


@dataclass(frozen=True)
class Checkpoint:
    """One signed head: trail entry ``seq`` had hash ``hash``; ``previous`` is the seq of
    the checkpoint before it (0 for the first)."""

    seq: int
    hash: str
    previous: int
    signed_at: str
    key_id: str
    signature: str

    def body(self) -> dict[str, Any]:
        """What is signed: everything but the signature, under a schema name."""
        return {"schema": SCHEMA, "seq": self.seq, "hash": self.hash, "previous": self.previous,
                "signed_at": self.signed_at, "key_id": self.key_id}

    def message(self) -> dict[str, Any]:
        """The Kafka message and the export line: the body with its signature."""
        return {**self.body(), "signature": self.signature}

    @classmethod
    def from_message(cls, data: Mapping[str, Any]) -> Checkpoint:
        """From a message or export line; `ValueError` naming what is missing."""
        if data.get("schema") != SCHEMA:
            raise ValueError(f"not a checkpoint (schema {data.get('schema')!r}, "
                             f"expected {SCHEMA!r})")
        try:
            return cls(seq=int(data["seq"]), hash=str(data["hash"]),
                       previous=int(data["previous"]), signed_at=str(data["signed_at"]),
                       key_id=str(data["key_id"]), signature=str(data["signature"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"checkpoint message lacks a valid {exc}") from None


# --- the key ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointSigner:
    """The records service's checkpoint key."""

    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def key_id(self) -> str:
        return key_id_of(self.public_key)

    @classmethod
    def from_file(cls, path: Path) -> CheckpointSigner:
        """The key in ``path``; refused (with the fix) when missing, unreadable, readable by
        everyone, or not a key."""
        try:
            mode = path.stat().st_mode
            text = path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise CheckpointKeyError(
                f"{path}: cannot read the checkpoint signing key ({exc}); fix: the path, or "
                "make one with `otwatch-records checkpoints keygen --out FILE`") from None
        if mode & stat.S_IRWXO:
            raise CheckpointKeyError(
                f"{path}: the checkpoint signing key is readable by everyone (mode "
                f"{stat.filemode(mode)}); anyone could sign a forged head with it. Fix: "
                f"chmod 600 {path} (and make a new key if others may have copied it)")
        try:
            return cls(load_private_key(text))
        except ValueError as exc:
            raise CheckpointKeyError(f"{path}: {exc}; fix: restore the key file") from None

    def sign(self, seq: int, head: str, previous: int, now: datetime) -> Checkpoint:
        unsigned = Checkpoint(seq, head, previous, iso(now), self.key_id, "")
        signature = self.private_key.sign(canonical_json(unsigned.body()).encode())
        return Checkpoint(seq, head, previous, unsigned.signed_at, self.key_id,
                          base64.b64encode(signature).decode())


def generate_key(out: Path) -> tuple[Path, str]:
    """A new key in ``out`` (mode 0600, never overwriting) and its public key in
    ``out.pub``; returns the public key file and the key id."""
    key = Ed25519PrivateKey.generate()
    seed = base64.b64encode(key.private_bytes_raw()).decode()
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise CheckpointKeyError(f"{out} already exists; a key is never overwritten (the "
                                 "checkpoints signed with it could no longer be checked). "
                                 "Fix: choose another path") from None
    except OSError as exc:
        raise CheckpointKeyError(f"{out}: cannot create the key ({exc.strerror})") from None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(seed + "\n")
    public = out.with_name(out.name + ".pub")
    public.write_text(public_key_b64(key.public_key()) + "\n", encoding="ascii")
    return public, key_id_of(key.public_key())


def read_public_key(path: Path) -> Ed25519PublicKey:
    """A public key file (``FILE.pub`` from keygen); a private key file works too."""
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointKeyError(f"{path}: cannot read the checkpoint public key ({exc})") \
            from None
    try:
        return load_public_key(text)
    except ValueError:
        pass
    try:
        return load_private_key(text).public_key()
    except ValueError as exc:
        raise CheckpointKeyError(f"{path}: {exc}; fix: pass the .pub file keygen wrote") \
            from None


# --- the table --------------------------------------------------------------------------------


def read_checkpoints(conn: Connection) -> list[Checkpoint]:
    t = trail_checkpoints
    rows = conn.execute(select(t).order_by(t.c.seq))
    return [Checkpoint(int(r.seq), r.hash, int(r.previous), r.signed_at, r.key_id, r.signature)
            for r in rows]


def newest(conn: Connection) -> Checkpoint | None:
    t = trail_checkpoints
    row = conn.execute(select(t).order_by(t.c.seq.desc()).limit(1)).first()
    return None if row is None else Checkpoint(int(row.seq), row.hash, int(row.previous),
                                                row.signed_at, row.key_id, row.signature)


def due(head: tuple[int, str] | None, last: Checkpoint | None, every: Interval,
        now: datetime) -> bool:
    """Whether the head needs a checkpoint now (pure)."""
    if head is None or (last is not None and head[0] <= last.seq):
        return False
    if last is None or head[0] - last.seq >= every.entries:
        return True
    return now - datetime.fromisoformat(last.signed_at) >= timedelta(seconds=every.seconds)


def checkpoint_if_due(db: Database, signer: CheckpointSigner, every: Interval, *,
                      now: datetime, force: bool = False) -> Checkpoint | None:
    """Sign and store the head when `due` (or ``force`` and there is anything new);
    in one write transaction under the trail-head lock, so the head is the head."""
    with db.write() as conn:
        db.lock_trail_head()
        head, last = head_of(conn), newest(conn)
        wanted = due(head, last, every, now) or (
            force and head is not None and (last is None or head[0] > last.seq))
        if not wanted or head is None:
            return None
        made = signer.sign(head[0], head[1], 0 if last is None else last.seq, now)
        conn.execute(insert(trail_checkpoints), [{
            "seq": made.seq, "hash": made.hash, "previous": made.previous,
            "signed_at": made.signed_at, "key_id": made.key_id, "signature": made.signature}])
        return made


# --- checking ---------------------------------------------------------------------------------


def signature_ok(checkpoint: Checkpoint, key: Ed25519PublicKey) -> bool:
    try:
        raw = base64.b64decode(checkpoint.signature, validate=True)
        key.verify(raw, canonical_json(checkpoint.body()).encode())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return checkpoint.key_id == key_id_of(key)


def checkpoint_problems(
    heads: Mapping[int, str], checkpoints: Sequence[Checkpoint], key: Ed25519PublicKey,
    every: Interval, *, source: str = "database",
) -> list[str]:
    """Every way the trail (``heads``: seq → hash of each entry) disagrees with the signed
    checkpoints, oldest checkpoint first (empty: all hold)."""
    problems: list[str] = []
    previous = 0
    for cp in sorted(checkpoints, key=lambda c: c.seq):
        what = f"checkpoint of entry {cp.seq} ({source}, signed {cp.signed_at})"
        if not signature_ok(cp, key):
            problems.append(f"{what}: its signature does not verify with key "
                            f"{key_id_of(key)} (forged or edited checkpoint)")
        elif cp.previous != previous:
            problems.append(f"{what}: it follows the checkpoint of entry {cp.previous}, but "
                            f"the one before it is of entry {previous} (a checkpoint was "
                            "deleted)")
        elif cp.seq not in heads:
            last = max(heads, default=0)
            problems.append(f"{what}: the trail ends at entry {last}; the entries from "
                            f"{last + 1} on (at least to {cp.seq}) were deleted (the tail was "
                            "cut)")
        elif heads[cp.seq] != cp.hash:
            problems.append(f"{what}: entry {cp.seq} now hashes to {heads[cp.seq][:16]}…, the "
                            f"signed head is {cp.hash[:16]}… (the chain was recomputed: an "
                            f"entry in {previous + 1}..{cp.seq} was changed)")
        previous = cp.seq
    problems += _uncovered(heads, checkpoints, every, source)
    return problems


def _uncovered(heads: Mapping[int, str], checkpoints: Iterable[Checkpoint], every: Interval,
               source: str) -> list[str]:
    last = max((c.seq for c in checkpoints), default=0)
    after = sum(1 for seq in heads if seq > last)
    if after <= every.entries:
        return []
    return [f"{after} trail entries after the newest checkpoint (entry {last}, {source}); at "
            f"most {every.entries} are allowed between checkpoints: the newest checkpoints "
            "were deleted, or checkpointing stopped (is the classifier's "
            "checkpoints.key_file set?)"]


def missing_from(database: Sequence[Checkpoint], outside: Sequence[Checkpoint],
                 source: str) -> list[str]:
    """Checkpoints the outside copy holds that the database lost or changed."""
    stored = {c.seq: c for c in database}
    problems = []
    for cp in sorted(outside, key=lambda c: c.seq):
        mine = stored.get(cp.seq)
        if mine is None:
            problems.append(f"checkpoint of entry {cp.seq} (signed {cp.signed_at}) is in "
                            f"{source} but not in the database (deleted from the database)")
        elif mine != cp:
            problems.append(f"checkpoint of entry {cp.seq} differs between the database and "
                            f"{source} (the database copy was edited)")
    return problems


def load_export(path: Path) -> list[Checkpoint]:
    """Checkpoints from a file of JSON lines (`checkpoints export`, or a topic dump)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CheckpointKeyError(f"{path}: cannot read the checkpoints ({exc.strerror})") \
            from None
    found = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            found.append(Checkpoint.from_message(orjson.loads(line)))
        except (orjson.JSONDecodeError, ValueError) as exc:
            raise CheckpointKeyError(f"{path}, line {number}: {exc}") from None
    return found
