"""The unified patient profile."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from aftercare.reachability import reachability
from aftercare.store.consents import current_consents
from aftercare.store.enrollments import enrollments_of
from aftercare.store.messages import list_messages
from aftercare.store.patients import get_patient
from api.deps import SessionDep
from api.routes.enrollments import enrollment_item
from api.routes.messages import message_view
from models.api import ChannelReach, ConsentView, PatientView
from models.journey import CHANNELS

router = APIRouter(prefix="/v1/patients", tags=["patients"])


@router.get("/{patient_id}", response_model=PatientView)
async def read_patient(patient_id: str, session: SessionDep) -> PatientView:
    """Profile, enrollments and recent messages."""
    patient = await get_patient(session, patient_id)
    if patient is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no patient {patient_id!r}")
    reach = await reachability(session, patient, CHANNELS)
    consents = await current_consents(session, patient_id)
    enrollments = await enrollments_of(session, patient_id)
    messages = await list_messages(session, patient_id=patient_id, limit=20)
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
        recent_messages=[message_view(row) for row in messages],
    )
