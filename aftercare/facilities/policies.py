"""The row-level security policies that keep a caller limited to some facilities to their patients.

They apply to one role, `aftercare_scoped`, which a transaction of such a caller takes for its duration
(`aftercare/facilities/scope.py`), with `aftercare.facilities` naming the facilities it reaches. Every
table that holds a patient's data is filtered by the patient's facilities (`patient_facilities`), so a
new route, query or table joined to these cannot read past them; the migration and the test that walks
every route keep this list whole.
"""

from __future__ import annotations

from collections.abc import Callable

SCOPED_ROLE = "aftercare_scoped"

# The facilities the current transaction reaches (an empty array outside a scoped transaction). Policies
# read it as `(SELECT aftercare_facilities())`, so a statement computes it once, not once per row.
_SCOPE_FUNCTION = """
CREATE OR REPLACE FUNCTION aftercare_facilities() RETURNS text[] LANGUAGE sql STABLE AS $$
    SELECT coalesce(string_to_array(nullif(current_setting('aftercare.facilities', true), ''), ','), '{}')
$$
"""

# A row is visible when its patient is placed in a facility the transaction reaches. The check is
# correlated (`0016`): for each row one probe of `patient_facilities`' primary key (patient_id,
# facility), or, when a statement reads many rows, one hash of the reachable patients (the planner
# picks). The uncorrelated `IN (SELECT ...)` of `0004` (`_VISIBLE_0004`) read every patient of the
# reachable facilities for each statement however few rows it touched: some 50 to 400 ms a statement at
# a million patients. `{column}` is qualified by its table (inside the sub-query a bare `patient_id`
# would name `pf.patient_id`).
_VISIBLE = (
    "(EXISTS (SELECT 1 FROM patient_facilities pf WHERE pf.patient_id = {column} "
    "AND pf.facility = ANY ((SELECT aftercare_facilities())::text[])))"
)
_VISIBLE_0004 = (
    "({column} IN (SELECT pf.patient_id FROM patient_facilities pf "
    "WHERE pf.facility = ANY ((SELECT aftercare_facilities())::text[])))"
)

_FHIR_PATIENT = "CASE WHEN {t}.resource_type = 'Patient' THEN {t}.resource_id ELSE {t}.patient_id END"
# table → the expression naming its patient (each row must belong to a patient the caller reaches);
# `{t}` is the table.
PATIENT_TABLES: dict[str, str] = {
    "patients": "{t}.id",
    "fhir_resources": _FHIR_PATIENT,
    "fhir_resource_versions": _FHIR_PATIENT,
    "clinical_conditions": "{t}.patient_id",
    "clinical_observations": "{t}.patient_id",
    "clinical_medications": "{t}.patient_id",
    "clinical_encounters": "{t}.patient_id",
    "clinical_allergies": "{t}.patient_id",
    "clinical_procedures": "{t}.patient_id",
    "clinical_appointments": "{t}.patient_id",
    "clinical_episodes": "{t}.patient_id",
    "clinical_immunizations": "{t}.patient_id",
    "patient_identifiers": "{t}.patient_id",
    "patient_links": "{t}.record_id",
    "identity_merges": "{t}.record_id",
    "identity_candidates": "{t}.record_id",
    "enrollments": "{t}.patient_id",
    "messages": "{t}.patient_id",
    "consent_events": "{t}.patient_id",
    "send_decisions": "{t}.patient_id",
    "push_subscriptions": "{t}.patient_id",
    "inbound_messages": "{t}.patient_id",
    "tasks": "{t}.patient_id",
    "patient_attributes": "{t}.patient_id",
    "trigger_events": "{t}.patient_id",
    "campaign_recipients": "{t}.patient_id",
    "segment_memberships": "{t}.patient_id",
}
# Rows without a patient of their own, reached through one that has.
CHILD_TABLES: dict[str, str] = {
    "message_events": "EXISTS (SELECT 1 FROM messages m WHERE m.id = {t}.message_id)",
    "letters": "EXISTS (SELECT 1 FROM messages m WHERE m.id = {t}.message_id)",
    "enrollment_steps": "EXISTS (SELECT 1 FROM enrollments e WHERE e.id = {t}.enrollment_id)",
    "enrollment_fetches": "EXISTS (SELECT 1 FROM enrollments e WHERE e.id = {t}.enrollment_id)",
}
_CHILD_TABLES_0004: dict[str, str] = {
    "message_events": "message_id IN (SELECT id FROM messages)",
    "letters": "message_id IN (SELECT id FROM messages)",
    "enrollment_steps": "enrollment_id IN (SELECT id FROM enrollments)",
    "enrollment_fetches": "enrollment_id IN (SELECT id FROM enrollments)",
}
# Rows that may have no patient (a trigger for an unknown patient, a reference): visible when unset.
NULLABLE_PATIENT = {"fhir_resources", "fhir_resource_versions", "inbound_messages", "trigger_events"}


# An audit row about a patient's record is visible with the record.
_AUDIT_CASES = (
    "WHEN 'patient' THEN " + _VISIBLE.format(column="audit_events.resource_id") + " ",
    "WHEN 'enrollment' THEN EXISTS (SELECT 1 FROM enrollments e WHERE e.id = audit_events.resource_id) ",
    "WHEN 'task' THEN EXISTS (SELECT 1 FROM tasks t WHERE t.id = audit_events.resource_id) ",
    # `identity_merges.id` is an integer: an audit row's text id cannot probe its key.
    "WHEN 'identity_merge' THEN resource_id IN (SELECT id::text FROM identity_merges) ",
)
_AUDIT_CASES_0004 = (
    "WHEN 'patient' THEN resource_id IN (SELECT pf.patient_id FROM patient_facilities pf "
    "WHERE pf.facility = ANY ((SELECT aftercare_facilities())::text[])) ",
    "WHEN 'enrollment' THEN resource_id IN (SELECT id FROM enrollments) ",
    "WHEN 'task' THEN resource_id IN (SELECT id::text FROM tasks) ",
    "WHEN 'identity_merge' THEN resource_id IN (SELECT id::text FROM identity_merges) ",
)
# Added by `0010`: an audit row about a TCM episode is visible with the episode.
TCM_AUDIT_CASE = (
    "WHEN 'tcm_episode' THEN EXISTS (SELECT 1 FROM tcm_episodes x WHERE x.id = audit_events.resource_id) "
)
_TCM_AUDIT_CASE_0010 = "WHEN 'tcm_episode' THEN resource_id IN (SELECT id FROM tcm_episodes) "


def audit_visible(*extra_cases: str, cases: tuple[str, ...] = _AUDIT_CASES) -> str:
    """The audit trail's visibility expression, with the cases later migrations add."""
    return "resource_id IS NULL OR CASE resource_type " + "".join((*cases, *extra_cases)) + "ELSE true END"


_AUDIT_VISIBLE = audit_visible()


def _expression(table: str, *, legacy: bool = False) -> str:
    if table in CHILD_TABLES:
        return (_CHILD_TABLES_0004 if legacy else CHILD_TABLES)[table].format(t=table)
    column = PATIENT_TABLES[table].format(t=table)
    visible = (_VISIBLE_0004 if legacy else _VISIBLE).format(column=column)
    return f"(({column}) IS NULL OR {visible})" if table in NULLABLE_PATIENT else visible


_CREATE_ROLE = f"""
DO $$
BEGIN
    CREATE ROLE {SCOPED_ROLE} NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END
$$
"""

_GRANTS = f"""
DO $$
BEGIN
    EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO {SCOPED_ROLE}', current_database());
    EXECUTE format('GRANT {SCOPED_ROLE} TO %I', current_user);
EXCEPTION WHEN insufficient_privilege OR invalid_grant_operation THEN NULL;
END
$$
"""


def create_policies(execute: Callable[[str], object]) -> None:
    """Create the scoped role (once per server), its grants and every policy."""
    execute(_CREATE_ROLE)
    execute(_GRANTS)
    execute(f"GRANT USAGE ON SCHEMA public TO {SCOPED_ROLE}")
    execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {SCOPED_ROLE}")
    execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {SCOPED_ROLE}")
    execute(
        "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {SCOPED_ROLE}"
    )
    execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {SCOPED_ROLE}")
    execute(_SCOPE_FUNCTION)
    execute(
        f"CREATE POLICY facility_scope ON patient_facilities TO {SCOPED_ROLE} "
        "USING (facility = ANY ((SELECT aftercare_facilities())::text[]))"
    )
    execute("ALTER TABLE patient_facilities ENABLE ROW LEVEL SECURITY")
    for table in [*PATIENT_TABLES, *CHILD_TABLES]:
        expression = _expression(table)
        execute(f"CREATE POLICY facility_scope ON {table} TO {SCOPED_ROLE} USING ({expression})")
        execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    # The audit trail: a scoped caller appends, and reads only rows that name nothing beyond its reach.
    execute(
        f"CREATE POLICY facility_scope ON audit_events FOR SELECT TO {SCOPED_ROLE} USING ({_AUDIT_VISIBLE})"
    )
    execute(f"CREATE POLICY facility_append ON audit_events FOR INSERT TO {SCOPED_ROLE} WITH CHECK (true)")
    execute("ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY")


def drop_policies(execute: Callable[[str], object]) -> None:
    """Undo `create_policies` (the role stays: other databases on the server may use it)."""
    for table in ["patient_facilities", *PATIENT_TABLES, *CHILD_TABLES, "audit_events"]:
        execute(f"DROP POLICY IF EXISTS facility_scope ON {table}")
        execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    execute("DROP POLICY IF EXISTS facility_append ON audit_events")
    execute("DROP FUNCTION IF EXISTS aftercare_facilities()")
    execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {SCOPED_ROLE}")
    execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {SCOPED_ROLE}")
    execute(f"REVOKE ALL ON SCHEMA public FROM {SCOPED_ROLE}")


