"""Names of the enrollment workflow's type and handlers, for code that talks to it from outside
(the API, activities) without importing workflow code."""

ENROLLMENT_WORKFLOW = "Enrollment"
DELIVER_EVENT = "deliver_event"
STATE_QUERY = "state"
PAUSE_UPDATE = "pause"
RESUME_UPDATE = "resume"
FHIR_NOTIFICATION_WORKFLOW = "FhirNotification"
FHIR_POLL_WORKFLOW = "FhirPoll"
BULK_EXPORT_WORKFLOW = "BulkExport"
CAMPAIGN_RUN_WORKFLOW = "CampaignRun"
CAMPAIGN_WORKFLOW_PREFIX = "campaign-"
REFRESH_SEGMENTS_WORKFLOW = "RefreshSegments"
