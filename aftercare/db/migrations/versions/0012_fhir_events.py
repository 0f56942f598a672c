"""event effects: the outbox of what a committed event change still owes Temporal; message attachments

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from aftercare.facilities.policies import scope_table, unscope_table

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event_effects",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("event_key", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "next_attempt_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_effects")),
    )
    op.create_index("ix_event_effects_due", "event_effects", ["next_attempt_at"])
    op.create_index("ix_event_effects_patient_id", "event_effects", ["patient_id"])
    # A caller limited to some facilities writes and sees the effects of their patients only.
    scope_table(op.execute, "event_effects", "patient_id")
    # The files an email carries (an event's calendar invite and check-in QR code).
    op.add_column(
        "messages",
        sa.Column("attachments", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("messages", "attachments")
    unscope_table(op.execute, "event_effects")
    op.drop_table("event_effects")
