"""The people side of ``otwatch-records``: signing the command line in, and the ``users`` and
``tokens`` commands.

A command that writes signs in first: with an API token (``--token-file PATH``, or the token
itself in ``$OTWATCH_TOKEN``), else with a user name (``--user``, or asked) and a password
(always asked, never an argument). The user becomes the actor of every trail entry the
command writes. A signature needs the password: the one just typed to sign in, or, after a
token sign-in, asked for then.

``users add --admin`` creates the first user, an admin, while there are no users yet (there
is nobody to sign in as); after that only an admin adds, disables, enables and changes roles
and passwords of users. Anyone signed in manages their own tokens; an admin manages anyone's.
"""

from __future__ import annotations

import argparse
import getpass
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from detectors.identity._exceptions import InvalidUser, SignInRefused
from detectors.identity.config import IdentitySettings
from detectors.identity.passwords import Passwords, check_new_password
from detectors.identity.signin import Authenticator, reauthentication
from detectors.identity.tokens import (
    check_token,
    create_token,
    list_tokens,
    revoke_token,
    token_owner,
    touch_token,
)
from detectors.identity.users import (
    User,
    add_user,
    count_users,
    list_users,
    require_user,
    set_disabled,
    set_password_hash,
    set_roles,
    user_id_of,
)
from detectors.records import Reauthentication
from detectors.records.db import Database
from detectors.records.models import Role
from detectors.records.permissions import Permission, allows, require

ENV_TOKEN = "OTWATCH_TOKEN"
SOURCE = "cli"
ROLES = [r.value for r in Role]


@dataclass(frozen=True)
class SignedIn:
    """Who runs this command, and the password proof a signature may use (None after a
    token sign-in: the password is asked when a signature needs it)."""

    user: User
    proof: Reauthentication | None


def add_sign_in_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("signing in (commands that write)")
    group.add_argument("--user", help="your user name (asked if not given); the password is "
                       "always asked")
    group.add_argument("--token-file", type=Path,
                       help=f"a file holding your API token (or set ${ENV_TOKEN})")


def now() -> datetime:
    return datetime.now(UTC)


def sign_in(db: Database, settings: IdentitySettings, args: argparse.Namespace,
            env: dict[str, str]) -> SignedIn:
    """Sign the command in: token first (file or environment), else user and password."""
    token = _token(args, env)
    if token:
        return SignedIn(_token_user(db, token), None)
    typed = args.user or input("User name: ")
    password = getpass.getpass(f"Password for {typed}: ")
    moment = now()
    outcome = Authenticator(settings).sign_in(db, typed, password, source=SOURCE, now=moment)
    return SignedIn(outcome.result(), reauthentication(outcome, moment))


def signature_proof(db: Database, settings: IdentitySettings, signed: SignedIn) -> Reauthentication:
    """The password for a signature: the sign-in's, or asked now after a token sign-in."""
    if signed.proof is not None:
        return signed.proof
    password = getpass.getpass(f"Password for {signed.user.user_id} (to sign): ")
    return Authenticator(settings).reauthenticate(db, signed.user.user_id, password,
                                                  source=SOURCE, now=now())


def _token(args: argparse.Namespace, env: dict[str, str]) -> str:
    path: Path | None = getattr(args, "token_file", None)
    if path is not None:
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise InvalidUser(f"--token-file {str(path)!r}: cannot read it ({exc})") from None
    return env.get(ENV_TOKEN, "").strip()


def _token_user(db: Database, token: str) -> User:
    moment = now()
    with db.read() as conn:
        found = check_token(conn, token, now=moment)
    if found.user is None:
        raise SignInRefused(f"API token refused: {found.why}")
    if found.touch:
        with db.write() as conn:
            touch_token(conn, found.token_id, moment)
    return found.user


# --- users and tokens ---------------------------------------------------------------------------


def add_people_commands(sub: Any) -> None:
    users = sub.add_parser("users", help="users and roles (an admin; `add --admin` bootstraps)")
    usub = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    usub.add_parser("list", help="every user with roles and state")
    p = usub.add_parser("add", help="add a local user (the password is asked twice)")
    p.add_argument("new_user", metavar="USER")
    p.add_argument("--name", required=True, help="printed name, as signatures show it")
    p.add_argument("--role", action="append", default=[], choices=ROLES)
    p.add_argument("--admin", action="store_true",
                   help="the first user, an admin, while there are no users yet")
    for action in ("disable", "enable"):
        usub.add_parser(action, help=f"{action} a user").add_argument("target", metavar="USER")
    p = usub.add_parser("roles", help="set a user's roles (all of them)")
    p.add_argument("target", metavar="USER")
    p.add_argument("--role", action="append", default=[], choices=ROLES)
    p = usub.add_parser("passwd", help="change a password (your own, or an admin: anyone's)")
    p.add_argument("target", metavar="USER", nargs="?")
    tokens = sub.add_parser("tokens", help="API tokens for programs")
    tsub = tokens.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")
    p = tsub.add_parser("create", help="a new token (shown once)")
    p.add_argument("--name", required=True, help="what uses it, e.g. 'MES bridge'")
    p.add_argument("--days", type=int, help="days until it expires (default: config)")
    p.add_argument("--for", dest="owner", metavar="USER", help="an admin: for another user")
    p = tsub.add_parser("list", help="your tokens (an admin: --all)")
    p.add_argument("--all", action="store_true")
    tsub.add_parser("revoke", help="revoke a token").add_argument("token_id")


