"""Enrollments: listing, status, position and history; pause, resume and cancellation."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from aftercare.store.enrollments import enrollment_history, get_enrollment, list_enrollments
from aftercare.store.resources import received_at
from api.deps import SessionDep, TemporalDep
from models.api import (
    EnrollmentControl,
    EnrollmentList,
    EnrollmentListItem,
    EnrollmentView,
    HistoryItem,
    PauseBody,
)
from models.tables import Enrollment
from models.temporal import EnrollmentState, EnrollmentStatus, FhirResourceRef, PauseRequest
from models.workflow_names import PAUSE_UPDATE, RESUME_UPDATE

router = APIRouter(prefix="/v1/enrollments", tags=["enrollments"])


@router.get("", response_model=EnrollmentList)
async def read_enrollments(
    session: SessionDep,
    journey_key: str | None = None,
    patient_id: str | None = None,
    enrollment_status: Annotated[EnrollmentStatus | None, Query(alias="status")] = None,
    before: Annotated[datetime | None, Query(description="only enrollments started before this time")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EnrollmentList:
    """Enrollments from the database (kept in step with the workflows), newest first."""
    rows = await list_enrollments(
        session,
        journey_key=journey_key,
        patient_id=patient_id,
        status=enrollment_status,
        before=before,
        limit=limit,
    )
    return EnrollmentList(items=[enrollment_item(row) for row in rows])


def enrollment_item(row: Enrollment) -> EnrollmentListItem:
    """An enrollment row as listings show it."""
    return EnrollmentListItem(
        enrollment_id=row.id,
        journey_key=row.journey_key,
        journey_version=row.journey_version,
        patient_id=row.patient_id,
        status=row.status,
        outcome=row.outcome,
        current_step=row.current_step if row.status == "running" else None,
        paused=row.paused,
        started_at=row.started_at,
        facility=row.facility,
    )


@router.get("/{enrollment_id}", response_model=EnrollmentView)
async def read_enrollment(enrollment_id: str, session: SessionDep) -> EnrollmentView:
    """An enrollment's status, current step, pause and history."""
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
        paused=enrollment.paused,
        started_at=enrollment.started_at,
        ended_at=enrollment.ended_at,
        trigger=trigger,
        history=[
            HistoryItem(step=row.step, at=row.at, result=row.result, detail=row.detail) for row in history
        ],
        facility=enrollment.facility,
    )


async def control_enrollment(
    enrollment_id: str, update: str, body: PauseBody, session: SessionDep, temporal: TemporalDep
) -> EnrollmentControl:
    enrollment = await get_enrollment(session, enrollment_id)
    if enrollment is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no enrollment {enrollment_id!r}")
    if enrollment.status != "running":
        raise HTTPException(status.HTTP_409_CONFLICT, f"the enrollment is already {enrollment.status}")
    await session.close()  # no connection held while Temporal answers
    handle = temporal.get_workflow_handle(enrollment.workflow_id)
    try:
        state = await handle.execute_update(
            update, PauseRequest(reason=body.reason), result_type=EnrollmentState
        )
    except WorkflowUpdateFailedError as error:
        cause = error.cause
        message = cause.message if isinstance(cause, ApplicationError) else str(cause or error)
        raise HTTPException(status.HTTP_409_CONFLICT, message) from error
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise
        raise HTTPException(status.HTTP_409_CONFLICT, "the enrollment's workflow has ended") from error
    return EnrollmentControl(
        enrollment_id=enrollment_id, status=state.status, paused=state.paused, current_step=state.current_step
    )


@router.post("/{enrollment_id}/pause", response_model=EnrollmentControl)
async def pause_enrollment(
    enrollment_id: str, session: SessionDep, temporal: TemporalDep, body: PauseBody | None = None
) -> EnrollmentControl:
    """Hold the journey before its next step (a wait in progress runs to its end first)."""
    return await control_enrollment(enrollment_id, PAUSE_UPDATE, body or PauseBody(), session, temporal)


@router.post("/{enrollment_id}/resume", response_model=EnrollmentControl)
async def resume_enrollment(
    enrollment_id: str, session: SessionDep, temporal: TemporalDep, body: PauseBody | None = None
) -> EnrollmentControl:
    """Let a paused journey go on."""
    return await control_enrollment(enrollment_id, RESUME_UPDATE, body or PauseBody(), session, temporal)


@router.post("/{enrollment_id}/cancel", status_code=status.HTTP_202_ACCEPTED, response_model=None)
async def cancel_enrollment(enrollment_id: str, session: SessionDep, temporal: TemporalDep) -> None:
    """Ask a running enrollment to stop; it records `cancelled` as it goes."""
    enrollment = await get_enrollment(session, enrollment_id)
    if enrollment is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no enrollment {enrollment_id!r}")
    if enrollment.status != "running":
        raise HTTPException(status.HTTP_409_CONFLICT, f"the enrollment is already {enrollment.status}")
    await session.close()  # no connection held while Temporal answers
    try:
        await temporal.get_workflow_handle(enrollment.workflow_id).cancel()
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise
        raise HTTPException(
            status.HTTP_409_CONFLICT, "the enrollment's workflow has already ended"
        ) from error
