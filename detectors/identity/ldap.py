"""Sign-in against the site's directory (LDAP, e.g. Active Directory), with ``ldap3``.

The user's entry is named by a DN template or found by a search; the password is checked by
binding as that entry (otwatch never sees the directory's hashes); the roles are those that
``group_roles`` maps the user's groups to (``groupOfNames`` entries under ``group_base`` whose
``member`` is the user). StartTLS or ldaps:// protect the password on the wire.

Example::

    >>> directory = LdapDirectory(settings.ldap)
    >>> directory.authenticate("qa.lee", "their password")
    DirectoryUser(user_id='qa.lee', dn='uid=qa.lee,ou=people,…', printed_name='Quinn Lee',
                  roles=frozenset({'quality', 'approver'}))
"""

from __future__ import annotations

import math
import ssl
from dataclasses import dataclass
from pathlib import Path

from ldap3 import BASE, NONE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

from detectors.identity._exceptions import DirectoryUnavailable, IdentityConfigError
from detectors.identity.config import LdapSettings


@dataclass(frozen=True)
class DirectoryUser:
    """Who the directory says signed in, and the otwatch roles their groups give."""

    user_id: str
    dn: str
    printed_name: str
    roles: frozenset[str]


class LdapDirectory:
    """Checks passwords by binding; one short connection per sign-in."""

    def __init__(self, settings: LdapSettings) -> None:
        self.settings = settings
        self._roles = {dn.lower(): frozenset(r.value for r in roles)
                       for dn, roles in settings.group_roles.items()}
        tls = None
        if settings.ca_file is not None:
            tls = Tls(ca_certs_file=str(settings.ca_file), validate=ssl.CERT_REQUIRED)
        # ldap3 packs its socket timeouts as whole seconds.
        self._timeout = max(1, math.ceil(settings.timeout_s))
        self._server = Server(settings.url, use_ssl=settings.url.startswith("ldaps://"),
                              tls=tls, get_info=NONE, connect_timeout=self._timeout)

    def authenticate(self, user_id: str, password: str) -> DirectoryUser | None:
        """The directory user for these credentials, or None when the directory says no.
        An empty password is refused here: LDAP would take it as an anonymous bind."""
        if not password:
            return None
        try:
            dn = self._entry_of(user_id)
            if dn is None:
                return None
            conn = self._connection(dn, password)
            try:
                if not conn.bind():
                    return None
                return DirectoryUser(user_id, dn, self._printed_name(conn, dn, user_id),
                                     self._group_roles(conn, dn))
            finally:
                conn.unbind()
        except LDAPException as exc:
            raise DirectoryUnavailable(
                f"the directory at {self.settings.url} did not answer ({exc}); try again, or "
                "check identity.ldap in the service's config") from exc

    def _connection(self, user: str | None, password: str | None) -> Connection:
        conn = Connection(self._server, user=user, password=password, read_only=True,
                          receive_timeout=self._timeout, raise_exceptions=False)
        conn.open()
        if self.settings.start_tls and not conn.start_tls():
            raise DirectoryUnavailable(f"StartTLS with {self.settings.url} failed: "
                                       f"{conn.result}")
        return conn

    def _entry_of(self, user_id: str) -> str | None:
        s = self.settings
        if s.user_dn is not None:
            return s.user_dn.format(username=escape_rdn(user_id))
        assert s.search_base is not None  # the settings say one of the two
        conn = self._connection(s.bind_dn, _secret(s.bind_password_file))
        try:
            if s.bind_dn is not None and not conn.bind():
                raise DirectoryUnavailable(
                    f"the directory refused the search account {s.bind_dn!r}; check "
                    "identity.ldap.bind_dn and bind_password_file")
            query = s.search_filter.format(username=escape_filter_chars(user_id))
            conn.search(s.search_base, query, SUBTREE, attributes=[], size_limit=2)
            found = [entry.entry_dn for entry in conn.entries]
            return found[0] if len(found) == 1 else None
        finally:
            conn.unbind()

    def _printed_name(self, conn: Connection, dn: str, fallback: str) -> str:
        attribute = self.settings.printed_name_attribute
        conn.search(dn, "(objectClass=*)", BASE, attributes=[attribute, "cn"])
        for entry in conn.entries:
            for name in (attribute, "cn"):
                if name in entry and entry[name].value:
                    value = entry[name].value
                    return str(value[0] if isinstance(value, list) else value)
        return fallback

    def _group_roles(self, conn: Connection, dn: str) -> frozenset[str]:
        query = f"(&(objectClass=groupOfNames)(member={escape_filter_chars(dn)}))"
        conn.search(self.settings.group_base, query, SUBTREE, attributes=[])
        roles: set[str] = set()
        for entry in conn.entries:
            roles |= self._roles.get(entry.entry_dn.lower(), frozenset())
        return frozenset(roles)


def _secret(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise IdentityConfigError(f"identity.ldap.bind_password_file {str(path)!r}: cannot "
                                  f"read it ({exc})") from None
