"""facility definitions: templates, journeys, segments and campaigns belong to a facility or the group;
FHIR sources name the facility of the patients read from them; enrollments, care tasks and send
decisions name the facility they were made for

A definition with a `facility` is used by that facility's subtree; without one (every existing
definition), by the whole group, as before. Row-level security lets a caller limited to some facilities
read the group's, their facilities' and their ancestors' definitions, and write only their own.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from aftercare.facilities.policies import DEFINITION_TABLES, scope_definitions, unscope_definitions
from aftercare.facilities.records import RECORD_TABLES, create_record_facility, drop_record_facility

revision: str = "0009"
down_revision: str | None = "0008"
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
    for table in ("enrollments", *RECORD_TABLES):
        op.add_column(table, sa.Column("facility", sa.String(length=64), nullable=True))
        op.create_foreign_key(op.f(f"fk_{table}_facility_facilities"), table, "facilities", ["facility"], ["key"])
    # What exists was made for the patient's facility (an existing install's: `default`).
    primary = (
        "(SELECT pf.facility FROM patient_facilities pf WHERE pf.patient_id = {table}.patient_id "
        "ORDER BY pf.source = 'managing_organization' DESC, pf.added_at, pf.facility LIMIT 1)"
    )
    op.execute(f"UPDATE enrollments SET facility = {primary.format(table='enrollments')}")
    for table in RECORD_TABLES:
        op.execute(
            f"UPDATE {table} SET facility = coalesce((SELECT e.facility FROM enrollments e "
            f"WHERE e.id = {table}.enrollment_id), {primary.format(table=table)})"
        )
    op.add_column("audit_events", sa.Column("facility", sa.String(length=64), nullable=True))
    create_record_facility(op.execute)
    scope_definitions(op.execute)


def downgrade() -> None:
    unscope_definitions(op.execute)
    drop_record_facility(op.execute)
    op.drop_column("audit_events", "facility")
    for table in ("enrollments", *RECORD_TABLES):
        op.drop_constraint(op.f(f"fk_{table}_facility_facilities"), table, type_="foreignkey")
        op.drop_column(table, "facility")
    op.drop_constraint(op.f("fk_fhir_sources_facility_facilities"), "fhir_sources", type_="foreignkey")
    op.drop_column("fhir_sources", "facility")
    for table in DEFINITION_TABLES:
        op.drop_index(op.f(f"ix_{table}_facility"), table_name=table)
        op.drop_constraint(op.f(f"fk_{table}_facility_facilities"), table, type_="foreignkey")
        op.drop_column(table, "facility")
