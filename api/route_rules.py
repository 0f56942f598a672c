"""The one table of who may call what: every route (method and path template) names the permission it
needs, or says it is public or checked by its provider's signature. A rule also says what the audit
trail records of a call and whether the caller's rate limit applies.

`create_app` refuses to build when a route has no rule, and `tests/api/test_route_rules.py` walks this
table with a key of each role against every route. docs/security.md's "Who may do what" shows the same table.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from models.roles import Permission

P = Permission


class Access(StrEnum):
    """How a route is protected."""

    PERMISSION = "permission"  # an authenticated caller holding the rule's permission
    PUBLIC = "public"
    PROVIDER_SIGNED = "provider_signed"  # the webhook checks its provider's signature instead
    CODEC_UI = "codec_ui"  # the development Temporal UI's path credential (see api/routes/codec.py)
    CONSOLE = "console"  # a console page: a session or the API's credentials (console/auth.py)
    CONSOLE_SIGN_IN = "console_sign_in"  # the console's sign-in page: anyone


@dataclass(frozen=True)
class Audit:
    """What the audit trail records: the resource type, where its id comes from (`path:<name>`,
    `query:<name>` or `response:<field>`), and the action (by default from the method)."""

    resource_type: str
    id_from: str | None = None
    action: str | None = None


@dataclass(frozen=True)
class Rule:
    """One route's access rule."""

    access: Access
    permission: Permission | None = None
    audit: Audit | None = None
    rate_limited: bool = False
    large_body: bool = False  # `MAX_IMPORT_REQUEST_BYTES` instead of `MAX_REQUEST_BYTES`
    also: Permission | None = None  # a console action that also shows or sends data of another kind


def needs(
    permission: Permission,
    audit: Audit | None = None,
    *,
    rate_limited: bool = False,
    large_body: bool = False,
) -> Rule:
    """A route for callers holding `permission`."""
    return Rule(Access.PERMISSION, permission, audit, rate_limited, large_body)


def page(
    permission: Permission | None = None, audit: Audit | None = None, *, also: Permission | None = None
) -> Rule:
    """A console page for signed-in users holding `permission` (None: any signed-in user), and `also`
    when given (a dry run or a test send, which show a patient's data beside a journey or template)."""
    return Rule(Access.CONSOLE, permission, audit, also=also)


PUBLIC = Rule(Access.PUBLIC)
PROVIDER_SIGNED = Rule(Access.PROVIDER_SIGNED)

_PATIENT = Audit("patient", "path:patient_id")
_NOTIFY = needs(P.FHIR_NOTIFY, rate_limited=True)
_REGISTRATION = Audit("event_registration", "path:registration_id")

RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/metrics"): needs(P.METRICS_READ),
    # FHIR: the CapabilityStatement (public, as FHIR clients expect), notifications from servers and
    # clinical systems, imports, sources
    ("GET", "/v1/fhir/metadata"): PUBLIC,
    ("POST", "/v1/fhir/notifications"): _NOTIFY,
    ("POST", "/v1/fhir/$process-message"): _NOTIFY,
    ("POST", "/v1/fhir/notifications/{resource_type}/{resource_id}"): _NOTIFY,
    ("PUT", "/v1/fhir/notifications/{resource_type}/{resource_id}"): _NOTIFY,
    ("POST", "/v1/fhir/sources/{key}/notifications"): _NOTIFY,
    ("POST", "/v1/fhir/sources/{key}/notifications/{resource_type}/{resource_id}"): _NOTIFY,
    ("PUT", "/v1/fhir/sources/{key}/notifications/{resource_type}/{resource_id}"): _NOTIFY,
    ("POST", "/v1/fhir/import"): needs(P.FHIR_IMPORT, Audit("fhir_import", action="import"), large_body=True),
    ("POST", "/v1/fhir/exports"): needs(P.FHIR_IMPORT, Audit("fhir_import", "response:id", "export")),
    ("GET", "/v1/fhir/imports"): needs(P.FHIR_IMPORT),
    ("GET", "/v1/fhir/imports/{import_id}"): needs(P.FHIR_IMPORT),
    ("GET", "/v1/fhir/sources"): needs(P.FHIR_SOURCES_READ),
    ("POST", "/v1/fhir/sources"): needs(P.FHIR_SOURCES_WRITE, Audit("fhir_source", "response:key", "save")),
    ("GET", "/v1/fhir/sources/{key}"): needs(P.FHIR_SOURCES_READ),
    ("POST", "/v1/fhir/sources/{key}/poll"): needs(
        P.FHIR_SOURCES_WRITE, Audit("fhir_source", "path:key", "poll")
    ),
    ("POST", "/v1/fhir/sources/{key}/subscriptions"): needs(
        P.FHIR_SOURCES_WRITE, Audit("fhir_source", "path:key", "subscribe")
    ),
    # HL7 v2 feed: parked messages (their reasons may quote a field's value) and an operator's retry
    ("GET", "/v1/hl7v2/messages/parked"): needs(P.FHIR_SOURCES_READ, Audit("adt_message", action="list")),
    ("POST", "/v1/hl7v2/messages/{message_id}/retry"): needs(
        P.FHIR_SOURCES_WRITE, Audit("adt_message", "path:message_id", "retry")
    ),
    # patients (a search's terms are patient data: the audit trail records only that a search was made)
    ("GET", "/v1/patients"): needs(P.PATIENTS_READ, Audit("patient", action="search")),
    ("GET", "/v1/patients/{patient_id}"): needs(P.PATIENTS_READ, _PATIENT),
    ("GET", "/v1/patients/{patient_id}/consents"): needs(
        P.PATIENTS_READ, Audit("patient", "path:patient_id", "read_consents")
    ),
    ("PUT", "/v1/patients/{patient_id}/consents"): needs(
        P.PATIENTS_WRITE, Audit("patient", "path:patient_id", "update_consents")
    ),
    ("GET", "/v1/patients/{patient_id}/decisions"): needs(
        P.PATIENTS_READ, Audit("patient", "path:patient_id", "read_decisions")
    ),
    ("GET", "/v1/patients/{patient_id}/identity"): needs(
        P.PATIENTS_READ, Audit("patient", "path:patient_id", "read_identity")
    ),
    ("POST", "/v1/patients/{patient_id}/merge"): needs(
        P.PATIENTS_WRITE, Audit("patient", "path:patient_id", "merge")
    ),
    ("POST", "/v1/identity/merges/{merge_id}/reverse"): needs(
        P.PATIENTS_WRITE, Audit("identity_merge", "path:merge_id", "reverse")
    ),
    ("GET", "/v1/identity/candidates"): needs(P.PATIENTS_READ, Audit("identity_candidates", action="list")),
    ("GET", "/v1/patients/{patient_id}/risk"): needs(
        P.CLINICAL_READ, Audit("patient", "path:patient_id", "read_risk")
    ),
    ("GET", "/v1/tcm/episodes"): needs(P.CLINICAL_READ),
    ("GET", "/v1/tcm/episodes/{episode_id}"): needs(P.CLINICAL_READ, Audit("tcm_episode", "path:episode_id")),
    ("PATCH", "/v1/tcm/episodes/{episode_id}"): needs(
        P.TASKS_WRITE, Audit("tcm_episode", "path:episode_id", "set_complexity")
    ),
    ("GET", "/v1/tcm/report"): needs(P.CLINICAL_READ),
    ("GET", "/v1/patients/{patient_id}/segments"): needs(
        P.CLINICAL_READ, Audit("patient", "path:patient_id", "read_segments")
    ),
    ("GET", "/v1/push/public-key"): PUBLIC,  # the VAPID public key browsers subscribe with
    ("POST", "/v1/patients/{patient_id}/push-subscriptions"): needs(
        P.PATIENTS_WRITE, Audit("patient", "path:patient_id", "add_push_subscription")
    ),
    ("GET", "/v1/patients/{patient_id}/push-subscriptions"): needs(
        P.PATIENTS_READ, Audit("patient", "path:patient_id", "read_push_subscriptions")
    ),
    ("DELETE", "/v1/patients/{patient_id}/push-subscriptions/{subscription_id}"): needs(
        P.PATIENTS_WRITE, Audit("patient", "path:patient_id", "remove_push_subscription")
    ),
    ("GET", "/v1/suppressions"): needs(P.CONTACTS_READ, Audit("suppression", action="list")),
    # the address is contact data: the audit trail records only its channel
    ("DELETE", "/v1/suppressions/{channel}/{address}"): needs(
        P.CONTACTS_WRITE, Audit("suppression", "path:channel", "lift")
    ),
    ("GET", "/v1/messages"): needs(P.MESSAGES_READ, Audit("patient", "query:patient_id", "read_messages")),
    ("GET", "/v1/messages/{message_id}"): needs(P.MESSAGES_READ, Audit("message", "path:message_id")),
    # surveys: Questionnaires are content like templates; results are counts of patients' answers
    ("POST", "/v1/questionnaires"): needs(
        P.TEMPLATES_WRITE, Audit("questionnaire", "response:url", "create")
    ),
    ("POST", "/v1/questionnaires/import"): needs(
        P.TEMPLATES_WRITE, Audit("questionnaire", "response:url", "import")
    ),
    ("GET", "/v1/questionnaires"): needs(P.TEMPLATES_READ),
    ("GET", "/v1/questionnaires/resource"): needs(P.TEMPLATES_READ),
    ("GET", "/v1/questionnaires/results"): needs(
        P.PATIENTS_READ, Audit("questionnaire", "query:url", "read_results")
    ),
    ("GET", "/v1/tasks"): needs(P.TASKS_READ, Audit("task", action="list")),
    ("GET", "/v1/tasks/{task_id}"): needs(P.TASKS_READ, Audit("task", "path:task_id")),
    ("POST", "/v1/tasks/{task_id}/complete"): needs(P.TASKS_WRITE, Audit("task", "path:task_id", "complete")),
    ("GET", "/v1/letters/batches"): needs(P.LETTERS_READ),
    ("GET", "/v1/letters/batches/{date}"): needs(
        P.LETTERS_READ, Audit("letter_batch", "path:date", "download")
    ),
    ("POST", "/v1/letters/batches/{date}/printed"): needs(
        P.LETTERS_WRITE, Audit("letter_batch", "path:date", "mark_printed")
    ),
    # definitions
    ("POST", "/v1/templates"): needs(P.TEMPLATES_WRITE, Audit("template", "response:key", "publish")),
    ("GET", "/v1/templates"): needs(P.TEMPLATES_READ),
    ("GET", "/v1/templates/{key}"): needs(P.TEMPLATES_READ, Audit("template", "path:key")),
    ("POST", "/v1/journeys"): needs(P.JOURNEYS_WRITE, Audit("journey", "response:key", "publish")),
    ("GET", "/v1/journeys"): needs(P.JOURNEYS_READ),
    ("GET", "/v1/journeys/{key}"): needs(P.JOURNEYS_READ, Audit("journey", "path:key")),
    ("GET", "/v1/library"): needs(P.JOURNEYS_READ),
    ("POST", "/v1/library/{key}/install"): needs(P.JOURNEYS_WRITE, Audit("journey", "path:key", "install")),
    ("POST", "/v1/segments"): needs(P.SEGMENTS_WRITE, Audit("segment", "response:key", "publish")),
    ("GET", "/v1/segments"): needs(P.SEGMENTS_READ),
    ("GET", "/v1/segments/library"): needs(P.SEGMENTS_READ),
    ("POST", "/v1/segments/library/{key}/install"): needs(
        P.SEGMENTS_WRITE, Audit("segment", "path:key", "install")
    ),
    ("GET", "/v1/segments/{key}"): needs(P.SEGMENTS_READ, Audit("segment", "path:key")),
    ("GET", "/v1/segments/{key}/preview"): needs(P.SEGMENTS_READ, Audit("segment", "path:key", "preview")),
    ("POST", "/v1/segments/{key}/refresh"): needs(P.SEGMENTS_WRITE, Audit("segment", "path:key", "refresh")),
    ("GET", "/v1/segments/{key}/members"): needs(
        P.SEGMENTS_READ, Audit("segment", "path:key", "read_members")
    ),
    ("POST", "/v1/campaigns"): needs(P.CAMPAIGNS_WRITE, Audit("campaign", "response:key", "publish")),
    ("GET", "/v1/campaigns"): needs(P.CAMPAIGNS_READ),
    ("GET", "/v1/campaigns/{key}"): needs(P.CAMPAIGNS_READ, Audit("campaign", "path:key")),
    ("POST", "/v1/campaigns/{key}/launch"): needs(P.CAMPAIGNS_WRITE, Audit("campaign", "path:key", "launch")),
    ("POST", "/v1/campaigns/{key}/pause"): needs(P.CAMPAIGNS_WRITE, Audit("campaign", "path:key", "pause")),
    ("POST", "/v1/campaigns/{key}/resume"): needs(P.CAMPAIGNS_WRITE, Audit("campaign", "path:key", "resume")),
    ("POST", "/v1/campaigns/{key}/cancel"): needs(P.CAMPAIGNS_WRITE, Audit("campaign", "path:key", "cancel")),
    ("GET", "/v1/campaigns/{key}/runs"): needs(P.CAMPAIGNS_READ, Audit("campaign", "path:key", "read_runs")),
    ("GET", "/v1/campaigns/{key}/runs/{run_id}"): needs(
        P.CAMPAIGNS_READ, Audit("campaign", "path:key", "read_results")
    ),
    ("GET", "/v1/analytics/journeys/{key}/funnel"): needs(P.ANALYTICS_READ),
    ("GET", "/v1/analytics/messages"): needs(P.ANALYTICS_READ),
    ("GET", "/v1/analytics/campaigns/{key}/ab"): needs(P.ANALYTICS_READ),
    ("GET", "/v1/analytics/journeys/{key}/ab"): needs(P.ANALYTICS_READ),
    ("GET", "/v1/analytics/messages/series"): needs(P.ANALYTICS_READ),
    ("GET", "/v1/analytics/events"): needs(P.ANALYTICS_READ),
    ("GET", "/v1/analytics/journeys/{key}/series"): needs(P.ANALYTICS_READ),
    ("GET", "/v1/campaigns/{key}/results"): needs(
        P.CAMPAIGNS_READ, Audit("campaign", "path:key", "read_results")
    ),
    # events: planners manage them; registrations are patient data (ids only in the audit trail)
    ("POST", "/v1/events"): needs(P.EVENTS_WRITE, Audit("event", "response:key", "create")),
    ("GET", "/v1/events"): needs(P.EVENTS_READ),
    ("GET", "/v1/events/{key}"): needs(P.EVENTS_READ, Audit("event", "path:key")),
    ("PATCH", "/v1/events/{key}"): needs(P.EVENTS_WRITE, Audit("event", "path:key", "change")),
    ("POST", "/v1/events/{key}/publish"): needs(P.EVENTS_WRITE, Audit("event", "path:key", "publish")),
    ("POST", "/v1/events/{key}/cancel"): needs(P.EVENTS_WRITE, Audit("event", "path:key", "cancel")),
    ("PATCH", "/v1/events/{key}/sessions/{session_id}"): needs(
        P.EVENTS_WRITE, Audit("event", "path:key", "change_session")
    ),
    ("POST", "/v1/events/{key}/sessions/{session_id}/close"): needs(
        P.REGISTRATIONS_WRITE, Audit("event", "path:key", "close_session")
    ),
    ("POST", "/v1/events/{key}/registrations"): needs(
        P.REGISTRATIONS_WRITE, Audit("event_registration", "response:registration_id", "register")
    ),
    ("GET", "/v1/events/{key}/registrations"): needs(
        P.REGISTRATIONS_READ, Audit("event", "path:key", "read_registrations")
    ),
    ("GET", "/v1/events/{key}/registrations/{registration_id}"): needs(P.REGISTRATIONS_READ, _REGISTRATION),
    ("POST", "/v1/events/{key}/registrations/{registration_id}/cancel"): needs(
        P.REGISTRATIONS_WRITE, Audit("event_registration", "path:registration_id", "cancel")
    ),
    ("POST", "/v1/events/{key}/registrations/{registration_id}/accept"): needs(
        P.REGISTRATIONS_WRITE, Audit("event_registration", "path:registration_id", "accept")
    ),
    ("POST", "/v1/events/{key}/registrations/{registration_id}/check-in"): needs(
        P.REGISTRATIONS_WRITE, Audit("event_registration", "path:registration_id", "check_in")
    ),
    ("POST", "/v1/events/{key}/check-in"): needs(
        P.REGISTRATIONS_WRITE, Audit("event_registration", "response:registration_id", "check_in")
    ),
    ("GET", "/v1/events/{key}/registrations/{registration_id}/invite.ics"): needs(
        P.REGISTRATIONS_READ, Audit("event_registration", "path:registration_id", "read_invite")
    ),
    ("GET", "/v1/events/{key}/registrations/{registration_id}/qr.png"): needs(
        P.REGISTRATIONS_READ, Audit("event_registration", "path:registration_id", "read_qr")
    ),
    ("POST", "/v1/events/{key}/links"): needs(
        P.REGISTRATIONS_WRITE, Audit("event", "path:key", "create_link")
    ),
    # the patients' self-service pages: the signed link in the path is the credential
    ("GET", "/e/{token}"): PUBLIC,
    ("POST", "/e/{token}/register"): PUBLIC,
    ("POST", "/e/{token}/cancel"): PUBLIC,
    ("GET", "/e/{token}/invite.ics"): PUBLIC,
    ("GET", "/u/{token}"): PUBLIC,
    ("POST", "/u/{token}"): PUBLIC,
    ("GET", "/p/{token}"): PUBLIC,
    ("POST", "/p/{token}"): PUBLIC,
    ("GET", "/s/{token}"): PUBLIC,
    ("POST", "/s/{token}"): PUBLIC,
    # enrollments and triggers
    ("POST", "/v1/journeys/{key}/enrollments"): needs(
        P.ENROLLMENTS_CREATE, Audit("journey", "path:key", "enroll")
    ),
    ("POST", "/v1/journeys/{key}/enrollments/batch"): needs(
        P.ENROLLMENTS_CREATE, Audit("journey", "path:key", "enroll_batch")
    ),
    ("GET", "/v1/enrollments"): needs(
        P.ENROLLMENTS_READ, Audit("patient", "query:patient_id", "read_enrollments")
    ),
    ("GET", "/v1/enrollments/{enrollment_id}"): needs(
        P.ENROLLMENTS_READ, Audit("enrollment", "path:enrollment_id")
    ),
    ("POST", "/v1/enrollments/{enrollment_id}/pause"): needs(
        P.ENROLLMENTS_CONTROL, Audit("enrollment", "path:enrollment_id", "pause")
    ),
    ("POST", "/v1/enrollments/{enrollment_id}/resume"): needs(
        P.ENROLLMENTS_CONTROL, Audit("enrollment", "path:enrollment_id", "resume")
    ),
    ("POST", "/v1/enrollments/{enrollment_id}/cancel"): needs(
        P.ENROLLMENTS_CONTROL, Audit("enrollment", "path:enrollment_id", "cancel")
    ),
    ("POST", "/v1/triggers"): needs(P.TRIGGERS_WRITE, rate_limited=True),
    # security itself
    ("POST", "/v1/api-keys"): needs(P.API_KEYS_ADMIN, Audit("api_key", "response:id", "create")),
    ("GET", "/v1/api-keys"): needs(P.API_KEYS_ADMIN, Audit("api_key", action="list")),
    ("DELETE", "/v1/api-keys/{key_id}"): needs(P.API_KEYS_ADMIN, Audit("api_key", "path:key_id", "revoke")),
    ("POST", "/v1/facilities"): needs(P.FACILITIES_WRITE, Audit("facility", "response:key", "create")),
    ("GET", "/v1/facilities"): needs(P.FACILITIES_READ),
    ("PATCH", "/v1/facilities/{key}"): needs(P.FACILITIES_WRITE, Audit("facility", "path:key", "update")),
    ("DELETE", "/v1/facilities/{key}"): needs(P.FACILITIES_WRITE, Audit("facility", "path:key", "delete")),
    ("GET", "/v1/audit"): needs(P.AUDIT_READ, Audit("audit", action="read")),
    ("POST", "/codec/encode"): needs(P.CODEC_ENCODE, Audit("codec", action="encode")),
    ("POST", "/codec/decode"): needs(P.CODEC_DECODE, Audit("codec", action="decode")),
    ("POST", "/codec/ui/{token}/encode"): Rule(
        Access.CODEC_UI, P.CODEC_ENCODE, Audit("codec", action="encode")
    ),
    ("POST", "/codec/ui/{token}/decode"): Rule(
        Access.CODEC_UI, P.CODEC_DECODE, Audit("codec", action="decode")
    ),
    # provider webhooks: their signatures are checked instead
    ("POST", "/webhooks/twilio/status"): PROVIDER_SIGNED,
    ("POST", "/webhooks/twilio/inbound"): PROVIDER_SIGNED,
    ("POST", "/webhooks/twilio/voice/twiml"): PROVIDER_SIGNED,
    ("POST", "/webhooks/twilio/voice/gather"): PROVIDER_SIGNED,
    ("POST", "/webhooks/twilio/voice/status"): PROVIDER_SIGNED,
    ("POST", "/webhooks/twilio/voice/recording"): PROVIDER_SIGNED,
    ("POST", "/webhooks/sendgrid/events"): PROVIDER_SIGNED,
    # the console (console/): the same permissions as the API routes that show or change the same data
    ("GET", "/console/login"): Rule(Access.CONSOLE_SIGN_IN),
    ("POST", "/console/login"): Rule(Access.CONSOLE_SIGN_IN),
    ("GET", "/console/login/oidc"): Rule(Access.CONSOLE_SIGN_IN),
    ("GET", "/console/login/oidc/callback"): Rule(Access.CONSOLE_SIGN_IN),
    ("POST", "/console/logout"): page(),
    ("GET", "/console"): page(),
    ("GET", "/console/patients"): page(P.PATIENTS_READ, Audit("patient", action="search")),
    ("POST", "/console/patients"): page(P.PATIENTS_READ, Audit("patient", action="search")),
    ("GET", "/console/patients/{patient_id}"): page(P.PATIENTS_READ, _PATIENT),
    ("POST", "/console/patients/{patient_id}/consents"): page(
        P.PATIENTS_WRITE, Audit("patient", "path:patient_id", "update_consents")
    ),
    ("GET", "/console/tasks"): page(P.TASKS_READ, Audit("task", action="list")),
    ("GET", "/console/tcm"): page(P.CLINICAL_READ, Audit("tcm_episode", action="list")),
    ("POST", "/console/tasks/{task_id}/claim"): page(P.TASKS_WRITE, Audit("task", "path:task_id", "claim")),
    ("POST", "/console/tasks/{task_id}/assign"): page(P.TASKS_WRITE, Audit("task", "path:task_id", "assign")),
    ("GET", "/console/events"): page(P.EVENTS_READ),
    ("GET", "/console/events/{key}"): page(
        P.REGISTRATIONS_READ, Audit("event", "path:key", "read_registrations")
    ),
    ("POST", "/console/events/{key}/check-in"): page(
        P.REGISTRATIONS_WRITE, Audit("event", "path:key", "check_in")
    ),
    ("GET", "/console/events/new"): page(P.EVENTS_WRITE),
    ("POST", "/console/events"): page(P.EVENTS_WRITE, Audit("event", action="create")),
    ("POST", "/console/events/{key}/publish"): page(P.EVENTS_WRITE, Audit("event", "path:key", "publish")),
    ("POST", "/console/events/{key}/cancel"): page(P.EVENTS_WRITE, Audit("event", "path:key", "cancel")),
    ("POST", "/console/events/{key}/details"): page(P.EVENTS_WRITE, Audit("event", "path:key", "change")),
    ("POST", "/console/events/{key}/sessions/{session_id}"): page(
        P.EVENTS_WRITE, Audit("event", "path:key", "change_session")
    ),
    ("POST", "/console/events/{key}/sessions/{session_id}/close"): page(
        P.REGISTRATIONS_WRITE, Audit("event", "path:key", "close_session")
    ),
    ("GET", "/console/events/{key}/registrations.csv"): page(
        P.REGISTRATIONS_READ, Audit("event", "path:key", "export_registrations")
    ),
    ("GET", "/console/events/{key}/check-in"): page(
        P.REGISTRATIONS_WRITE, Audit("event", "path:key", "read_registrations")
    ),
    ("POST", "/console/events/{key}/registrations/{registration_id}/check-in"): page(
        P.REGISTRATIONS_WRITE, Audit("event_registration", "path:registration_id", "check_in")
    ),
    ("GET", "/console/templates"): page(P.TEMPLATES_READ),
    ("GET", "/console/templates/{key}"): page(P.TEMPLATES_READ, Audit("template", "path:key")),
    ("GET", "/console/templates/{key}/editor"): page(P.TEMPLATES_WRITE),
    ("POST", "/console/templates/{key}/editor"): page(
        P.TEMPLATES_WRITE, Audit("template", "path:key", "publish")
    ),
    # the preview renders a template for a patient: patient data
    ("POST", "/console/templates/{key}/preview"): page(
        P.PATIENTS_READ, Audit("template", "path:key", "preview_for_patient")
    ),
    ("POST", "/console/templates/{key}/test-send"): page(
        P.TEMPLATES_WRITE, Audit("template", "path:key", "test_send"), also=P.PATIENTS_READ
    ),
    ("GET", "/console/segments"): page(P.SEGMENTS_READ),
    ("GET", "/console/segments/{key}"): page(P.SEGMENTS_READ, Audit("segment", "path:key", "preview")),
    ("GET", "/console/segments/{key}/editor"): page(P.SEGMENTS_WRITE),
    ("POST", "/console/segments/{key}/editor"): page(
        P.SEGMENTS_WRITE, Audit("segment", "path:key", "publish")
    ),
    ("GET", "/console/campaigns"): page(P.CAMPAIGNS_READ),
    ("GET", "/console/analytics"): page(P.ANALYTICS_READ),
    ("GET", "/console/analytics/journeys/{key}"): page(P.ANALYTICS_READ),
    ("GET", "/console/analytics/campaigns/{key}"): page(P.ANALYTICS_READ),
    ("GET", "/console/analytics/export.csv"): page(P.ANALYTICS_READ),
    ("GET", "/console/surveys"): page(P.PATIENTS_READ),
    ("GET", "/console/surveys/results"): page(
        P.PATIENTS_READ, Audit("questionnaire", "query:url", "read_results")
    ),
    ("GET", "/console/surveys/results.csv"): page(
        P.PATIENTS_READ, Audit("questionnaire", "query:url", "export_results")
    ),
    ("POST", "/console/campaigns"): page(P.CAMPAIGNS_WRITE, Audit("campaign", action="publish")),
    ("GET", "/console/campaigns/{key}"): page(
        P.CAMPAIGNS_READ, Audit("campaign", "path:key", "read_results")
    ),
    ("POST", "/console/campaigns/{key}/launch"): page(
        P.CAMPAIGNS_WRITE, Audit("campaign", "path:key", "launch")
    ),
    ("GET", "/console/operations"): page(P.FHIR_SOURCES_READ),
    ("POST", "/console/operations/imports/{import_id}/retry"): page(
        P.FHIR_IMPORT, Audit("bulk_import", "path:import_id", "retry")
    ),
    ("POST", "/console/operations/parked/{item_id}/retry"): page(
        P.FHIR_IMPORT, Audit("parked_item", "path:item_id", "retry")
    ),
    ("POST", "/console/operations/adt/{message_id}/retry"): page(
        P.FHIR_IMPORT, Audit("adt_message", "path:message_id", "retry")
    ),
    ("GET", "/console/audit"): page(P.AUDIT_READ, Audit("audit", action="read")),
    ("GET", "/console/journeys"): page(P.JOURNEYS_READ),
    ("GET", "/console/journeys/{key}"): page(P.JOURNEYS_READ, Audit("journey", "path:key")),
    ("POST", "/console/journeys/{key}/dry-run"): page(
        P.JOURNEYS_READ, Audit("journey", "path:key", "dry_run"), also=P.PATIENTS_READ
    ),
    ("POST", "/console/journeys/library/{key}/install"): page(
        P.JOURNEYS_WRITE, Audit("journey", "path:key", "install")
    ),
    ("GET", "/console/journeys/{key}/editor"): page(P.JOURNEYS_WRITE),
    ("POST", "/console/journeys/{key}/editor"): page(
        P.JOURNEYS_WRITE, Audit("journey", "path:key", "publish")
    ),
    ("GET", "/console/enrollments/{enrollment_id}"): page(
        P.ENROLLMENTS_READ, Audit("enrollment", "path:enrollment_id")
    ),
    ("POST", "/console/enrollments/{enrollment_id}/pause"): page(
        P.ENROLLMENTS_CONTROL, Audit("enrollment", "path:enrollment_id", "pause")
    ),
    ("POST", "/console/enrollments/{enrollment_id}/resume"): page(
        P.ENROLLMENTS_CONTROL, Audit("enrollment", "path:enrollment_id", "resume")
    ),
    ("POST", "/console/enrollments/{enrollment_id}/cancel"): page(
        P.ENROLLMENTS_CONTROL, Audit("enrollment", "path:enrollment_id", "cancel")
    ),
    ("POST", "/console/tasks/{task_id}/complete"): page(
        P.TASKS_WRITE, Audit("task", "path:task_id", "complete")
    ),
}

