"""Checking who someone is: sign-in, and re-entering the password to sign (21 CFR 11.200).

A check runs in three steps so that the service never holds its database thread while a
password is hashed (about 0.1 s) or the directory answers:

1. `Authenticator.prepare` (database, read): the user, and any lock on the name typed;
2. `Authenticator.check` (no database): the argon2id hash, or a bind to the directory;
3. `Authenticator.settle` (database, write): count or clear failures, lock after
   ``lockout_after`` failures, add or refresh a directory user, log the outcome with the
   user and the source address. It returns an `Outcome` rather than raising, so that a
   refusal is committed (and counted) before it is reported.

`Authenticator.sign_in` and `Authenticator.reauthenticate` run the three in a row (the CLI).
Local users are checked against their hash, directory users (and names otwatch does not know
yet, when a directory is configured) by binding to the directory. Every refusal says the same
thing but for a lock, so that the answer tells nobody which names exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from detectors.identity._exceptions import InvalidUser, SignInRefused
from detectors.identity.config import IdentitySettings
from detectors.identity.events import record_event
from detectors.identity.ldap import DirectoryUser, LdapDirectory
from detectors.identity.lockout import clear_failures, locked_until, record_failure
from detectors.identity.passwords import Passwords
from detectors.identity.users import LDAP, LOCAL, User, get_user, upsert_directory_user, user_id_of
from detectors.records import Reauthentication
from detectors.records.db import Database

REFUSED = "unknown user name or wrong password"


@dataclass(frozen=True)
class Attempt:
    """What step 1 found: the name as typed, its user id (None if not a valid name), the
    user (None if unknown) and the lock in force, if any."""

    typed: str
    user_id: str | None
    user: User | None
    locked_until: datetime | None


@dataclass(frozen=True)
class Verdict:
    """What step 2 found: whether the credentials hold, how they were checked, and why not."""

    ok: bool
    method: str
    why: str = ""
    directory_user: DirectoryUser | None = None


@dataclass(frozen=True)
class Outcome:
    """What step 3 decided: the user, or the refusal to raise once it is committed."""

    user: User | None
    method: str
    refusal: SignInRefused | None = None

    def result(self) -> User:
        if self.refusal is not None:
            raise self.refusal
        assert self.user is not None
        return self.user


class Authenticator:
    """Sign-in and re-authentication against local hashes and the optional directory."""

    def __init__(self, settings: IdentitySettings, directory: LdapDirectory | None = None) -> None:
        self.settings = settings
        self.passwords = Passwords(settings.argon2)
        if directory is None and settings.ldap is not None:
            directory = LdapDirectory(settings.ldap)
        self.directory = directory

    def prepare(self, conn: Connection, typed: str, now: datetime) -> Attempt:
        try:
            user_id: str | None = user_id_of(typed)
        except InvalidUser:
            user_id = None
        user = None if user_id is None else get_user(conn, user_id)
        return Attempt(typed, user_id, user, locked_until(conn, typed, now))

    def check(self, attempt: Attempt, password: str) -> Verdict:
        """The slow step: no database here."""
        if attempt.locked_until is not None:
            return Verdict(False, "none", "name locked")
        user = attempt.user
        if user is not None and user.source == LOCAL:
            ok = self.passwords.verify(user.password_hash, password)
            return Verdict(ok, "password", "" if ok else "wrong password")
        if self.directory is not None and attempt.user_id is not None and (
                user is None or user.source == LDAP):
            found = self.directory.authenticate(attempt.user_id, password)
            if found is None:
                return Verdict(False, "ldap", "the directory refused the credentials")
            if not found.roles:
                return Verdict(False, "ldap", "the directory groups map to no otwatch role")
            return Verdict(True, "ldap", "", found)
        self.passwords.verify(None, password)  # as long as a wrong password takes
        return Verdict(False, "password", "unknown user name")

    def settle(self, conn: Connection, attempt: Attempt, verdict: Verdict, *, source: str,
               now: datetime, purpose: str = "sign_in") -> Outcome:
        """Count, lock, log; ``purpose`` is "sign_in" or "signature"."""
        refused = "signature_refused" if purpose == "signature" else "sign_in_refused"
        if attempt.locked_until is not None:
            until = attempt.locked_until
            record_event(conn, at=now, event=refused, username=attempt.typed, source=source,
                         detail=f"name locked until {until.isoformat(timespec='seconds')}")
            return Outcome(None, verdict.method, _locked(until))
        user = attempt.user
        if verdict.ok and verdict.directory_user is not None:
            found = verdict.directory_user
            user = upsert_directory_user(conn, found.user_id, found.printed_name, found.roles,
                                         now=now)
        why = verdict.why if not verdict.ok else ("account disabled" if user is None
                                                  or user.disabled else "")
        if why:
            return self._refuse(conn, attempt, why, refused, source=source, now=now,
                                method=verdict.method)
        assert user is not None
        clear_failures(conn, attempt.typed)
        event = "signature_reauthenticated" if purpose == "signature" else "sign_in"
        record_event(conn, at=now, event=event, username=user.user_id, source=source,
                     detail=verdict.method)
        return Outcome(user, verdict.method)

    def _refuse(self, conn: Connection, attempt: Attempt, why: str, event: str, *,
                source: str, now: datetime, method: str) -> Outcome:
        s = self.settings
        record_event(conn, at=now, event=event, username=attempt.typed, source=source,
                     detail=why)
        until = record_failure(conn, attempt.typed, now, after=s.lockout_after,
                               lock_s=s.lockout_s)
        if until is not None:
            record_event(conn, at=now, event="locked", username=attempt.typed, source=source,
                         detail=f"{s.lockout_after} failures in a row; locked until "
                                f"{until.isoformat(timespec='seconds')}")
            return Outcome(None, method, _locked(until))
        return Outcome(None, method, SignInRefused(REFUSED))

    def sign_in(self, db: Database, typed: str, password: str, *, source: str,
                now: datetime, purpose: str = "sign_in") -> Outcome:
        """All three steps in a row; call ``.result()`` on the outcome for the user."""
        with db.read() as conn:
            attempt = self.prepare(conn, typed, now)
        verdict = self.check(attempt, password)
        with db.write() as conn:
            return self.settle(conn, attempt, verdict, source=source, now=now, purpose=purpose)

    def reauthenticate(self, db: Database, user_id: str, password: str, *, source: str,
                       now: datetime) -> Reauthentication:
        """The signer's password again, for one signature; refusals count toward the lock."""
        outcome = self.sign_in(db, user_id, password, source=source, now=now,
                               purpose="signature")
        return reauthentication(outcome, now)


def reauthentication(outcome: Outcome, now: datetime) -> Reauthentication:
    """The proof a signature carries, from a successful re-entry of the password."""
    user = outcome.result()
    return Reauthentication(user.user_id, user.printed_name, outcome.method, now)


def _locked(until: datetime) -> SignInRefused:
    return SignInRefused(
        f"too many failed sign-ins: this name is locked until "
        f"{until.strftime('%Y-%m-%d %H:%M:%S')} UTC", until)
