"""The people of the records tests: enrolled in every test store (users table), so that the
workflow, which checks each actor against that table, accepts them."""

from __future__ import annotations

from datetime import datetime

from detectors.identity import Argon2Settings, Passwords, add_user
from detectors.records import (
    Actor,
    Reauthentication,
    RecordStore,
    Role,
    Sign,
    SignatureRequest,
)

#: Cheap argon2 for tests (FIELD-NOTES): production keeps argon2-cffi's defaults.
CHEAP = Argon2Settings(time_cost=1, memory_cost=8, parallelism=1)
PASSWORD = "correct horse battery"

PEOPLE: dict[str, tuple[str, tuple[str, ...]]] = {
    "qa.lee": ("Quinn Lee", ("quality", "approver")),
    "soc.kim": ("Sam Kim", ("security", "approver")),
    "qa.tech": ("Tara Tech", ("quality",)),
    "op.smith": ("Olga Smith", ("operator",)),
    "view.vic": ("Vic Viewer", ("viewer",)),
    "both.bo": ("Bo Both", ("quality", "security", "approver")),
    "admin.ada": ("Ada Admin", ("admin",)),
}

QA = Actor("qa.lee")
SOC = Actor("soc.kim")
TECH = Actor("qa.tech")
OPERATOR = Actor("op.smith")
VIEWER = Actor("view.vic")
BOTH = Actor("both.bo")


def enrol(store: RecordStore, now: datetime) -> None:
    """Add `PEOPLE` (password `PASSWORD`) to a migrated store."""
    hashed = Passwords(CHEAP).hash(PASSWORD)
    with store.database.write() as conn:
        for user_id, (name, roles) in PEOPLE.items():
            add_user(conn, user_id, name, roles, password_hash=hashed, by="test", now=now)


def proof(user_id: str, now: datetime) -> Reauthentication:
    """A re-entered password, as identity makes it (the identity tests check the making)."""
    return Reauthentication(user_id, PEOPLE[user_id][0], "password", now)


def signature(user_id: str, role: str, now: datetime,
              meaning: str = "approved") -> SignatureRequest:
    return SignatureRequest(Role(role), meaning, proof(user_id, now))


def sign(store: RecordStore, rid: str, user_id: str, role: str, now: datetime,
         meaning: str = "approved") -> None:
    store.execute(Sign(record_id=rid, reason=meaning,
                       signature=signature(user_id, role, now, meaning)),
                  actor=Actor(user_id), now=now)