# The body limit applies before routing, so large-body routes are plain paths (no parameters).
LARGE_BODY_PATHS = frozenset(path for (_, path), rule in RULES.items() if rule.large_body)
assert not any("{" in path for path in LARGE_BODY_PATHS), "large-body routes must have no path parameters"

# Outside the table, public and without data: the OpenAPI document, the documentation pages (`api/docs.py`)
# and the static files those pages load. They are not API routes; `create_app` refuses any other.
DOCUMENTATION_PAGES = frozenset({"/docs", "/redoc"})
DOCUMENTATION_PATHS = frozenset({"/openapi.json", *DOCUMENTATION_PAGES})
STATIC_PREFIX = "/static"
CONSOLE_STATIC_PREFIX = "/console/static"


def rule_for(method: str, path: str) -> Rule | None:
    """The rule of a route (HEAD is GET's)."""
    return RULES.get(("GET" if method == "HEAD" else method, path))


def routes_without_rules(routes: list[tuple[str, str]]) -> list[str]:
    """`METHOD path` of each (method, path template) that has no rule."""
    return [f"{method} {path}" for method, path in routes if rule_for(method, path) is None]


def unexpected_paths(paths: list[str]) -> list[str]:
    """The paths of routes and mounts outside the table that are neither documentation nor static files."""
    static = (STATIC_PREFIX, CONSOLE_STATIC_PREFIX)
    return [path for path in paths if path not in DOCUMENTATION_PATHS and path not in static]
