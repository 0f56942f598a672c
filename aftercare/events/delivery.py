"""Event notices to journeys (through `deliver_event`, once per notice id) and offer workflows to
Temporal: both after the change that caused them has committed."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from aftercare.enrollment.event_triggers import deliver_event
from aftercare.enrollment.starter import EnrollmentStarter
from aftercare.events.registrations import Notice, Offer
from models.event_temporal import (
    EVENT_OFFER_WORKFLOW,
    SETTLE_OFFER,
    EventNoticeModel,
    OfferInput,
    offer_workflow_id,
)


def notice_model(notice: Notice) -> EventNoticeModel:
    """A notice as a Temporal payload."""
    return EventNoticeModel(id=notice.id, type=notice.type, patient_id=notice.patient_id, data=notice.data)


def offer_input(event_key: str, offer: Offer) -> OfferInput:
    """An offer as its workflow's input."""
    return OfferInput(
        event_key=event_key,
        registration_id=offer.registration_id,
        number=offer.number,
        expires_at=offer.expires_at,
    )


async def deliver_notices(
    sessions: async_sessionmaker[AsyncSession],
    client: Client,
    starter: EnrollmentStarter,
    notices: list[EventNoticeModel],
) -> None:
    """Each notice to the patient's journeys; a repeat of a notice id is delivered once."""
    for notice in notices:
        await deliver_event(
            sessions,
            client,
            starter,
            event_type=notice.type,
            patient_id=notice.patient_id,
            data=notice.data,
            event_id=notice.id,
        )


async def start_offers(client: Client, task_queue: str, offers: list[OfferInput]) -> None:
    """One workflow per offer; an offer already being watched is left alone."""
    for offer in offers:
        try:
            await client.start_workflow(
                EVENT_OFFER_WORKFLOW,
                offer,
                id=offer_workflow_id(offer.registration_id, offer.number),
                task_queue=task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            continue


async def settle_offer(client: Client, workflow_id: str) -> None:
    """Tell an offer's workflow that nothing is left to expire (one that has ended already is fine)."""
    try:
        await client.get_workflow_handle(workflow_id).signal(SETTLE_OFFER)
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise
