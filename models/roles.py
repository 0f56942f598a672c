"""The product's roles and the permissions each one holds: the one place that says who may do what.

Routes name the permission they need (`api/route_rules.py`); a caller holds the union of its roles'
permissions, narrowed to its scopes when it has any.
"""

from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    """What a route needs."""

    PATIENTS_READ = "patients:read"  # profile, consents, decisions, identity (demographics, contact data)
    CLINICAL_READ = (
        "clinical:read"  # the clinical parts of a patient: summary, timeline, segments of a patient
    )
    PATIENTS_WRITE = "patients:write"  # consents, merges, push subscriptions
    CONTACTS_READ = "contacts:read"  # suppressed addresses
    CONTACTS_WRITE = "contacts:write"
    MESSAGES_READ = "messages:read"  # message bodies can carry clinical data
    LETTERS_READ = "letters:read"
    LETTERS_WRITE = "letters:write"
    TASKS_READ = "tasks:read"
    TASKS_WRITE = "tasks:write"
    JOURNEYS_READ = "journeys:read"  # definitions and the library
    JOURNEYS_WRITE = "journeys:write"
    TEMPLATES_READ = "templates:read"
    TEMPLATES_WRITE = "templates:write"
    SEGMENTS_READ = "segments:read"
    SEGMENTS_WRITE = "segments:write"
    CAMPAIGNS_READ = "campaigns:read"
    CAMPAIGNS_WRITE = "campaigns:write"
    EVENTS_READ = "events:read"  # event management (`/v1/events`)
    EVENTS_WRITE = "events:write"
    REGISTRATIONS_READ = "registrations:read"
    REGISTRATIONS_WRITE = "registrations:write"
    ENROLLMENTS_READ = "enrollments:read"
    ENROLLMENTS_CREATE = "enrollments:create"  # enroll one patient, or a batch
    ENROLLMENTS_CONTROL = "enrollments:control"  # pause, resume, cancel
    TRIGGERS_WRITE = "triggers:write"
    FHIR_NOTIFY = "fhir:notify"  # subscription notifications from FHIR servers
    FHIR_IMPORT = "fhir:import"  # Bundle / NDJSON imports, Bulk Data exports, their progress
    FHIR_SOURCES_READ = "fhir_sources:read"
    FHIR_SOURCES_WRITE = "fhir_sources:write"  # register, poll, subscriptions
    CODEC_DECODE = "codec:decode"  # read decoded Temporal payloads (PHI) in the Temporal UI
    CODEC_ENCODE = "codec:encode"
    METRICS_READ = "metrics:read"
    API_KEYS_ADMIN = "api_keys:admin"
    AUDIT_READ = "audit:read"
    FACILITIES_READ = "facilities:read"  # the group's facilities (names, zones, sender identity)
    FACILITIES_WRITE = "facilities:write"
    ANALYTICS_READ = "analytics:read"  # funnels, delivery and engagement: counts, never a patient


class Role(StrEnum):
    """The roles of the brief."""

    MARKETING = "marketing"
    EVENT_PLANNER = "event_planner"
    HEALTHCARE = "healthcare"
    NON_CLINICAL = "non_clinical"
    FHIR_ADMIN = "fhir_admin"
    OPERATOR = "operator"
    TRIGGER = "trigger"
    ADMIN = "admin"


P = Permission

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.MARKETING: frozenset(
        {
            P.SEGMENTS_READ,
            P.SEGMENTS_WRITE,
            P.CAMPAIGNS_READ,
            P.CAMPAIGNS_WRITE,
            P.JOURNEYS_READ,
            P.JOURNEYS_WRITE,
            P.TEMPLATES_READ,
            P.TEMPLATES_WRITE,
            P.FACILITIES_READ,
            P.ANALYTICS_READ,
        }
    ),
    Role.EVENT_PLANNER: frozenset(
        {
            P.EVENTS_READ,
            P.EVENTS_WRITE,
            P.REGISTRATIONS_READ,
            P.REGISTRATIONS_WRITE,
            P.FACILITIES_READ,
            P.ANALYTICS_READ,
        }
    ),
    Role.HEALTHCARE: frozenset(
        {
            P.PATIENTS_READ,
            P.CLINICAL_READ,
            P.PATIENTS_WRITE,
            P.CONTACTS_READ,
            P.CONTACTS_WRITE,
            P.MESSAGES_READ,
            P.LETTERS_READ,
            P.LETTERS_WRITE,
            P.TASKS_READ,
            P.TASKS_WRITE,
            P.JOURNEYS_READ,
            P.TEMPLATES_READ,
            P.ENROLLMENTS_READ,
            P.ENROLLMENTS_CREATE,
            P.FACILITIES_READ,
            P.ANALYTICS_READ,
        }
    ),
    Role.NON_CLINICAL: frozenset({P.PATIENTS_READ, P.CONTACTS_READ, P.CONTACTS_WRITE, P.FACILITIES_READ}),
    Role.FHIR_ADMIN: frozenset(
        {
            P.FHIR_SOURCES_READ,
            P.FHIR_SOURCES_WRITE,
            P.FHIR_IMPORT,
            P.FHIR_NOTIFY,
            P.METRICS_READ,
            P.FACILITIES_READ,
        }
    ),
    Role.OPERATOR: frozenset(
        {
            P.ENROLLMENTS_READ,
            P.ENROLLMENTS_CREATE,
            P.ENROLLMENTS_CONTROL,
            P.JOURNEYS_READ,
            P.TEMPLATES_READ,
            P.CODEC_DECODE,
            P.CODEC_ENCODE,
            P.METRICS_READ,
            P.FACILITIES_READ,
            P.ANALYTICS_READ,
        }
    ),
    Role.TRIGGER: frozenset({P.TRIGGERS_WRITE, P.FHIR_NOTIFY}),
    Role.ADMIN: frozenset(Permission),
}

ALL_ROLES = frozenset(Role)


def permissions_of(roles: frozenset[Role], scopes: frozenset[str] = frozenset()) -> frozenset[Permission]:
    """What the roles allow, narrowed to `scopes` (permission names) when there are any."""
    held: set[Permission] = set()
    for role in roles:
        held |= ROLE_PERMISSIONS[role]
    if scopes:
        held &= {permission for permission in Permission if permission.value in scopes}
    return frozenset(held)


def parse_roles(names: object) -> frozenset[Role]:
    """The known roles among `names` (a list, or a space- or comma-separated string); others are ignored."""
    if isinstance(names, str):
        names = names.replace(",", " ").split()
    if not isinstance(names, list | tuple | set | frozenset):
        return frozenset()
    known = {role.value: role for role in Role}
    return frozenset(known[name] for name in names if isinstance(name, str) and name in known)


def parse_facilities(names: object) -> frozenset[str]:
    """Facility keys from a claim (a list, or a space- or comma-separated string); empty when absent."""
    if isinstance(names, str):
        names = names.replace(",", " ").split()
    if not isinstance(names, list | tuple | set | frozenset):
        return frozenset()
    return frozenset(name for name in names if isinstance(name, str) and name)
