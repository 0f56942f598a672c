"""risk and tcm: readmission risk scores per discharge, Transitional Care Management episodes

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from aftercare.facilities.policies import TCM_AUDIT_CASE, rescope_audit, scope_table, unscope_table

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "risk_scores",
        sa.Column("encounter_id", sa.String(length=64), nullable=False),
        sa.Column("score", sa.String(length=16), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.Column("components", _JSON, nullable=False),
        sa.Column("algorithm", sa.String(length=64), nullable=False),
        sa.Column("discharged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("encounter_id", "score", name=op.f("pk_risk_scores")),
    )
    op.create_index(
        "ix_risk_scores_patient_discharged", "risk_scores", ["patient_id", "discharged_at"], unique=False
    )
    op.create_table(
        "tcm_episodes",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("encounter_id", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("facility", sa.String(length=64), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("discharged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("contact_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("visit_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("complexity", sa.String(length=16), nullable=False),
        sa.Column("complexity_source", sa.String(length=16), server_default="risk", nullable=False),
        sa.Column("risk_band", sa.String(length=16), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="open", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tcm_episodes")),
        sa.UniqueConstraint("encounter_id", name=op.f("uq_tcm_episodes_encounter_id")),
    )
    op.create_index("ix_tcm_episodes_status_contact_due", "tcm_episodes", ["status", "contact_due_at"])
    op.create_index("ix_tcm_episodes_patient_id", "tcm_episodes", ["patient_id"])
    op.create_index("ix_tcm_episodes_discharged_at", "tcm_episodes", ["discharged_at"])
    scope_table(op.execute, "risk_scores", "patient_id")
    scope_table(op.execute, "tcm_episodes", "patient_id")
    rescope_audit(op.execute, TCM_AUDIT_CASE)


def downgrade() -> None:
    rescope_audit(op.execute)
    unscope_table(op.execute, "tcm_episodes")
    unscope_table(op.execute, "risk_scores")
    op.drop_table("tcm_episodes")
    op.drop_table("risk_scores")
