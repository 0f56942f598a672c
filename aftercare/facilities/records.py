"""The facility a care task or a send decision was made for, filled in by the database as the row is
inserted: its enrollment's facility, else the patient's (the one they hear from, as in
`aftercare/facilities/voice.py`); and the facility of the record an audit row names. Triggers, so no
path that inserts them can leave it out. A record the caller cannot see names no facility."""

from __future__ import annotations

from collections.abc import Callable

# Tables whose rows name a patient and may name an enrollment, and take that facility.
RECORD_TABLES = ("tasks", "send_decisions")

_FUNCTION = """
CREATE OR REPLACE FUNCTION aftercare_record_facility() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.facility IS NULL AND NEW.enrollment_id IS NOT NULL THEN
        SELECT e.facility INTO NEW.facility FROM enrollments e WHERE e.id = NEW.enrollment_id;
    END IF;
    IF NEW.facility IS NULL THEN
        SELECT pf.facility INTO NEW.facility FROM patient_facilities pf WHERE pf.patient_id = NEW.patient_id
        ORDER BY pf.source = 'managing_organization' DESC, pf.added_at, pf.facility LIMIT 1;
    END IF;
    RETURN NEW;
END
$$
"""


_AUDIT_FUNCTION = """
CREATE OR REPLACE FUNCTION aftercare_audit_facility() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ref text := NEW.resource_id;
BEGIN
    IF NEW.facility IS NULL AND ref IS NOT NULL THEN
        CASE NEW.resource_type
            WHEN 'patient' THEN
                SELECT pf.facility INTO NEW.facility FROM patient_facilities pf WHERE pf.patient_id = ref
                ORDER BY pf.source = 'managing_organization' DESC, pf.added_at, pf.facility LIMIT 1;
            WHEN 'enrollment' THEN SELECT facility INTO NEW.facility FROM enrollments WHERE id = ref;
            WHEN 'task' THEN SELECT facility INTO NEW.facility FROM tasks WHERE id = ref;
            WHEN 'facility' THEN NEW.facility := ref;
            WHEN 'journey' THEN
                SELECT facility INTO NEW.facility FROM journeys WHERE key = ref
                ORDER BY version DESC LIMIT 1;
            WHEN 'segment' THEN
                SELECT facility INTO NEW.facility FROM segments WHERE key = ref
                ORDER BY version DESC LIMIT 1;
            WHEN 'campaign' THEN
                SELECT facility INTO NEW.facility FROM campaigns WHERE key = ref
                ORDER BY version DESC LIMIT 1;
            WHEN 'template' THEN
                SELECT facility INTO NEW.facility FROM templates WHERE key = ref
                ORDER BY version DESC LIMIT 1;
            ELSE NULL;
        END CASE;
    END IF;
    RETURN NEW;
END
$$
"""


def create_record_facility(execute: Callable[[str], object]) -> None:
    """Fill in `facility` on every insert into the record tables and the audit trail (`0011`)."""
    execute(_FUNCTION)
    for table in RECORD_TABLES:
        execute(
            f"CREATE TRIGGER facility_of_record BEFORE INSERT ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION aftercare_record_facility()"
        )
    execute(_AUDIT_FUNCTION)
    execute(
        "CREATE TRIGGER facility_of_record BEFORE INSERT ON audit_events "
        "FOR EACH ROW EXECUTE FUNCTION aftercare_audit_facility()"
    )


def drop_record_facility(execute: Callable[[str], object]) -> None:
    """Undo `create_record_facility`."""
    for table in (*RECORD_TABLES, "audit_events"):
        execute(f"DROP TRIGGER IF EXISTS facility_of_record ON {table}")
    execute("DROP FUNCTION IF EXISTS aftercare_record_facility()")
    execute("DROP FUNCTION IF EXISTS aftercare_audit_facility()")
