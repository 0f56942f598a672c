"""Workflows: the deterministic, durable code the worker runs (in the sandbox in tests), importing no I/O.

Enrollments (one per patient and journey, code journeys found in `code_journeys.py`), the
reconciliation that keeps their projections in step, keeping the patient store in step with FHIR
sources, segment refreshes, campaign runs, event offers and bulk exports."""

from workflows.bulk_export import BulkExportWorkflow
from workflows.campaign import CampaignRunWorkflow
from workflows.enrollment import EnrollmentWorkflow
from workflows.event_offer import EventOfferWorkflow
from workflows.fhir_sync import FhirNotificationWorkflow, FhirPollWorkflow
from workflows.fhir_write_back import FhirWriteBackWorkflow
from workflows.reconcile import ReconcileEnrollmentsWorkflow
from workflows.segments import RefreshSegmentsWorkflow

WORKFLOWS: list[type] = [
    EnrollmentWorkflow,
    ReconcileEnrollmentsWorkflow,
    FhirNotificationWorkflow,
    FhirPollWorkflow,
    FhirWriteBackWorkflow,
    BulkExportWorkflow,
    RefreshSegmentsWorkflow,
    CampaignRunWorkflow,
    EventOfferWorkflow,
]

__all__ = [
    "WORKFLOWS",
    "BulkExportWorkflow",
    "CampaignRunWorkflow",
    "EnrollmentWorkflow",
    "EventOfferWorkflow",
    "FhirNotificationWorkflow",
    "FhirPollWorkflow",
    "FhirWriteBackWorkflow",
    "ReconcileEnrollmentsWorkflow",
    "RefreshSegmentsWorkflow",
]
