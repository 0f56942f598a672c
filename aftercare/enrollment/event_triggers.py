"""Patient events from clinical systems (`POST /v1/triggers`): signals to waiting enrollments, and
enrollments in journeys whose entry is that event."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from aftercare.enrollment.starter import ALREADY_HANDLED, EnrollmentStarter, event_trigger
from aftercare.fhir.fhirpath import FhirPathError, is_true
from aftercare.journey_variables import event_view
from aftercare.metrics import TRIGGER_EVENTS
from aftercare.segments.on_events import SegmentEvent, refresh_on_events
from aftercare.store.enrollments import running_enrollments_of
from aftercare.store.journeys import get_journey, journeys_entered_by_event
from aftercare.store.patients import existing_patient_ids
from aftercare.store.resources import load_current
from aftercare.store.triggers import (
    EVENT_REFERENCE,
    EVENT_TRIGGER_SOURCE,
    claim_trigger_event,
    finish_trigger_event,
    forget_parked,
    park,
    parked_event,
)
from models.temporal import PatientEvent
from models.workflow_names import DELIVER_EVENT

log = logging.getLogger(__name__)


UNKNOWN_PATIENT_PARKED = (
    "the patient is not in the patient store: the event is parked, and a repeat with the same id once "
    "the patient is known delivers it"
)


@dataclass(frozen=True)
class EventDelivery:
    """Which running enrollments received the event, and which it started; or why it was parked."""

    event_id: str
    delivered_to: list[str]
    started: list[str]
    parked: str | None = None


async def deliver_event(
    sessions: async_sessionmaker[AsyncSession],
    client: Client,
    starter: EnrollmentStarter,
    *,
    event_type: str,
    patient_id: str,
    data: dict[str, Any],
    event_id: str | None = None,
) -> EventDelivery:
    """Deliver once per event id: a repeat answers what the first delivery did. An event for a patient the
    store does not know is kept (claimed, not processed) and parked with the reason, never dropped: a
    repeat of its id after the patient arrives delivers it.

    No transaction stays open across a call to Temporal; each step holds one connection at a time."""
    TRIGGER_EVENTS.labels(event_type).inc()
    event = PatientEvent(
        id=event_id or str(uuid.uuid4()), type=event_type, data=data, occurred_at=datetime.now(UTC)
    )
    async with sessions.begin() as session:
        known = bool(await existing_patient_ids(session, {patient_id}))
        earlier = await claim_trigger_event(
            session, {"id": event.id, "type": event_type, "patient_id": patient_id, "data": data}
        )
        if not known and earlier is None:
            await park(session, EVENT_TRIGGER_SOURCE, UNKNOWN_PATIENT_PARKED, f"{EVENT_REFERENCE}{event.id}")
    if not known:
        return EventDelivery(event.id, [], [], parked=UNKNOWN_PATIENT_PARKED)
    if earlier is not None and earlier.processed_at is not None:
        return EventDelivery(event.id, list(earlier.delivered_to or []), list(earlier.started or []))
    if earlier is not None:
        event = PatientEvent(
            id=earlier.id, type=earlier.type, data=earlier.data, occurred_at=earlier.received_at
        )

    delivered = await _signal_running(sessions, client, patient_id, event)
    started = await _start_entered(sessions, starter, patient_id, event)
    await refresh_on_events(sessions, starter, [SegmentEvent(patient_id, event.type, event.id)])
    async with sessions.begin() as session:
        await finish_trigger_event(session, event.id, delivered, started)
    return EventDelivery(event.id, delivered, started)


async def _signal_running(
    sessions: async_sessionmaker[AsyncSession], client: Client, patient_id: str, event: PatientEvent
) -> list[str]:
    async with sessions() as session:
        running = await running_enrollments_of(session, patient_id)
        listening = []
        for enrollment in running:
            journey = await get_journey(session, enrollment.journey_key, enrollment.journey_version)
            listened = journey.listened_event_types() if journey is not None else frozenset()
            if listened is None or event.type in listened:
                listening.append(enrollment)
    delivered = []
    for enrollment in listening:
        try:
            await client.get_workflow_handle(enrollment.workflow_id).signal(DELIVER_EVENT, event)
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
            continue
        delivered.append(enrollment.id)
    return delivered


async def _start_entered(
    sessions: async_sessionmaker[AsyncSession],
    starter: EnrollmentStarter,
    patient_id: str,
    event: PatientEvent,
) -> list[str]:
    async with sessions() as session:
        journeys = await journeys_entered_by_event(session, event.type)
        patient = await load_current(session, "Patient", patient_id) if journeys else None
    started = []
    for journey in journeys:
        criteria = journey.entry.event.criteria if journey.entry and journey.entry.event else None
        if criteria:
            variables = {
                "patient": patient,
                "trigger": event_view(event),
                "event": event_view(event),
                "context": {},
            }
            try:
                if not is_true(criteria, patient or {}, variables):
                    continue
            except FhirPathError as error:
                async with sessions.begin() as session:
                    await park(
                        session,
                        "event-trigger",
                        f"journey {journey.key!r} entry criteria failed: {error}",
                        f"event {event.id}",
                    )
                continue
        outcome = await starter.enroll(
            journey, patient_id, event_trigger(event), trigger_key=f"event:{event.id}"
        )
        # A repeat of an event whose first delivery was cut short answers the enrollment it started.
        if outcome.enrollment_id and (outcome.created or outcome.reason == ALREADY_HANDLED):
            started.append(outcome.enrollment_id)
    return started


async def retry_parked_event(
    sessions: async_sessionmaker[AsyncSession], client: Client, starter: EnrollmentStarter, item_id: int
) -> EventDelivery | None:
    """An operator's retry of a parked event (its patient has arrived since): delivered as a repeat of
    its id, and the parked item removed once it is delivered. None when the item is not a parked event
    still waiting for its patient."""
    async with sessions() as session:
        event = await parked_event(session, item_id)
    if event is None or event.processed_at is not None:  # not an event, or one already delivered
        return None
    delivery = await deliver_event(
        sessions,
        client,
        starter,
        event_type=event.type,
        patient_id=event.patient_id,
        data=event.data,
        event_id=event.id,
    )
    if delivery.parked is None:
        async with sessions.begin() as session:
            await forget_parked(session, item_id)
    return delivery