def run_people(db: Database, settings: IdentitySettings, args: argparse.Namespace,
               env: dict[str, str]) -> int:
    """Run ``users …`` or ``tokens …``; returns the exit code."""
    if args.command == "users" and args.users_command == "add" and args.admin:
        return _bootstrap(db, settings, args)
    signed = sign_in(db, settings, args, env)
    if args.command == "users":
        return _users(db, settings, args, signed.user)
    return _tokens(db, settings, args, signed.user)


def _new_password(user_id: str, settings: IdentitySettings) -> str:
    first = getpass.getpass(f"New password for {user_id}: ")
    check_new_password(first, user_id=user_id, min_length=settings.password_min_length)
    if getpass.getpass("The same again: ") != first:
        raise InvalidUser("the two passwords differ; nothing changed")
    return Passwords(settings.argon2).hash(first)


def _bootstrap(db: Database, settings: IdentitySettings, args: argparse.Namespace) -> int:
    with db.read() as conn:
        if count_users(conn):
            raise InvalidUser("there are users already: sign in as an admin to add one "
                              "(leave out --admin)")
    user_id = user_id_of(args.new_user)
    hashed = _new_password(user_id, settings)
    with db.write() as conn:
        user = add_user(conn, user_id, args.name, {"admin", *args.role}, password_hash=hashed,
                        by="bootstrap", now=now())
    print(f"{user.user_id}: added as the first admin ({', '.join(sorted(user.roles))})")
    return 0


def _users(db: Database, settings: IdentitySettings, args: argparse.Namespace,
           admin: User) -> int:
    action = args.users_command
    if action == "passwd" and args.target in (None, admin.user_id):
        hashed = _new_password(admin.user_id, settings)
        with db.write() as conn:
            set_password_hash(conn, admin.user_id, hashed, by=admin.user_id, now=now())
        print(f"{admin.user_id}: password changed")
        return 0
    require(admin.user_id, admin.roles, Permission.MANAGE_USERS)
    if action == "list":
        with db.read() as conn:
            for u in list_users(conn):
                state = "disabled" if u.disabled else "active"
                print(f"{u.user_id:20} {u.printed_name:28} {','.join(sorted(u.roles)) or '-':32}"
                      f" {u.source:6} {state}")
        return 0
    with db.write() as conn:
        if action == "add":
            uid = user_id_of(args.new_user)
            hashed = _new_password(uid, settings)
            add_user(conn, uid, args.name, args.role, password_hash=hashed, by=admin.user_id,
                     now=now())
        elif action in ("disable", "enable"):
            if args.target == admin.user_id and action == "disable":
                raise InvalidUser("an admin does not disable themself (ask another admin)")
            set_disabled(conn, args.target, action == "disable", by=admin.user_id, now=now())
        elif action == "roles":
            set_roles(conn, args.target, args.role, by=admin.user_id, now=now())
        else:  # passwd for another user
            hashed = _new_password(args.target, settings)
            set_password_hash(conn, args.target, hashed, by=admin.user_id, now=now())
    print(f"users {action}: done")
    return 0


def _tokens(db: Database, settings: IdentitySettings, args: argparse.Namespace,
            user: User) -> int:
    action = args.tokens_command
    is_admin = allows(user.roles, Permission.MANAGE_USERS)
    if action == "create":
        owner = args.owner or user.user_id
        if owner != user.user_id:
            require(user.user_id, user.roles, Permission.MANAGE_USERS)
        days = args.days or settings.token_days
        if not 1 <= days <= 366:
            raise InvalidUser("--days: a token lives 1 to 366 days")
        with db.write() as conn:
            token_id, text = create_token(conn, require_user(conn, owner).user_id, args.name,
                                          now=now(), days=days, by=user.user_id)
        print(f"token {token_id} for {owner}, {days} days. Shown once; keep it in a file only "
              f"its program can read:\n{text}")
        return 0
    if action == "list":
        if args.all:
            require(user.user_id, user.roles, Permission.MANAGE_USERS)
        with db.read() as conn:
            found = list_tokens(conn, None if args.all else user.user_id)
        moment = now()
        for t in found:
            print(f"{t.token_id}  {t.user_id:20} {t.name:24} {t.state(moment):8} expires "
                  f"{t.expires_at[:10]}  last used {(t.last_used_at or 'never')[:19]}")
        return 0
    with db.write() as conn:
        if token_owner(conn, args.token_id) != user.user_id and not is_admin:
            require(user.user_id, user.roles, Permission.MANAGE_USERS)
        revoke_token(conn, args.token_id, now=now(), by=user.user_id)
    print(f"token {args.token_id}: revoked")
    return 0
