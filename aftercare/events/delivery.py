"""Event notices to journeys (through `deliver_event`, once per notice id) and offer workflows to
Temporal: both after the change that caused them has committed."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from aftercare.enrollment.event_triggers import IncomingEvent, deliver_events
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


NOTICE_BATCH = 500


async def deliver_notices(
    sessions: async_sessionmaker[AsyncSession],
    client: Client,
    starter: EnrollmentStarter,
    notices: list[EventNoticeModel],
) -> None:
    """The notices to the patients' journeys, `NOTICE_BATCH` at a time through `deliver_events` (a few
    statements per batch, not per notice); a repeat of a notice id is delivered once. A patient's
    notices keep their order: a batch holds at most one notice per patient."""
    for batch in notice_batches(notices):
        await deliver_events(
            sessions,
            client,
            starter,
            [IncomingEvent(notice.type, notice.patient_id, notice.data, notice.id) for notice in batch],
        )


def notice_batches(notices: list[EventNoticeModel], size: int = NOTICE_BATCH) -> list[list[EventNoticeModel]]:
    """The notices in batches of up to `size`, each patient at most once per batch, a patient's later
    notices in later batches (their order kept)."""
    batches: list[list[EventNoticeModel]] = []
    last: dict[str, int] = {}
    for notice in notices:
        index = last.get(notice.patient_id, -1) + 1
        while index < len(batches) and len(batches[index]) >= size:
            index += 1
        if index == len(batches):
            batches.append([])
        batches[index].append(notice)
        last[notice.patient_id] = index
    return batches


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
