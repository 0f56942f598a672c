"""events: events, their sessions (seats guarded by a constraint) and registrations

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from aftercare.facilities.policies import scope_table, unscope_table

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("kind", sa.String(length=16), server_default="in_person", nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("venue", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column(
            "languages",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            server_default="[]",
            nullable=False,
        ),
        sa.Column("eligibility_segment", sa.String(length=64), nullable=True),
        sa.Column("organiser_team", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="draft", nullable=False),
        sa.Column("sequence", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_events")),
    )
    op.create_table(
        "event_sessions",
        sa.Column("event_key", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("room", sa.String(length=200), nullable=True),
        sa.Column("online_url", sa.String(length=500), nullable=True),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("seats_taken", sa.Integer(), server_default="0", nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "seats_taken >= 0 AND seats_taken <= capacity",
            name=op.f("ck_event_sessions_seats_within_capacity"),
        ),
        sa.CheckConstraint("end_at > start_at", name=op.f("ck_event_sessions_ends_after_start")),
        sa.ForeignKeyConstraint(
            ["event_key"], ["events.key"], name=op.f("fk_event_sessions_event_key_events"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("event_key", "id", name=op.f("pk_event_sessions")),
    )
    op.create_table(
        "event_registrations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("event_key", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("companions", sa.Integer(), server_default="0", nullable=False),
        sa.Column("source", sa.String(length=16), server_default="staff", nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("offers", sa.Integer(), server_default="0", nullable=False),
        sa.Column("offer_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("checked_in_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_reason", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("companions >= 0", name=op.f("ck_event_registrations_companions_not_negative")),
        sa.ForeignKeyConstraint(
            ["event_key", "session_id"],
            ["event_sessions.event_key", "event_sessions.id"],
            name=op.f("fk_event_registrations_event_key_event_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_registrations")),
    )
    op.create_index(
        "uq_event_registrations_live",
        "event_registrations",
        ["event_key", "session_id", "patient_id"],
        unique=True,
        postgresql_where=sa.text("status <> 'cancelled'"),
    )
    op.create_index(
        "ix_event_registrations_queue", "event_registrations", ["event_key", "session_id", "status", "seq"]
    )
    op.create_index("ix_event_registrations_patient_id", "event_registrations", ["patient_id"])
    # A caller limited to some facilities sees the registrations of their patients only.
    scope_table(op.execute, "event_registrations", "patient_id")


def downgrade() -> None:
    unscope_table(op.execute, "event_registrations")
    op.drop_table("event_registrations")
    op.drop_table("event_sessions")
    op.drop_table("events")
