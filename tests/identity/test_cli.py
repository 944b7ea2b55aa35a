"""`otwatch-records users` and `tokens`: the first admin, then admin-only user management,
and each person's API tokens (shown once, hashed, expiring, revocable)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from detectors.identity import list_users, read_events
from detectors.records import RecordStore
from detectors.records_cli import main

Cap = pytest.CaptureFixture[str]
ADMIN_PW, QA_PW = "admin password 1", "quality password 2"


class Answers:
    """What the password prompts answer, in order (each prompt recorded)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.queue: list[str] = []
        self.asked: list[str] = []
        monkeypatch.setattr("getpass.getpass", self)

    def __call__(self, prompt: str = "") -> str:
        self.asked.append(prompt)
        return self.queue.pop(0)

    def will(self, *answers: str) -> None:
        self.queue = list(answers)


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> Iterator[Answers]:
    made = Answers(monkeypatch)
    yield made
    assert made.queue == [], f"prompts not asked: {made.queue}"


def users_of(store: RecordStore) -> dict[str, tuple[str, ...]]:
    with store.database.read() as conn:
        return {u.user_id: (*sorted(u.roles), "disabled" if u.disabled else "active")
                for u in list_users(conn)}


def test_the_first_admin_then_only_admins_manage_users(
    argv: list[str], answers: Answers, empty_store: RecordStore, capsys: Cap,
) -> None:
    answers.will(ADMIN_PW, ADMIN_PW)
    assert main([*argv, "users", "add", "Ada", "--name", "Ada Admin", "--admin"]) == 0
    assert "first admin" in capsys.readouterr().out
    assert main([*argv, "users", "add", "eve", "--name", "Eve", "--admin"]) == 2
    assert "there are users already" in capsys.readouterr().err
    answers.will(ADMIN_PW, QA_PW, QA_PW)
    assert main([*argv, "--user", "ada", "users", "add", "qa.lee", "--name", "Quinn Lee",
                 "--role", "quality", "--role", "approver"]) == 0
    answers.will(QA_PW)
    assert main([*argv, "--user", "qa.lee", "users", "disable", "ada"]) == 1
    assert "may not manage users" in capsys.readouterr().err
    answers.will(ADMIN_PW)
    assert main([*argv, "--user", "ada", "users", "roles", "qa.lee", "--role", "viewer"]) == 0
    answers.will(ADMIN_PW)
    assert main([*argv, "--user", "ada", "users", "disable", "qa.lee"]) == 0
    assert users_of(empty_store) == {"ada": ("admin", "active"),
                                     "qa.lee": ("viewer", "disabled")}
    answers.will(QA_PW)
    assert main([*argv, "--user", "qa.lee", "tokens", "list"]) == 1
    with empty_store.database.read() as conn:
        logged = [(e.event, e.username, e.actor) for e in reversed(read_events(conn))]
    assert ("user_added", "qa.lee", "ada") in logged
    assert ("roles_changed", "qa.lee", "ada") in logged
    assert ("user_disabled", "qa.lee", "ada") in logged
    assert ("sign_in_refused", "qa.lee", "") in logged


def test_passwords_follow_the_policy_and_are_asked_twice(
    argv: list[str], answers: Answers, empty_store: RecordStore, capsys: Cap,
) -> None:
    answers.will("short")
    assert main([*argv, "users", "add", "ada", "--name", "Ada", "--admin"]) == 2
    assert "at least 12 characters" in capsys.readouterr().err
    answers.will(ADMIN_PW, ADMIN_PW + "x")
    assert main([*argv, "users", "add", "ada", "--name", "Ada", "--admin"]) == 2
    assert "differ" in capsys.readouterr().err
    answers.will("ada is my name!")
    assert main([*argv, "users", "add", "ada", "--name", "Ada", "--admin"]) == 2
    assert "user name" in capsys.readouterr().err
    answers.will(ADMIN_PW, ADMIN_PW)
    assert main([*argv, "users", "add", "ada", "--name", "Ada", "--admin"]) == 0
    answers.will(ADMIN_PW, "a new admin password", "a new admin password")
    assert main([*argv, "--user", "ada", "users", "passwd"]) == 0
    answers.will(ADMIN_PW)
    assert main([*argv, "--user", "ada", "users", "list"]) == 1
    answers.will("a new admin password")
    assert main([*argv, "--user", "ada", "users", "list"]) == 0
    assert "ada" in capsys.readouterr().out
    assert users_of(empty_store) == {"ada": ("admin", "active")}


def test_tokens_are_shown_once_listed_without_secret_and_revoked(
    argv: list[str], answers: Answers, empty_store: RecordStore, capsys: Cap,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers.will(ADMIN_PW, ADMIN_PW)
    main([*argv, "users", "add", "ada", "--name", "Ada", "--admin"])
    answers.will(ADMIN_PW)
    assert main([*argv, "--user", "ada", "tokens", "create", "--name", "MES bridge",
                 "--days", "7"]) == 0
    out = capsys.readouterr().out
    token = out.strip().splitlines()[-1]
    assert token.startswith("otw_") and "Shown once" in out
    token_id = token.split("_")[1]
    with empty_store.database.read() as conn:
        stored = conn.exec_driver_sql("SELECT secret_sha256 FROM api_tokens").scalar()
    assert stored is not None and token.split("_", 2)[2] not in str(stored)
    monkeypatch.setenv("OTWATCH_TOKEN", token)
    assert main([*argv, "tokens", "list"]) == 0
    listing = capsys.readouterr().out
    assert token_id in listing and "active" in listing and token not in listing
    assert main([*argv, "tokens", "revoke", token_id]) == 0
    assert main([*argv, "tokens", "list"]) == 1
    assert "revoked token" in capsys.readouterr().err
    monkeypatch.delenv("OTWATCH_TOKEN")
    answers.will(ADMIN_PW)
    assert main([*argv, "--user", "ada", "tokens", "list", "--all"]) == 0
    assert "revoked" in capsys.readouterr().out
