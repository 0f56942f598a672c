"""Temporal inputs and results of event management: one offer workflow per seat offered from a waitlist."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from models.base import TemporalModel

EVENT_OFFER_WORKFLOW = "EventOffer"
SETTLE_OFFER = "settle_offer"


def offer_workflow_id(registration_id: str, number: int) -> str:
    """The workflow id of a registration's `number`th offer: one workflow per offer, ever."""
    return f"event-offer-{registration_id}-{number}"


class OfferInput(TemporalModel):
    """A seat offered to a waitlisted registration until `expires_at`."""

    event_key: str
    registration_id: str
    number: int
    expires_at: datetime
    # The workflow's clock when the offer lapsed: the next offer runs from it.
    lapsed_at: datetime | None = None


class OfferResult(TemporalModel):
    """How the offer ended: `settled` (accepted, cancelled or closed before it lapsed) or `expired`,
    and the offers it passed the seat on to."""

    outcome: str
    next_offers: list[OfferInput] = []


class EventNoticeModel(TemporalModel):
    """A patient event to deliver (`event.offered`, ...), with its idempotency id."""

    id: str
    type: str
    patient_id: str
    data: dict[str, Any] = {}


class OfferExpiry(TemporalModel):
    """What an expired offer changed: the events to deliver and the next offers."""

    expired: bool
    notices: list[EventNoticeModel] = []
    next_offers: list[OfferInput] = []


class DeliverNoticesInput(TemporalModel):
    """Patient events to deliver to journeys."""

    notices: list[EventNoticeModel] = []


class InviteLinkInput(TemporalModel):
    """A self-service link for a patient and an event, for an `invite` step."""

    event_key: str
    patient_id: str
    valid_days: int = 14


class InviteLink(TemporalModel):
    """What an invitation's message may say: `invite.url`, `invite.title`, `invite.event_key`,
    `invite.expires_at`."""

    url: str
    title: str
    event_key: str
    expires_at: datetime