def scope_table(execute: Callable[[str], object], table: str, patient_column: str) -> None:
    """Scope a table made after `0004` by its patient column (its own migration calls this, so the
    policies of `0004` stay as they were when it ran)."""
    visible = _VISIBLE.format(column=f"{table}.{patient_column}")
    execute(f"CREATE POLICY facility_scope ON {table} TO {SCOPED_ROLE} USING ({visible})")
    execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")


def unscope_table(execute: Callable[[str], object], table: str) -> None:
    """Undo `scope_table`."""
    execute(f"DROP POLICY IF EXISTS facility_scope ON {table}")
    execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")


# --- definitions: templates, journeys, segments and campaigns --------------------------------------

# Tables of definitions a facility owns (`facility`), or the whole group shares (no facility).
DEFINITION_TABLES = ("templates", "journeys", "segments", "campaigns")

# The facilities above the caller's (their definitions are shared down the tree): empty when unscoped.
_SHARED_FUNCTION = """
CREATE OR REPLACE FUNCTION aftercare_shared_facilities() RETURNS text[] LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        string_to_array(nullif(current_setting('aftercare.shared_facilities', true), ''), ','), '{}'
    )
$$
"""
# A definition is used by its facility's subtree: a caller reads the group's, their facilities' and
# their ancestors'; and writes only their facilities' (never the group's nor an ancestor's).
_DEFINITION_READ = (
    "facility IS NULL OR facility = ANY ((SELECT aftercare_facilities())::text[]) "
    "OR facility = ANY ((SELECT aftercare_shared_facilities())::text[])"
)
_DEFINITION_WRITE = "facility = ANY ((SELECT aftercare_facilities())::text[])"


def scope_definitions(execute: Callable[[str], object]) -> None:
    """Scope the definition tables by their `facility` (migration `0011`)."""
    execute(_SHARED_FUNCTION)
    for table in DEFINITION_TABLES:
        execute(
            f"CREATE POLICY facility_read ON {table} FOR SELECT TO {SCOPED_ROLE} USING ({_DEFINITION_READ})"
        )
        execute(
            f"CREATE POLICY facility_insert ON {table} FOR INSERT TO {SCOPED_ROLE} "
            f"WITH CHECK ({_DEFINITION_WRITE})"
        )
        execute(
            f"CREATE POLICY facility_update ON {table} FOR UPDATE TO {SCOPED_ROLE} "
            f"USING ({_DEFINITION_WRITE}) WITH CHECK ({_DEFINITION_WRITE})"
        )
        execute(
            f"CREATE POLICY facility_delete ON {table} FOR DELETE TO {SCOPED_ROLE} "
            f"USING ({_DEFINITION_WRITE})"
        )
        execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")


def unscope_definitions(execute: Callable[[str], object]) -> None:
    """Undo `scope_definitions`."""
    for table in DEFINITION_TABLES:
        for policy in ("facility_read", "facility_insert", "facility_update", "facility_delete"):
            execute(f"DROP POLICY IF EXISTS {policy} ON {table}")
        execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    execute("DROP FUNCTION IF EXISTS aftercare_shared_facilities()")


def rescope_audit(execute: Callable[[str], object], *extra_cases: str) -> None:
    """Replace the audit trail's read policy with one that also knows these cases (a migration adding a
    table whose rows the audit trail names calls this; its downgrade calls it without them)."""
    execute("DROP POLICY IF EXISTS facility_scope ON audit_events")
    execute(
        f"CREATE POLICY facility_scope ON audit_events FOR SELECT TO {SCOPED_ROLE} "
        f"USING ({audit_visible(*extra_cases)})"
    )


# --- `0016`: correlated policies ------------------------------------------------------------------

# Tables later migrations scoped by their patient column (`scope_table`).
SCOPED_LATER: dict[str, str] = {
    "event_registrations": "patient_id",  # 0006
    "voice_calls": "patient_id",  # 0007
    "surveys": "patient_id",  # 0008
    "questionnaire_responses": "patient_id",  # 0008
    "risk_scores": "patient_id",  # 0010
    "tcm_episodes": "patient_id",  # 0010
    "event_effects": "patient_id",  # 0012
}


def rewrite_policies(execute: Callable[[str], object], *, legacy: bool = False) -> None:
    """Replace every per-patient policy with its correlated form (`0016`), or, `legacy`, with the
    uncorrelated form the migrations before it made (`0016`'s downgrade)."""
    form = _VISIBLE_0004 if legacy else _VISIBLE
    expressions = {table: _expression(table, legacy=legacy) for table in [*PATIENT_TABLES, *CHILD_TABLES]}
    for table, column in SCOPED_LATER.items():
        expressions[table] = form.format(column=column if legacy else f"{table}.{column}")
    for table, expression in expressions.items():
        execute(f"ALTER POLICY facility_scope ON {table} USING ({expression})")
    cases = (*_AUDIT_CASES_0004, _TCM_AUDIT_CASE_0010) if legacy else (*_AUDIT_CASES, TCM_AUDIT_CASE)
    execute(f"ALTER POLICY facility_scope ON audit_events USING ({audit_visible(cases=cases)})")
