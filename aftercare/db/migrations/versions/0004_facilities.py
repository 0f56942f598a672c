"""facilities: the group's tree, patients' facilities, keys per facility, row-level security

Existing installs get one default facility holding every patient; nothing changes for them until they
add a second. Row-level security applies only to the `aftercare_scoped` role, which a transaction of a
caller limited to some facilities takes (`aftercare/facilities/scope.py`); everyone else is unaffected.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from aftercare.facilities.policies import create_policies, drop_policies

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "facilities",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("parent", sa.String(length=64), nullable=True),
        sa.Column("organization", sa.String(length=200), nullable=True),
        sa.Column("location", sa.String(length=200), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("subdivision", sa.String(length=16), nullable=True),
        sa.Column("holidays", _JSON, server_default="[]", nullable=False),
        sa.Column("quiet_hours", sa.String(length=16), nullable=True),
        sa.Column("senders", _JSON, server_default="{}", nullable=False),
        sa.Column("help_phone", sa.String(length=32), nullable=True),
        sa.Column("default_language", sa.String(length=35), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["parent"], ["facilities.key"], name=op.f("fk_facilities_parent_facilities")),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_facilities")),
        sa.UniqueConstraint("organization", name=op.f("uq_facilities_organization")),
    )
    op.create_index(op.f("ix_facilities_parent"), "facilities", ["parent"])
    op.create_table(
        "patient_facilities",
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("facility", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["facility"], ["facilities.key"], name=op.f("fk_patient_facilities_facility_facilities")
        ),
        sa.PrimaryKeyConstraint("patient_id", "facility", name=op.f("pk_patient_facilities")),
    )
    op.create_index("ix_patient_facilities_facility", "patient_facilities", ["facility", "patient_id"])
    op.add_column(
        "api_keys", sa.Column("facilities", sa.ARRAY(sa.String(length=64)), server_default="{}", nullable=False)
    )
    op.add_column(
        "audit_events",
        sa.Column("actor_facilities", sa.ARRAY(sa.String(length=64)), server_default="{}", nullable=False),
    )
    op.add_column("messages", sa.Column("facility", sa.String(length=64), nullable=True))
    op.add_column("messages", sa.Column("sender", sa.String(length=320), nullable=True))
    op.execute("INSERT INTO facilities (key, name, timezone) VALUES ('default', 'Default facility', 'UTC')")
    op.execute(
        "INSERT INTO patient_facilities (patient_id, facility, source) "
        "SELECT id, 'default', 'default' FROM patients"
    )
    create_policies(op.execute)


def downgrade() -> None:
    drop_policies(op.execute)
    op.drop_column("messages", "sender")
    op.drop_column("messages", "facility")
    op.drop_column("api_keys", "facilities")
    op.drop_column("audit_events", "actor_facilities")
    op.drop_index("ix_patient_facilities_facility", table_name="patient_facilities")
    op.drop_table("patient_facilities")
    op.drop_index(op.f("ix_facilities_parent"), table_name="facilities")
    op.drop_table("facilities")
