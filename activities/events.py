"""Activities of event management: an offer that lapses passes its seat on; notices reach journeys;
an invitation gets its self-service link."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from aftercare.enrollment.starter import EnrollmentStarter
from aftercare.events.delivery import deliver_notices, notice_model, offer_input
from aftercare.events.errors import EventNotFound
from aftercare.events.links import self_service_link
from aftercare.events.registrations import expire_offer
from models.event_tables import Event
from models.event_temporal import DeliverNoticesInput, InviteLink, InviteLinkInput, OfferExpiry, OfferInput
from models.tables import Patient


class EventActivities:
    """Database changes of offers, and delivery of event notices."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        temporal: Client,
        starter: EnrollmentStarter,
        offer_ttl: timedelta,
        *,
        link_secret: bytes = b"",
        public_base_url: str | None = None,
    ) -> None:
        self._sessions = sessions
        self._link_secret = link_secret
        self._public_base_url = public_base_url
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

    @activity.defn(name="event_invite_link")
    async def event_invite_link(self, request: InviteLinkInput) -> InviteLink:
        """The patient's self-service link to a published event (an `invite` step's message carries
        it); an event that is not open for registration fails the step, naming why."""
        async with self._sessions() as session:
            event = await session.get(Event, request.event_key)
            known = await session.get(Patient, request.patient_id) is not None
        if event is None or event.status != "published":
            state = "unknown" if event is None else event.status
            raise ApplicationError(
                f"the event {request.event_key!r} is {state}: nobody can be invited to it",
                type="InvalidInput",
                non_retryable=True,
            )
        if not known:
            raise ApplicationError(
                f"no patient {request.patient_id!r}", type="PatientNotFound", non_retryable=True
            )
        link = self_service_link(
            self._link_secret,
            self._public_base_url,
            event.key,
            request.patient_id,
            ttl=timedelta(days=request.valid_days),
        )
        return InviteLink(url=link.url, title=event.title, event_key=event.key, expires_at=link.expires_at)
