"""Journey definitions (contract §3) and enrolling patients in them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, status

from aftercare.definitions import check_journey, parse_journey
from aftercare.enrollment.starter import UNKNOWN_PATIENT
from aftercare.store.journeys import JourneyVersionConflict, get_journey, latest_journeys, publish_journey
from aftercare.store.patients import get_patient
from api.bodies import definition_body, read_definition
from api.definition_owner import owned
from api.deps import ServicesDep, SessionDep
from api.security import CurrentPrincipal
from models.api import (
    BatchEnrollmentOutcome,
    BatchEnrollmentRequest,
    BatchEnrollmentResult,
    EnrollmentCreated,
    EnrollmentRequest,
    JourneyCreated,
    JourneyList,
    JourneySummary,
)
from models.journey import JourneyDefinition
from models.tables import Journey
from models.temporal import EnrollmentTrigger

router = APIRouter(prefix="/v1/journeys", tags=["journeys"])


def _summary(journey: JourneyDefinition) -> JourneySummary:
    entry = journey.entry.model_dump(mode="json", exclude_none=True) if journey.entry else None
    return JourneySummary(
        key=journey.key,
        version=journey.version,
        name=journey.name,
        reentry=journey.reentry,
        entry=entry,
        facility=journey.facility,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=JourneyCreated,
    openapi_extra=definition_body("JourneyDefinition"),
    responses={409: {"description": "this key and version exist with other content"}},
)
async def create_journey(
    request: Request, session: SessionDep, response: Response, principal: CurrentPrincipal
) -> JourneyCreated:
    """Publish a journey version (JSON or YAML) for the group or a `facility`; the same content again is
    a no-op."""
    journey = parse_journey(await read_definition(request))
    async with session.begin():
        journey = await owned(session, principal, Journey, journey, what="journey")
        await check_journey(session, journey)
        try:
            outcome = await publish_journey(session, journey)
        except JourneyVersionConflict as error:
            raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
    if outcome == "unchanged":
        response.status_code = status.HTTP_200_OK
    return JourneyCreated(key=journey.key, version=journey.version)


@router.get("", response_model=JourneyList)
async def list_journeys(session: SessionDep) -> JourneyList:
    """The latest version of every journey."""
    return JourneyList(items=[_summary(journey) for journey in await latest_journeys(session)])


@router.get("/{key}", response_model=JourneyDefinition, response_model_exclude_none=True)
async def read_journey(
    key: str, session: SessionDep, version: Annotated[int | None, Query(ge=1)] = None
) -> JourneyDefinition:
    """A journey definition: the latest version, or `?version=`."""
    journey = await get_journey(session, key, version)
    if journey is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"no journey {key!r}" + (f" version {version}" if version else "")
        )
    return journey


@router.post(
    "/{key}/enrollments",
    status_code=status.HTTP_201_CREATED,
    response_model=EnrollmentCreated,
    responses={200: {"description": "the patient is already enrolled: the running enrollment"}},
)
async def enroll_patient(
    key: str, body: EnrollmentRequest, services: ServicesDep, response: Response
) -> EnrollmentCreated:
    """Enroll a patient in the latest version of a journey."""
    async with services.sessions() as session:
        journey = await get_journey(session, key)
        known = journey is not None and await get_patient(session, body.patient_id) is not None
    if journey is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no journey {key!r}")
    if not known:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no patient {body.patient_id!r} in the patient store")
    outcome = await services.starter.enroll(
        journey, body.patient_id, EnrollmentTrigger(kind="manual"), context=body.context
    )
    if outcome.enrollment_id is None:
        raise HTTPException(status.HTTP_409_CONFLICT, outcome.reason or "the patient cannot be enrolled")
    if not outcome.created:
        response.status_code = status.HTTP_200_OK
    return EnrollmentCreated(enrollment_id=outcome.enrollment_id, status="running")


@router.post("/{key}/enrollments/batch", response_model=BatchEnrollmentResult)
async def enroll_patients(
    key: str, body: BatchEnrollmentRequest, services: ServicesDep
) -> BatchEnrollmentResult:
    """Enroll up to 1,000 patients in the latest version of a journey at once."""
    async with services.sessions() as session:
        journey = await get_journey(session, key)
    if journey is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no journey {key!r}")
    patients = [(item.patient_id, {**body.context, **item.context}) for item in body.patients]
    outcomes = await services.starter.enroll_many(journey, patients)
    results = []
    for (patient_id, _), outcome in zip(patients, outcomes, strict=True):
        if outcome.created:
            result = "created"
        elif outcome.reason == UNKNOWN_PATIENT:
            result = "unknown_patient"
        elif outcome.enrollment_id is not None:
            result = "existing"
        else:
            result = "refused"
        results.append(
            BatchEnrollmentOutcome(
                patient_id=patient_id,
                enrollment_id=outcome.enrollment_id,
                result=result,
                reason=outcome.reason,
            )
        )
    return BatchEnrollmentResult(
        created=sum(1 for item in results if item.result == "created"), results=results
    )
