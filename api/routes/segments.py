"""Segments (contract §5): publish, list, preview and explain, the predefined library, and the
segments of one patient."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, status

from aftercare.security.minimum_necessary import sees_patients, shown_count, shown_counts
from aftercare.segments.dynamic import SegmentDriver
from aftercare.segments.evaluate import preview, segments_of_patient
from aftercare.segments.library import library_segment, segment_library
from aftercare.segments.membership import current_members
from aftercare.segments.validation import check_segment, parse_segment
from aftercare.store.patients import get_patient
from aftercare.store.segments import SegmentVersionConflict, get_segment, latest_segments, publish_segment
from api.bodies import definition_body, read_definition
from api.definition_owner import owned
from api.deps import ServicesDep, SessionDep
from api.security import CurrentPrincipal
from models.segment import SegmentDefinition
from models.segment_api import (
    CriterionCountView,
    PatientSegments,
    SegmentCreated,
    SegmentList,
    SegmentMembers,
    SegmentPreview,
    SegmentRefreshed,
    SegmentSummary,
)
from models.segment_tables import Segment

router = APIRouter(prefix="/v1/segments", tags=["segments"])
patients_router = APIRouter(prefix="/v1/patients", tags=["segments"])

AsOf = Annotated[datetime | None, Query(description="evaluation time (ISO 8601); default now")]


def _as_of(value: datetime | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _summary(segment: SegmentDefinition) -> SegmentSummary:
    return SegmentSummary(
        key=segment.key,
        version=segment.version,
        name=segment.name,
        description=segment.description,
        facility=segment.facility,
    )


async def _publish(
    session: SessionDep, segment: SegmentDefinition, response: Response, principal: CurrentPrincipal
) -> SegmentCreated:
    async with session.begin():
        segment = await owned(session, principal, Segment, segment, what="segment")
        await check_segment(session, segment)
        try:
            outcome = await publish_segment(session, segment)
        except SegmentVersionConflict as error:
            raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
    if outcome == "unchanged":
        response.status_code = status.HTTP_200_OK
    return SegmentCreated(key=segment.key, version=segment.version)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SegmentCreated,
    openapi_extra=definition_body("SegmentDefinition"),
    responses={409: {"description": "this key and version exist with other content"}},
)
async def create_segment(
    request: Request, session: SessionDep, response: Response, principal: CurrentPrincipal
) -> SegmentCreated:
    """Publish a segment version (JSON or YAML); the same content again is a no-op. Invalid criteria
    answer 422 with the path of each problem."""
    return await _publish(session, parse_segment(await read_definition(request)), response, principal)


@router.get("", response_model=SegmentList)
async def list_segments(session: SessionDep) -> SegmentList:
    """The latest version of every segment."""
    return SegmentList(items=[_summary(segment) for segment in await latest_segments(session)])


@router.get("/library", response_model=SegmentList)
async def read_segment_library() -> SegmentList:
    """The predefined segments, ready to install."""
    return SegmentList(items=[_summary(segment) for segment in segment_library()])


@router.post(
    "/library/{key}/install",
    status_code=status.HTTP_201_CREATED,
    response_model=SegmentCreated,
    responses={200: {"description": "already installed"}},
)
async def install_segment(
    key: str, session: SessionDep, response: Response, principal: CurrentPrincipal
) -> SegmentCreated:
    """Publish a predefined segment."""
    segment = library_segment(key)
    if segment is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no predefined segment {key!r}")
    return await _publish(session, segment, response, principal)


@router.get(
    "/{key}", response_model=SegmentDefinition, response_model_exclude_none=True, response_model_by_alias=True
)
async def read_segment(
    key: str, session: SessionDep, version: Annotated[int | None, Query(ge=1)] = None
) -> SegmentDefinition:
    """A segment definition: the latest version, or `?version=`."""
    segment = await get_segment(session, key, version)
    if segment is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"no segment {key!r}" + (f" version {version}" if version else "")
        )
    return segment


@router.get("/{key}/preview", response_model=SegmentPreview)
async def preview_segment(
    key: str,
    session: SessionDep,
    principal: CurrentPrincipal,
    as_of: AsOf = None,
    sample: Annotated[int, Query(ge=0, le=1000)] = 20,
) -> SegmentPreview:
    """The segment's size, a sample of members (by patient id), and how many patients each criterion
    holds for on its own, described in words, at `as_of`. Without `clinical:read`: counts only, those
    from 1 to 10 shown as "<11"."""
    segment = await get_segment(session, key)
    if segment is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no segment {key!r}")
    moment = _as_of(as_of)
    exact = sees_patients(principal)
    result = await preview(session, segment, moment, sample if exact else 0)
    return SegmentPreview(
        key=segment.key,
        version=segment.version,
        as_of=moment,
        **asdict(shown_count(result.count, exact=exact)),
        sample=result.sample if exact else [],
        criteria=[
            CriterionCountView(
                path=c.path, description=c.description, **asdict(shown_count(c.count, exact=exact))
            )
            for c in result.criteria
        ],
        redacted=[] if exact else ["sample"],
    )


@router.post("/{key}/refresh", response_model=SegmentRefreshed)
async def refresh_segment(
    key: str, services: ServicesDep, principal: CurrentPrincipal, as_of: AsOf = None
) -> SegmentRefreshed:
    """Refresh the segment's membership now (or at `as_of`), as the schedule does: record who entered
    and who left, enroll newcomers in journeys whose entry is this segment, and send `segment.exited`
    to the running enrollments in them of those who left."""
    async with services.sessions() as session:
        found = await get_segment(session, key)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no segment {key!r}")
    moment = _as_of(as_of)
    driver = SegmentDriver(services.sessions, services.temporal, services.starter)
    summary = (await driver.refresh(key, moment))[0]
    counts = summary.model_dump()
    key = counts.pop("key")
    shown, redacted = shown_counts(counts, exact=sees_patients(principal))
    return SegmentRefreshed(key=key, as_of=moment, **shown, redacted=redacted)


@router.get("/{key}/members", response_model=SegmentMembers)
async def segment_members(key: str, session: SessionDep, principal: CurrentPrincipal) -> SegmentMembers:
    """The segment's members as of its last refresh, and their count. Without `clinical:read`: the
    count only, one from 1 to 10 shown as "<11"."""
    if await get_segment(session, key) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no segment {key!r}")
    members = list(await current_members(session, key))
    exact = sees_patients(principal)
    return SegmentMembers(
        key=key,
        members=members if exact else [],
        **asdict(shown_count(len(members), exact=exact)),
        redacted=[] if exact else ["members"],
    )


@patients_router.get("/{patient_id}/segments", response_model=PatientSegments)
async def patient_segments(patient_id: str, session: SessionDep, as_of: AsOf = None) -> PatientSegments:
    """The segments (latest versions) the patient is in at `as_of`."""
    if await get_patient(session, patient_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no patient {patient_id!r} in the patient store")
    moment = _as_of(as_of)
    keys = await segments_of_patient(session, patient_id, await latest_segments(session), moment)
    return PatientSegments(patient_id=patient_id, as_of=moment, segments=keys)
