"""Names of the enrollment workflow's type and handlers, for code that talks to it from outside
(the API, activities) without importing workflow code."""

ENROLLMENT_WORKFLOW = "Enrollment"
DELIVER_EVENT = "deliver_event"
# A built-in event: the visit that started a journey was cancelled at its source (HL7 v2 A11, A13). Every
# journey exits on it, whatever its own exit rules, with the outcome the event names.
ENCOUNTER_CANCELLED_EVENT = "encounter.cancelled"
STATE_QUERY = "state"
PAUSE_UPDATE = "pause"
RESUME_UPDATE = "resume"
FHIR_NOTIFICATION_WORKFLOW = "FhirNotification"
FHIR_POLL_WORKFLOW = "FhirPoll"
FHIR_WRITE_BACK_WORKFLOW = "FhirWriteBack"
FHIR_WRITE_BACK_PREFIX = "fhir-write-back-"
BULK_EXPORT_WORKFLOW = "BulkExport"
CAMPAIGN_RUN_WORKFLOW = "CampaignRun"
CAMPAIGN_WORKFLOW_PREFIX = "campaign-"
REFRESH_SEGMENTS_WORKFLOW = "RefreshSegments"
REFRESH_SEGMENTS_SCHEDULE_ID = "aftercare-refresh-segments"
RECONCILE_WORKFLOW = "ReconcileEnrollments"
RECONCILE_SCHEDULE_ID = "aftercare-reconcile-enrollments"
