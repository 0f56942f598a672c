"""Activities of event management: an offer that lapses passes its seat on; notices reach journeys."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client

from aftercare.enrollment.starter import EnrollmentStarter
from aftercare.events.delivery import deliver_notices, notice_model, offer_input
from aftercare.events.errors import EventNotFound
from aftercare.events.registrations import expire_offer
from models.event_temporal import DeliverNoticesInput, OfferExpiry, OfferInput


class EventActivities:
    """Database changes of offers, and delivery of event notices."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        temporal: Client,
        starter: EnrollmentStarter,
        offer_ttl: timedelta,
    ) -> None:
        self._sessions = sessions
        self._offer_ttl = offer_ttl
        self._temporal = temporal
        self._starter = starter

    @activity.defn(name="expire_event_offer")
    async def expire_event_offer(self, offer: OfferInput) -> OfferExpiry:
        """Lapse the offer unless it was accepted, cancelled or superseded; its seat goes to the next
        on the waitlist. A retry after a commit finds nothing to expire and changes nothing."""
        try:
            async with self._sessions.begin() as session:
                change = await expire_offer(
                    session,
                    offer.event_key,
                    offer.registration_id,
                    offer.number,
                    now=offer.lapsed_at,
                    ttl=self._offer_ttl,
                )
        except EventNotFound:
            return OfferExpiry(expired=False)
        if change is None:
            return OfferExpiry(expired=False)
        return OfferExpiry(
            expired=True,
            notices=[notice_model(notice) for notice in change.notices],
            next_offers=[offer_input(offer.event_key, next_offer) for next_offer in change.offers],
        )

    @activity.defn(name="deliver_event_notices")
    async def deliver_event_notices(self, request: DeliverNoticesInput) -> None:
        """Deliver each notice to the patient's journeys (once per notice id)."""
        await deliver_notices(self._sessions, self._temporal, self._starter, list(request.notices))
