"""One workflow per seat offered from an event's waitlist: it waits until the offer lapses, unless the
offer is settled first, and then passes the seat on. A durable timer, so an offer survives restarts and
lapses exactly once (the database change is conditional on the offer's number)."""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.events import EventActivities
    from activities.options import DB_WRITE
    from models.event_temporal import (
        EVENT_OFFER_WORKFLOW,
        SETTLE_OFFER,
        DeliverNoticesInput,
        OfferExpiry,
        OfferInput,
        OfferResult,
        offer_workflow_id,
    )


@workflow.defn(name=EVENT_OFFER_WORKFLOW)
class EventOfferWorkflow:
    """Watches one offer."""

    def __init__(self) -> None:
        self._settled = False

    @workflow.signal(name=SETTLE_OFFER)
    def settle(self) -> None:
        """The offer was accepted or cancelled: nothing is left to expire."""
        self._settled = True

    @workflow.run
    async def run(self, offer: OfferInput) -> OfferResult:
        """Wait for the offer to lapse or be settled; on lapse, pass the seat on."""
        remaining = offer.expires_at - workflow.now()
        if remaining > timedelta(0):
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: self._settled, timeout=remaining)
        if self._settled:
            return OfferResult(outcome="settled")
        expiry: OfferExpiry = await workflow.execute_activity_method(
            EventActivities.expire_event_offer,
            offer.model_copy(update={"lapsed_at": workflow.now()}),
            **DB_WRITE.options(),
        )
        if expiry.notices:
            await workflow.execute_activity_method(
                EventActivities.deliver_event_notices,
                DeliverNoticesInput(notices=expiry.notices),
                **DB_WRITE.options(),
            )
        for next_offer in expiry.next_offers:
            await workflow.start_child_workflow(
                EVENT_OFFER_WORKFLOW,
                next_offer,
                id=offer_workflow_id(next_offer.registration_id, next_offer.number),
                parent_close_policy=ParentClosePolicy.ABANDON,
            )
        await workflow.wait_condition(workflow.all_handlers_finished)
        return OfferResult(outcome="expired" if expiry.expired else "settled", next_offers=expiry.next_offers)
