"""The unified patient profile ('patient 360'): the person's profile, clinical summary, identity and
timeline across all of their records."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.reachability import reachability
from aftercare.security.principal import Principal
from aftercare.store.clinical_summary import clinical_summary
from aftercare.store.consents import current_consents
from aftercare.store.enrollments import enrollments_of
from aftercare.store.identity import identifiers_of_records, merges_of, person_of, records_of
from aftercare.store.messages import list_messages
from aftercare.store.patient_search import CursorInvalidError, PatientQuery, search_patients
from aftercare.store.patients import get_patient
from aftercare.store.timeline import timeline
from api.deps import ServicesDep, SessionDep
from api.routes.enrollments import enrollment_item
from api.routes.messages import message_views
from api.security import CurrentPrincipal
from models.api import (
    AllergyView,
    AppointmentView,
    ChannelReach,
    ClinicalSummary,
    ConditionView,
    ConsentView,
    EncounterView,
    IdentityMergeView,
    IdentityView,
    LinkedRecordView,
    MedicationView,
    ObservationView,
    PatientIdentifierView,
    PatientSummary,
    PatientView,
    ProcedureView,
    TimelineItem,
)
from models.journey import CHANNELS
from models.lookup_api import PatientList
from models.roles import Permission
from models.tables import Patient, PatientLink

router = APIRouter(prefix="/v1/patients", tags=["patients"])

# Timeline events that are clinical data; messages and enrollments are not.
CLINICAL_TIMELINE_KINDS = frozenset({"encounter", "condition", "procedure", "appointment"})
# What a caller without `clinical:read` does not see (`PatientView.redacted` lists it).
REDACTED_FOR_NON_CLINICAL = [
    "clinical",
    "timeline.clinical",
    "recent_messages.subject",
    "recent_messages.body",
]


async def resolve_person(session: AsyncSession, patient_id: str) -> str:
    """The person a patient id belongs to now (itself unless merged away); 404 for an unknown id."""
    person = await person_of(session, patient_id)
    if person is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no patient {patient_id!r}")
    return person


async def identity_view(session: AsyncSession, person_id: str) -> IdentityView:
    """The person's records, their identifiers and the merges that involved them."""
    records = await records_of(session, person_id)
    rows = await session.execute(
        select(Patient.id, Patient.name, Patient.birth_date, PatientLink.merge_id)
        .outerjoin(PatientLink, PatientLink.record_id == Patient.id)
        .where(Patient.id.in_(records))
    )
    found = {row.id: row for row in rows}
    return IdentityView(
        person_id=person_id,
        records=[
            LinkedRecordView(
                record_id=record,
                name=found[record].name,
                birth_date=found[record].birth_date,
                merge_id=found[record].merge_id,
            )
            for record in records
            if record in found
        ],
        identifiers=[
            PatientIdentifierView.model_validate(row)
            for row in await identifiers_of_records(session, records)
        ],
        merges=[IdentityMergeView.model_validate(row) for row in await merges_of(session, records)],
    )


async def _clinical(session: AsyncSession, records: list[str], observation_codes: int) -> ClinicalSummary:
    summary = await clinical_summary(session, records, observation_codes=observation_codes)
    return ClinicalSummary(
        active_conditions=[ConditionView.model_validate(row) for row in summary.active_conditions],
        latest_observations=[ObservationView.model_validate(row) for row in summary.latest_observations],
        active_medications=[MedicationView.model_validate(row) for row in summary.active_medications],
        recent_encounters=[EncounterView.model_validate(row) for row in summary.recent_encounters],
        allergies=[AllergyView.model_validate(row) for row in summary.allergies],
        recent_procedures=[ProcedureView.model_validate(row) for row in summary.recent_procedures],
        upcoming_appointments=[AppointmentView.model_validate(row) for row in summary.upcoming_appointments],
    )


_Search = Annotated[str | None, Query(min_length=1, max_length=300)]


