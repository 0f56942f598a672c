"""facility definitions: templates, journeys, segments and campaigns belong to a facility or the group;
FHIR sources name the facility of the patients read from them

A definition with a `facility` is used by that facility's subtree; without one (every existing
definition), by the whole group, as before. Row-level security lets a caller limited to some facilities
read the group's, their facilities' and their ancestors' definitions, and write only their own.

Revision ID: 0011
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from aftercare.facilities.policies import DEFINITION_TABLES, scope_definitions, unscope_definitions

revision: str = "0011"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in DEFINITION_TABLES:
        op.add_column(table, sa.Column("facility", sa.String(length=64), nullable=True))
        op.create_foreign_key(
            op.f(f"fk_{table}_facility_facilities"), table, "facilities", ["facility"], ["key"]
        )
        op.create_index(op.f(f"ix_{table}_facility"), table, ["facility"])
    op.add_column("fhir_sources", sa.Column("facility", sa.String(length=64), nullable=True))
    op.create_foreign_key(
        op.f("fk_fhir_sources_facility_facilities"), "fhir_sources", "facilities", ["facility"], ["key"]
    )
    scope_definitions(op.execute)


def downgrade() -> None:
    unscope_definitions(op.execute)
    op.drop_constraint(op.f("fk_fhir_sources_facility_facilities"), "fhir_sources", type_="foreignkey")
    op.drop_column("fhir_sources", "facility")
    for table in DEFINITION_TABLES:
        op.drop_index(op.f(f"ix_{table}_facility"), table_name=table)
        op.drop_constraint(op.f(f"fk_{table}_facility_facilities"), table, type_="foreignkey")
        op.drop_column(table, "facility")
