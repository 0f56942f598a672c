"""The custom search attributes every enrollment workflow carries, so operators can filter by patient,
journey, status and step in the Temporal Web UI."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

PATIENT_ID = SearchAttributeKey.for_keyword("PatientId")
JOURNEY_KEY = SearchAttributeKey.for_keyword("JourneyKey")
JOURNEY_VERSION = SearchAttributeKey.for_int("JourneyVersion")
ENROLLMENT_STATUS = SearchAttributeKey.for_keyword("EnrollmentStatus")
CURRENT_STEP = SearchAttributeKey.for_keyword("CurrentStep")
CAMPAIGN_KEY = SearchAttributeKey.for_keyword("CampaignKey")

ALL_SEARCH_ATTRIBUTES: tuple[SearchAttributeKey, ...] = (
    PATIENT_ID,
    JOURNEY_KEY,
    JOURNEY_VERSION,
    ENROLLMENT_STATUS,
    CURRENT_STEP,
    CAMPAIGN_KEY,
)

ENROLLMENT_WORKFLOW_PREFIX = "enrollment-"


def enrollment_workflow_id(enrollment_id: str) -> str:
    """The workflow id of an enrollment, derived from its id."""
    return ENROLLMENT_WORKFLOW_PREFIX + enrollment_id
