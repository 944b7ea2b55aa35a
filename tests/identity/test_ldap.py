"""Sign-in against the site's directory: a real slapd on loopback, bound as the user, groups
mapped to roles, added and refreshed in the users table, used for a signature too."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ldap3 import MODIFY_REPLACE, Connection, Server

from detectors.identity import (
    Argon2Settings,
    Authenticator,
    DirectoryUnavailable,
    IdentitySettings,
    LdapDirectory,
    LdapSettings,
    SignInRefused,
    get_user,
    read_events,
)
from detectors.records import RecordStore
from tests.identity.slapd import (
    BASE,
    GROUP_ROLES,
    PASSWORDS,
    ROOT_DN,
    ROOT_PW,
    SEARCH_DN,
    SEARCH_PW,
    Slapd,
    person,
)

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CHEAP = Argon2Settings(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    with Slapd(tmp_path_factory.mktemp("slapd")) as running:
        yield running


def settings_for(slapd: Slapd, **ldap: object) -> IdentitySettings:
    base = {"url": slapd.url, "user_dn": f"uid={{username}},ou=people,{BASE}",
            "group_base": f"ou=groups,{BASE}", "group_roles": GROUP_ROLES}
    return IdentitySettings(argon2=CHEAP, lockout_after=3,
                            ldap=LdapSettings.model_validate({**base, **ldap}))


def test_bind_as_the_user_and_map_groups_to_roles(slapd: Slapd) -> None:
    directory = LdapDirectory(settings_for(slapd).ldap)  # type: ignore[arg-type]
    found = directory.authenticate("qa.lee", PASSWORDS["qa.lee"])
    assert found is not None
    assert (found.dn, found.printed_name, found.roles) == (
        person("qa.lee"), "Quinn Lee", frozenset({"quality", "approver"}))
    assert directory.authenticate("qa.lee", "wrong") is None
    assert directory.authenticate("qa.lee", "") is None  # not an anonymous bind
    assert directory.authenticate("nobody", "x") is None
    no_role = directory.authenticate("no.role", PASSWORDS["no.role"])
    assert no_role is not None and no_role.roles == frozenset()


def test_search_then_bind_with_a_service_account(slapd: Slapd, tmp_path: Path) -> None:
    secret = tmp_path / "search.password"
    secret.write_text(SEARCH_PW + "\n")
    ldap = settings_for(slapd, user_dn=None, search_base=f"ou=people,{BASE}",
                        search_filter="(uid={username})", bind_dn=SEARCH_DN,
                        bind_password_file=str(secret)).ldap
    assert ldap is not None
    found = LdapDirectory(ldap).authenticate("soc.kim", PASSWORDS["soc.kim"])
    assert found is not None and found.roles == frozenset({"security", "approver"})
    assert LdapDirectory(ldap).authenticate("soc.kim)(uid=*", "x") is None


def test_directory_users_sign_in_are_added_refreshed_and_can_sign(
    slapd: Slapd, empty_store: RecordStore,
) -> None:
    auth = Authenticator(settings_for(slapd))
    db = empty_store.database
    user = auth.sign_in(db, "QA.Lee", PASSWORDS["qa.lee"], source="10.0.0.7", now=NOW).result()
    assert (user.user_id, user.source, user.roles) == ("qa.lee", "ldap",
                                                       frozenset({"quality", "approver"}))
    proof = auth.reauthenticate(db, "qa.lee", PASSWORDS["qa.lee"], source="cli", now=NOW)
    assert (proof.user_id, proof.printed_name, proof.method) == ("qa.lee", "Quinn Lee", "ldap")
    admin = Connection(Server(slapd.url), user=ROOT_DN, password=ROOT_PW, auto_bind=True)
    group = next(dn for dn in GROUP_ROLES if dn.startswith("cn=qa-approvers"))
    # groupOfNames needs a member: leave the service account in it
    assert admin.modify(group, {"member": [(MODIFY_REPLACE, [SEARCH_DN])]}), admin.result
    admin.unbind()
    with pytest.raises(SignInRefused):  # no group left: no otwatch role
        auth.sign_in(db, "qa.lee", PASSWORDS["qa.lee"], source="10.0.0.7",
                     now=NOW + timedelta(minutes=1)).result()
    with db.read() as conn:
        details = [(e.event, e.detail) for e in read_events(conn, username="qa.lee")]
        assert get_user(conn, "qa.lee") is not None
    assert ("sign_in_refused", "the directory groups map to no otwatch role") in details
    assert ("sign_in", "ldap") in details and ("signature_reauthenticated", "ldap") in details


def test_wrong_directory_passwords_count_toward_the_lock(
    slapd: Slapd, empty_store: RecordStore,
) -> None:
    auth = Authenticator(settings_for(slapd))
    for _ in range(3):
        outcome = auth.sign_in(empty_store.database, "soc.kim", "guess", source="10.0.0.9",
                               now=NOW)
        assert outcome.refusal is not None
    locked = auth.sign_in(empty_store.database, "soc.kim", PASSWORDS["soc.kim"],
                          source="10.0.0.9", now=NOW)
    assert locked.refusal is not None and locked.refusal.locked_until is not None


def test_a_directory_that_does_not_answer_is_said_so(empty_store: RecordStore) -> None:
    from simulators.broker import free_port

    settings = IdentitySettings(argon2=CHEAP, ldap=LdapSettings(
        url=f"ldap://127.0.0.1:{free_port()}", user_dn="uid={username},ou=people",
        group_base="ou=groups", group_roles={"cn=x": ["viewer"]}, timeout_s=2))
    with pytest.raises(DirectoryUnavailable, match="did not answer"):
        Authenticator(settings).sign_in(empty_store.database, "qa.lee", "x", source="t",
                                        now=NOW)


def test_ldap_settings_name_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="exactly one of user_dn"):
        LdapSettings(url="ldap://x", group_base="g", group_roles={"cn=g": ["viewer"]})
    with pytest.raises(ValueError, match="ldaps://"):
        LdapSettings(url="http://x", user_dn="uid={username}", group_base="g",
                     group_roles={"cn=g": ["viewer"]})
    with pytest.raises(ValueError, match="must contain"):
        LdapSettings(url="ldap://x", user_dn="uid=fixed", group_base="g",
                     group_roles={"cn=g": ["viewer"]})
