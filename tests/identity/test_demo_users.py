"""`make demo` adds one user per role, with passwords that sign in."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from detectors.identity import Argon2Settings, Authenticator, IdentitySettings
from detectors.records import Role, open_store
from simulators.demo import DEMO_USERS, enrol_demo_users


def test_demo_users_cover_every_role_and_sign_in(tmp_path: Path) -> None:
    db = tmp_path / "records.db"
    with open_store(str(db)) as store:
        store.migrate()
    made = enrol_demo_users(db)
    assert {r for _, _, roles in DEMO_USERS for r in roles} == {r.value for r in Role}
    assert set(made) == {user_id for user_id, _, _ in DEMO_USERS}
    auth = Authenticator(IdentitySettings(argon2=Argon2Settings(
        time_cost=1, memory_cost=8, parallelism=1)))
    with open_store(str(db)) as store:
        user = auth.sign_in(store.database, "quinn", made["quinn"], source="demo",
                            now=datetime.now(UTC)).result()
    assert user.roles == {"quality", "approver"}
    assert enrol_demo_users(db) == {}  # a second run adds nobody
