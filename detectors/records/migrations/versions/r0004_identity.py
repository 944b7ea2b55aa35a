"""Identity: users, API tokens, browser sessions, lockouts and the security log; signatures
name their signer's user id, the step they approve and the trail entry that binds them.

Signatures made before this revision keep an empty ``user_id`` and ``step`` (they were given
by printed name only); the trail is not touched, so its hashes still recompute.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _signatures() -> None:
    with op.batch_alter_table("signatures") as batch:
        batch.add_column(sa.Column("user_id", sa.Text, nullable=False, server_default=""))
        batch.add_column(sa.Column("step", sa.Text, nullable=False, server_default=""))
        batch.add_column(sa.Column("trail_seq", BIG))


def _users() -> None:
    op.create_table(
        "users",
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("printed_name", sa.Text, nullable=False),
        sa.Column("roles", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("password_hash", sa.Text),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Text, nullable=False),
    )


def _tokens_and_sessions() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("token_id", sa.Text, primary_key=True),
        sa.Column("user_id", sa.Text, sa.ForeignKey("users.user_id"), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("secret_sha256", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("expires_at", sa.Text, nullable=False),
        sa.Column("revoked_at", sa.Text),
        sa.Column("last_used_at", sa.Text),
    )
    op.create_index("api_tokens_by_user", "api_tokens", ["user_id"])
    op.create_table(
        "sessions",
        sa.Column("session_sha256", sa.Text, primary_key=True),
        sa.Column("user_id", sa.Text, sa.ForeignKey("users.user_id"), nullable=False),
        sa.Column("csrf_token", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("last_seen_at", sa.Text, nullable=False),
        sa.Column("ended_at", sa.Text),
        sa.Column("ended_why", sa.Text),
    )
    op.create_index("sessions_by_user", "sessions", ["user_id"])


def _lockouts_and_log() -> None:
    op.create_table(
        "lockouts",
        sa.Column("username", sa.Text, primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_failure_at", sa.Text, nullable=False),
        sa.Column("locked_until", sa.Text),
    )
    op.create_table(
        "security_log",
        sa.Column("seq", BIG, primary_key=True, autoincrement=True),
        *(sa.Column(name, sa.Text, nullable=False)
          for name in ("at", "event", "username", "source", "actor", "detail")),
    )
    op.create_index("security_log_by_user", "security_log", ["username", "at"])


def upgrade() -> None:
    _signatures()
    _users()
    _tokens_and_sessions()
    _lockouts_and_log()


def downgrade() -> None:
    raise NotImplementedError("the records schema is not downgraded; restore a backup instead")
