"""console: sessions shared by every process, care task assignees, a trigram index for name search

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME_TRGM_INDEX = "ix_patients_name_trgm"


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=True),
        sa.Column("roles", sa.ARRAY(sa.String(length=32)), nullable=False),
        sa.Column("scopes", sa.ARRAY(sa.String(length=64)), server_default="{}", nullable=False),
        sa.Column("facilities", sa.ARRAY(sa.String(length=64)), server_default="{}", nullable=False),
        sa.Column("csrf", sa.String(length=64), nullable=False),
        sa.Column("idle_seconds", sa.Integer(), nullable=False),
        sa.Column("credential_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_console_sessions")),
    )
    op.create_index(op.f("ix_console_sessions_last_seen_at"), "console_sessions", ["last_seen_at"])
    op.add_column("tasks", sa.Column("assignee", sa.String(length=200), nullable=True))
    op.add_column("tasks", sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_tasks_assignee_status", "tasks", ["assignee", "status"])
    # Patient name search (`aftercare/store/patient_search.py`) matches words anywhere in the name:
    # `LIKE '% word%'` needs trigrams. pg_trgm is a trusted extension: the database owner may create it.
    # A server without the extension (an embedded one built without contrib) searches without the index.
    available = op.get_bind().execute(
        sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
    ).scalar()
    if available:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(
            f"CREATE INDEX {NAME_TRGM_INDEX} ON patients USING gin (lower(coalesce(name, '')) gin_trgm_ops)"
        )


def downgrade() -> None:
    op.execute(f"DROP INDEX IF EXISTS {NAME_TRGM_INDEX}")
    op.drop_index("ix_tasks_assignee_status", table_name="tasks")
    op.drop_column("tasks", "assigned_at")
    op.drop_column("tasks", "assignee")
    op.drop_index(op.f("ix_console_sessions_last_seen_at"), table_name="console_sessions")
    op.drop_table("console_sessions")