@router.get("", response_model=PatientList)
async def list_patients(
    session: SessionDep,
    services: ServicesDep,
    name: Annotated[_Search, Query(description="each word starts a word of the name, any case")] = None,
    birthdate: Annotated[date | None, Query(description="the birth date, YYYY-MM-DD")] = None,
    identifier: Annotated[_Search, Query(description="`system|value`, or a value in any system")] = None,
    phone: Annotated[_Search, Query(description="written in any way; compared in E.164")] = None,
    email: _Search = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=1000, description="the last page's `next_cursor`")] = None,
) -> PatientList:
    """Find patients by name, birth date, identifier, phone or email (all given must match), one item per
    person in name order, with only what tells them apart; `GET /v1/patients/{id}` gives the rest."""
    query = PatientQuery(name=name, birth_date=birthdate, identifier=identifier, phone=phone, email=email)
    try:
        page = await search_patients(
            session,
            query,
            phone_region=services.settings.phone_default_region,
            limit=limit,
            cursor=cursor,
        )
    except CursorInvalidError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from error
    return PatientList(
        items=[PatientSummary.model_validate(patient) for patient in page.patients],
        next_cursor=page.next_cursor,
    )


@router.get("/{patient_id}", response_model=PatientView)
async def read_patient(
    patient_id: str,
    session: SessionDep,
    principal: CurrentPrincipal,
    timeline_limit: Annotated[int, Query(ge=0, le=500)] = 50,
    observation_codes: Annotated[int, Query(ge=0, le=500)] = 20,
) -> PatientView:
    """Profile, consents, enrollments and recent messages; the clinical summary, identity and timeline over
    all of the person's records (`observation_codes`: how many codes' latest observations; `timeline_limit`:
    how many timeline events). A merged-away id answers with the surviving profile (`resolved_from`).
    Without `clinical:read` (the non-clinical role) the clinical parts are left out, as `redacted` says."""
    return await patient_view(session, patient_id, principal, timeline_limit, observation_codes)


async def patient_view(
    session: AsyncSession, patient_id: str, principal: Principal, timeline_limit: int, observation_codes: int
) -> PatientView:
    """The unified profile as `principal` may see it (the API's answer and the console's patient page)."""
    clinical_access = principal.can(Permission.CLINICAL_READ)
    person = await resolve_person(session, patient_id)
    patient = await get_patient(session, person)
    if patient is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no patient {patient_id!r}")
    records = await records_of(session, person)
    reach = await reachability(session, patient, CHANNELS)
    consents = await current_consents(session, person)
    enrollments = await enrollments_of(session, person)
    messages = await message_views(session, await list_messages(session, patient_id=person, limit=20))
    events = await timeline(session, records, limit=timeline_limit)
    if not clinical_access:
        events = [event for event in events if event.kind not in CLINICAL_TIMELINE_KINDS]
        messages = [message.model_copy(update={"subject": None, "body": None}) for message in messages]
    return PatientView(
        id=patient.id,
        name=patient.name,
        given=patient.given,
        family=patient.family,
        birth_date=patient.birth_date,
        gender=patient.gender,
        phone=patient.phone,
        phone_status=patient.phone_status,
        email=patient.email,
        language=patient.language,
        timezone=patient.timezone,
        deceased=patient.deceased,
        preferred_channel=patient.preferred_channel,
        consents=[ConsentView.model_validate(consent, from_attributes=True) for consent in consents],
        channels=[
            ChannelReach(
                channel=channel, reachable=channel in reach.addresses, reason=reach.blocked.get(channel)
            )
            for channel in CHANNELS
        ],
        enrollments=[enrollment_item(row) for row in enrollments],
        recent_messages=messages,
        resolved_from=patient_id if patient_id != person else None,
        clinical=await _clinical(session, records, observation_codes) if clinical_access else None,
        identity=await identity_view(session, person),
        timeline=[
            TimelineItem(
                at=event.at,
                kind=event.kind,
                title=event.title,
                status=event.status,
                ref=event.ref,
                patient_id=event.patient_id,
            )
            for event in events
        ],
        redacted=[] if clinical_access else REDACTED_FOR_NON_CLINICAL,
    )
