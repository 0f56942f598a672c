"""patient pages: email headers of messages (List-Unsubscribe), Questionnaires, surveys and their
responses (scoped by facility)

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from aftercare.facilities.policies import scope_table, unscope_table

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _created() -> sa.Column:
    return sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False)


def upgrade() -> None:
    op.add_column("messages", sa.Column("headers", _JSON, nullable=True))
    op.create_table(
        "questionnaires",
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=True),
        sa.Column("resource", _JSON, nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        _created(),
        sa.PrimaryKeyConstraint("url", "version"),
    )
    op.create_table(
        "surveys",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("enrollment_id", sa.String(length=64), nullable=False),
        sa.Column("journey_key", sa.String(length=64), nullable=False),
        sa.Column("step_id", sa.String(length=64), nullable=False),
        sa.Column("questionnaire_url", sa.String(length=500), nullable=False),
        sa.Column("questionnaire_version", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="sent", nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        _created(),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_surveys_patient_id", "surveys", ["patient_id"])
    op.create_index("ix_surveys_questionnaire", "surveys", ["questionnaire_url", "created_at"])
    op.create_table(
        "questionnaire_responses",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("survey_id", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("resource", _JSON, nullable=False),
        sa.Column("answers", _JSON, nullable=False),
        _created(),
        sa.ForeignKeyConstraint(["survey_id"], ["surveys.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("survey_id"),
    )
    op.create_index("ix_questionnaire_responses_patient_id", "questionnaire_responses", ["patient_id"])
    scope_table(op.execute, "surveys", "patient_id")
    scope_table(op.execute, "questionnaire_responses", "patient_id")


def downgrade() -> None:
    unscope_table(op.execute, "questionnaire_responses")
    unscope_table(op.execute, "surveys")
    op.drop_table("questionnaire_responses")
    op.drop_table("surveys")
    op.drop_table("questionnaires")
    op.drop_column("messages", "headers")
