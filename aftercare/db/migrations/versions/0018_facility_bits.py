"""facility bits: each facility an ordinal, each patient row a bit per facility it is placed in

A scoped caller's segment statement filtered `patients` by a semi-join on `patient_facilities` (a
probe per member, or a hash of every placement in reach). Each facility now gets a small integer
`ordinal` (from a sequence, never reused or changed), and each patient row keeps `facility_bits`: bit
`ordinal` set for each facility it is placed in whose ordinal is below 63. The filter becomes
`facility_bits & :mask <> 0`, an int8 AND on the row the scan already reads; facilities with an
ordinal of 63 or more keep the semi-join (`aftercare/store/facilities.py`, `FacilityReach`).

The bits are kept by PostgreSQL, so every writer keeps them right: statement triggers on
`patient_facilities` (insert, update, delete; with transition tables, so a bulk placement is one
`UPDATE` of the patients it touched) recompute the bits of the patients whose placements changed, and
a trigger on `patients` computes them for a new row and whenever a write changes them (a profile
upsert that would set them from an incoming row). The functions are `SECURITY DEFINER`: a scoped
caller's write computes the bits from every placement, not only the ones its policies show it.
Existing rows are backfilled here.

Revision ID: 0018
Revises: 0015
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Bits 0 to 62: the mask is a signed bigint, and bit 63 would make it negative.
BITS = 63

_FUNCTIONS = f"""
CREATE FUNCTION facility_bits_of(patient text) RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
    SELECT coalesce(bit_or(1::bigint << f.ordinal), 0)
    FROM patient_facilities pf JOIN facilities f ON f.key = pf.facility
    WHERE pf.patient_id = patient AND f.ordinal < {BITS}
$$;

CREATE FUNCTION patients_facility_bits() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    NEW.facility_bits := facility_bits_of(NEW.id);
    RETURN NEW;
END $$;

CREATE FUNCTION patient_facilities_bits() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE patients p SET facility_bits = facility_bits_of(p.id)
        WHERE p.id IN (SELECT patient_id FROM added);
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE patients p SET facility_bits = facility_bits_of(p.id)
        WHERE p.id IN (SELECT patient_id FROM removed);
    ELSE
        UPDATE patients p SET facility_bits = facility_bits_of(p.id)
        WHERE p.id IN (SELECT patient_id FROM removed UNION SELECT patient_id FROM added);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION facilities_ordinal_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a facility''s ordinal never changes (patients.facility_bits are keyed on it)';
END $$;
"""

# pg_trigger_depth() = 0: the placement triggers' own UPDATE (depth 1) has computed the bits already.
_TRIGGERS = """
CREATE TRIGGER patients_facility_bits_insert BEFORE INSERT ON patients
    FOR EACH ROW EXECUTE FUNCTION patients_facility_bits();
CREATE TRIGGER patients_facility_bits_update BEFORE UPDATE ON patients FOR EACH ROW
    WHEN (NEW.facility_bits IS DISTINCT FROM OLD.facility_bits AND pg_trigger_depth() = 0)
    EXECUTE FUNCTION patients_facility_bits();
CREATE TRIGGER patient_facilities_bits_insert AFTER INSERT ON patient_facilities
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION patient_facilities_bits();
CREATE TRIGGER patient_facilities_bits_delete AFTER DELETE ON patient_facilities
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION patient_facilities_bits();
CREATE TRIGGER patient_facilities_bits_update AFTER UPDATE ON patient_facilities
    REFERENCING OLD TABLE AS removed NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION patient_facilities_bits();
CREATE TRIGGER facilities_ordinal_fixed BEFORE UPDATE OF ordinal ON facilities FOR EACH ROW
    WHEN (NEW.ordinal IS DISTINCT FROM OLD.ordinal) EXECUTE FUNCTION facilities_ordinal_fixed();
"""


def upgrade() -> None:
    op.execute("CREATE SEQUENCE facility_ordinals AS integer MINVALUE 0 START 0")
    op.add_column("facilities", sa.Column("ordinal", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE facilities f SET ordinal = o.n FROM (SELECT key, row_number() OVER "
        "(ORDER BY created_at, key) - 1 AS n FROM facilities) o WHERE o.key = f.key"
    )
    op.execute("SELECT setval('facility_ordinals', (SELECT count(*) FROM facilities), false)")
    op.execute("ALTER SEQUENCE facility_ordinals OWNED BY facilities.ordinal")
    op.alter_column(
        "facilities", "ordinal", nullable=False, server_default=sa.text("nextval('facility_ordinals')")
    )
    op.create_unique_constraint(op.f("uq_facilities_ordinal"), "facilities", ["ordinal"])
    op.add_column(
        "patients", sa.Column("facility_bits", sa.BigInteger(), server_default="0", nullable=False)
    )
    op.execute(_FUNCTIONS)
    op.execute(
        "UPDATE patients p SET facility_bits = b.bits FROM (SELECT pf.patient_id, "
        f"bit_or(1::bigint << f.ordinal) AS bits FROM patient_facilities pf JOIN facilities f "
        f"ON f.key = pf.facility WHERE f.ordinal < {BITS} GROUP BY pf.patient_id) b WHERE b.patient_id = p.id"
    )
    op.execute(_TRIGGERS)


def downgrade() -> None:
    for trigger, table in (
        ("patients_facility_bits_insert", "patients"),
        ("patients_facility_bits_update", "patients"),
        ("patient_facilities_bits_insert", "patient_facilities"),
        ("patient_facilities_bits_delete", "patient_facilities"),
        ("patient_facilities_bits_update", "patient_facilities"),
        ("facilities_ordinal_fixed", "facilities"),
    ):
        op.execute(f"DROP TRIGGER {trigger} ON {table}")
    for function in (
        "facilities_ordinal_fixed()",
        "patient_facilities_bits()",
        "patients_facility_bits()",
        "facility_bits_of(text)",
    ):
        op.execute(f"DROP FUNCTION {function}")
    op.drop_column("patients", "facility_bits")
    op.drop_constraint(op.f("uq_facilities_ordinal"), "facilities", type_="unique")
    op.drop_column("facilities", "ordinal")  # drops the sequence it owns
