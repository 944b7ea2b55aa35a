"""Identity settings: sessions, lockout, tokens, password hashing and the optional LDAP
directory. Part of the records service's config (`detectors.web.config`), and read by
``otwatch-records --config``; every key has a default but the directory's.

Example (YAML, under ``identity:``)::

    idle_timeout_s: 900          # a browser session ends after 15 minutes without a request
    lockout_after: 5             # failed sign-ins in a row that lock the name ...
    lockout_s: 900               # ... for 15 minutes
    ldap:
      url: ldaps://dc1.plant.example
      user_dn: "uid={username},ou=people,dc=plant,dc=example"
      group_base: "ou=groups,dc=plant,dc=example"
      group_roles:
        "cn=otwatch-quality,ou=groups,dc=plant,dc=example": [quality]
"""

from __future__ import annotations

from pathlib import Path

from argon2 import DEFAULT_MEMORY_COST, DEFAULT_PARALLELISM, DEFAULT_TIME_COST
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from detectors.records.models import Role


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Argon2Settings(_Strict):
    """argon2id cost; the defaults are argon2-cffi's (about 0.1 s a hash on a server core).
    Tests lower them; production should not."""

    #: argon2id iterations.
    time_cost: int = Field(default=DEFAULT_TIME_COST, ge=1)
    memory_cost: int = Field(default=DEFAULT_MEMORY_COST, ge=8, description="KiB")
    #: argon2id lanes.
    parallelism: int = Field(default=DEFAULT_PARALLELISM, ge=1)


class LdapSettings(_Strict):
    """Sign-in against the site's directory: bind as the user, then map the groups
    (``groupOfNames`` whose ``member`` is the user) to roles.

    Name the user's entry either by ``user_dn`` (a template with ``{username}``) or by a
    search (``search_base`` + ``search_filter``, as ``bind_dn`` when the directory does
    not allow anonymous search; its password is read from ``bind_password_file``).
    """

    #: The directory, ``ldap://HOST[:PORT]`` or ``ldaps://HOST[:PORT]``.
    url: str
    #: Upgrade an ldap:// connection with StartTLS.
    start_tls: bool = False
    #: CA certificate (PEM) of the directory's certificate.
    ca_file: Path | None = None
    #: DN template of a user's entry with ``{username}`` (or use search_base).
    user_dn: str | None = None
    #: Where to search for the user's entry.
    search_base: str | None = None
    #: The search filter, with ``{username}``.
    search_filter: str = "(uid={username})"
    #: DN to search as, when the directory allows no anonymous search.
    bind_dn: str | None = None
    #: File holding that DN's password.
    bind_password_file: Path | None = None
    #: Where the groupOfNames entries live.
    group_base: str
    #: Group cn to the otwatch roles its members get.
    group_roles: dict[str, list[Role]] = Field(min_length=1)
    #: Attribute with the user's printed name (for signatures).
    printed_name_attribute: str = "displayName"
    #: How long a directory request may take.
    timeout_s: float = Field(default=5.0, gt=0, le=60)

    @field_validator("url")
    @classmethod
    def _scheme(cls, url: str) -> str:
        if not url.startswith(("ldap://", "ldaps://")):
            raise ValueError(f"{url!r}: use ldap://HOST[:PORT] or ldaps://HOST[:PORT]")
        return url

    @model_validator(mode="after")
    def _one_way_to_the_entry(self) -> LdapSettings:
        if (self.user_dn is None) == (self.search_base is None):
            raise ValueError("set exactly one of user_dn (a DN template with {username}) "
                             "and search_base (search, then bind)")
        for name in ("user_dn", "search_filter"):
            value = getattr(self, name)
            if value is not None and (name == "user_dn" or self.search_base) \
                    and "{username}" not in value:
                raise ValueError(f"{name} {value!r} must contain {{username}}")
        return self


class IdentitySettings(_Strict):
    """Sessions, lockout, API tokens, passwords, and the directory (optional)."""

    #: A browser session ends after this long without a request (Annex 11 §12).
    idle_timeout_s: int = Field(default=900, ge=1, le=86_400)
    #: ... and after this long in any case.
    session_max_s: int = Field(default=12 * 3600, ge=60, le=7 * 86_400)
    #: Failed sign-ins in a row (per name typed) that lock the name ...
    lockout_after: int = Field(default=5, ge=1, le=100)
    #: ... for this long.
    lockout_s: int = Field(default=900, ge=1, le=86_400)
    #: An API token's life unless ``--days`` says otherwise (and never more than a year).
    token_days: int = Field(default=90, ge=1, le=366)
    #: Shortest local password accepted.
    password_min_length: int = Field(default=12, ge=8, le=128)
    argon2: Argon2Settings = Field(default_factory=Argon2Settings)
    ldap: LdapSettings | None = None
