"""Patient events from clinical systems."""

from __future__ import annotations

from fastapi import APIRouter, status

from aftercare.enrollment.event_triggers import deliver_event
from api.deps import ServicesDep
from models.api import TriggerAccepted, TriggerRequest

router = APIRouter(prefix="/v1/triggers", tags=["triggers"])


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=TriggerAccepted)
async def post_trigger(body: TriggerRequest, services: ServicesDep) -> TriggerAccepted:
    """Deliver an event to the patient's enrollments and start journeys entered by it (once per `id`);
    an event for a patient not yet in the store is parked (`parked` says why), never lost."""
    delivery = await deliver_event(
        services.sessions,
        services.temporal,
        services.starter,
        event_type=body.type,
        patient_id=body.patient_id,
        data=body.data,
        event_id=body.id,
    )
    return TriggerAccepted(
        id=delivery.event_id,
        delivered_to=delivery.delivered_to,
        started=delivery.started,
        parked=delivery.parked,
    )
