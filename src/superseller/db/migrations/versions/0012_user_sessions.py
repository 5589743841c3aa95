"""user sessions, login failures, used OAuth states; user ids never reused

`users` is rebuilt on SQLite with AUTOINCREMENT (a deleted user's id was given to the next
user, and with it the deleted user's tokens); PostgreSQL's sequence never reuses an id.
A login token is now valid only while its `user_sessions` row exists.

Revision ID: 0012
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

from superseller.db.types import UTCDateTime

revision = "0012"
down_revision = "0009"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _sqlite() -> bool:
    return op.get_context().dialect.name == "sqlite"


def upgrade() -> None:
    # SQLite: the table is rebuilt with AUTOINCREMENT (its sqlite_sequence starts at the
    # highest id copied); PostgreSQL only gains the column.
    with op.batch_alter_table(
        "users",
        recreate="always" if _sqlite() else "auto",
        table_kwargs={"sqlite_autoincrement": True},
    ) as batch:
        batch.add_column(sa.Column("disabled_at", UTCDateTime(), nullable=True))
    op.create_table(
        "user_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_sessions")),
    )
    op.create_index("ix_user_sessions_user_id", "user_sessions", ["user_id"])
    op.create_index("ix_user_sessions_expires_at", "user_sessions", ["expires_at"])
    op.create_table(
        "login_failures",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("window_start", UTCDateTime(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_failures")),
    )
    op.create_index("ix_login_failures_window_start", "login_failures", ["window_start"])
    op.create_table(
        "oauth_states_used",
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_oauth_states_used")),
    )
    op.create_index("ix_oauth_states_used_expires_at", "oauth_states_used", ["expires_at"])


def downgrade() -> None:
    op.drop_table("oauth_states_used")
    op.drop_table("login_failures")
    op.drop_table("user_sessions")
    with op.batch_alter_table(
        "users",
        recreate="always" if _sqlite() else "auto",
        table_kwargs={"sqlite_autoincrement": False},
    ) as batch:
        batch.drop_column("disabled_at")
