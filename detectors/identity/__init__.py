"""Identity: users and roles, passwords, API tokens, browser sessions, lockout, the site's
directory (LDAP), and the re-entry of a password that an electronic signature needs.

Nobody acts on a record without being who they say: the records service decides who a
request is from once (`identify`: an API token or a session cookie, never the body), the CLI
asks for a password or a token, and the workflow checks the actor against the users table
again in the command's own transaction.

Public surface::

    from detectors.identity import Authenticator, IdentitySettings
    auth = Authenticator(IdentitySettings())           # + LDAP when settings.ldap is set
    user = auth.sign_in(db, "qa.lee", password, source="127.0.0.1", now=now).result()
    proof = auth.reauthenticate(db, user.user_id, password, source="cli", now=now)
    store.execute(Sign(record_id=rid, reason="plan approved",
                       signature=SignatureRequest(Role.QUALITY, "plan approved", proof)),
                  actor=user.actor(), now=now)

Users, tokens and sessions live in the records database (tables of revision 0004); the
functions in `users`, `tokens` and `sessions` run inside the caller's transaction
(``with db.write() as conn``). Every sign-in, failure, lockout and change to a user or a
token is in the security log (`events`), with user-typed text escaped (`loggable`).

Errors: see `detectors.identity._exceptions` (all derive from `IdentityError`).
"""

from detectors.identity._exceptions import (
    DirectoryUnavailable,
    IdentityConfigError,
    IdentityError,
    InvalidUser,
    NoSuchUser,
    SignInRefused,
    UserExists,
    WeakPassword,
)
from detectors.identity.config import Argon2Settings, IdentitySettings, LdapSettings
from detectors.identity.events import SecurityEvent, read_events, record_event
from detectors.identity.ldap import DirectoryUser, LdapDirectory
from detectors.identity.passwords import Passwords, check_new_password
from detectors.identity.policy import SESSION, TOKEN, Identity, IdentityCheck, identify
from detectors.identity.sessions import COOKIE, end_session, start_session
from detectors.identity.signin import Authenticator, Outcome, reauthentication
from detectors.identity.text import loggable
from detectors.identity.tokens import (
    TokenInfo,
    check_token,
    create_token,
    list_tokens,
    revoke_token,
    token_owner,
)
from detectors.identity.users import (
    LDAP,
    LOCAL,
    User,
    add_user,
    count_users,
    get_user,
    list_users,
    require_user,
    roles_of,
    set_disabled,
    set_password_hash,
    set_roles,
    user_id_of,
)

__all__ = [
    "COOKIE",
    "LDAP",
    "LOCAL",
    "SESSION",
    "TOKEN",
    "Argon2Settings",
    "Authenticator",
    "DirectoryUnavailable",
    "DirectoryUser",
    "Identity",
    "IdentityCheck",
    "IdentityConfigError",
    "IdentityError",
    "IdentitySettings",
    "InvalidUser",
    "LdapDirectory",
    "LdapSettings",
    "NoSuchUser",
    "Outcome",
    "Passwords",
    "SecurityEvent",
    "SignInRefused",
    "TokenInfo",
    "User",
    "UserExists",
    "WeakPassword",
    "add_user",
    "check_new_password",
    "check_token",
    "count_users",
    "create_token",
    "end_session",
    "get_user",
    "identify",
    "list_tokens",
    "list_users",
    "loggable",
    "read_events",
    "reauthentication",
    "record_event",
    "require_user",
    "revoke_token",
    "roles_of",
    "set_disabled",
    "set_password_hash",
    "set_roles",
    "start_session",
    "token_owner",
    "user_id_of",
]
