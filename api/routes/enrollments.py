"""Enrollments: status, position and history; cancellation."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from temporalio.service import RPCError, RPCStatusCode

from aftercare.store.enrollments import enrollment_history, get_enrollment
from aftercare.store.resources import received_at
from api.deps import SessionDep, TemporalDep
from models.api import EnrollmentView, HistoryItem
from models.temporal import FhirResourceRef

router = APIRouter(prefix="/v1/enrollments", tags=["enrollments"])


@router.get("/{enrollment_id}", response_model=EnrollmentView)
async def read_enrollment(enrollment_id: str, session: SessionDep) -> EnrollmentView:
    """An enrollment's status, current step and history."""
    enrollment = await get_enrollment(session, enrollment_id)
    if enrollment is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no enrollment {enrollment_id!r}")
    history = await enrollment_history(session, enrollment_id)
    trigger = dict(enrollment.trigger)
    if trigger.get("kind") == "fhir" and trigger.get("resource"):
        received = await received_at(session, FhirResourceRef.model_validate(trigger["resource"]))
        trigger["received_at"] = received.isoformat() if received else None
    return EnrollmentView(
        enrollment_id=enrollment.id,
        journey_key=enrollment.journey_key,
        journey_version=enrollment.journey_version,
        patient_id=enrollment.patient_id,
        status=enrollment.status,
        outcome=enrollment.outcome,
        current_step=enrollment.current_step if enrollment.status == "running" else None,
        started_at=enrollment.started_at,
        ended_at=enrollment.ended_at,
        trigger=trigger,
        history=[
            HistoryItem(step=row.step, at=row.at, result=row.result, detail=row.detail) for row in history
        ],
    )


@router.post("/{enrollment_id}/cancel", status_code=status.HTTP_202_ACCEPTED, response_model=None)
async def cancel_enrollment(enrollment_id: str, session: SessionDep, temporal: TemporalDep) -> None:
    """Ask a running enrollment to stop; it records `cancelled` as it goes."""
    enrollment = await get_enrollment(session, enrollment_id)
    if enrollment is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no enrollment {enrollment_id!r}")
    if enrollment.status != "running":
        raise HTTPException(status.HTTP_409_CONFLICT, f"the enrollment is already {enrollment.status}")
    try:
        await temporal.get_workflow_handle(enrollment.workflow_id).cancel()
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise
        raise HTTPException(
            status.HTTP_409_CONFLICT, "the enrollment's workflow has already ended"
        ) from error
