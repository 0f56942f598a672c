"""Patient events from clinical systems (`POST /v1/triggers`): signals to waiting enrollments, and
enrollments in journeys whose entry is that event."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from aftercare.enrollment.starter import ALREADY_HANDLED, EnrollmentStarter, event_trigger
from aftercare.fhir.fhirpath import FhirPathError, is_true
from aftercare.journey_variables import event_view
from aftercare.metrics import TRIGGER_EVENTS
from aftercare.segments.on_events import SegmentEvent, refreshes_of, start_refreshes
from aftercare.store.enrollments import running_enrollments_of_many
from aftercare.store.journeys import get_journey, journeys_entered_by_event
from aftercare.store.patients import existing_patient_ids
from aftercare.store.resources import load_current
from aftercare.store.segments import segments_refreshed_by
from aftercare.store.triggers import (
    EVENT_REFERENCE,
    EVENT_TRIGGER_SOURCE,
    claim_trigger_events,
    finish_trigger_events,
    forget_parked,
    park,
    parked_event,
)
from models.journey import JourneyDefinition
from models.segment import SegmentDefinition
from models.tables import Enrollment
from models.temporal import EnrollmentTrigger, PatientEvent
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


@dataclass(frozen=True)
class IncomingEvent:
    """A patient event to deliver: its type, patient, data and (idempotency) id."""

    type: str
    patient_id: str
    data: dict[str, Any]
    id: str


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
    event = IncomingEvent(event_type, patient_id, data, event_id or str(uuid.uuid4()))
    return (await deliver_events(sessions, client, starter, [event]))[0]


async def deliver_events(
    sessions: async_sessionmaker[AsyncSession],
    client: Client,
    starter: EnrollmentStarter,
    incoming: Sequence[IncomingEvent],
    *,
    concurrency: int = 32,
    then: Callable[[AsyncSession], Awaitable[None]] | None = None,
) -> list[EventDelivery]:
    """`deliver_event` for a batch, with the database work of the whole batch in a few statements: one
    transaction claims every id (and parks the unknown patients'), one session finds the running
    enrollments that listen and the journeys the types enter, one transaction marks them all
    delivered. The Temporal calls (a signal per listening enrollment, a start per entered journey) are
    made `concurrency` at a time. Each id is still delivered once; answers come back in order. `then`
    runs in the transaction that marks them delivered (the event outbox deletes its rows there)."""
    wanted = list({event.id: event for event in incoming}.values())
    for event in wanted:
        TRIGGER_EVENTS.labels(event.type).inc()
    async with sessions.begin() as session:
        known = await existing_patient_ids(session, {event.patient_id for event in wanted})
        earlier = await claim_trigger_events(
            session,
            [{"id": e.id, "type": e.type, "patient_id": e.patient_id, "data": e.data} for e in wanted],
        )
        for event in wanted:
            if event.patient_id not in known and event.id not in earlier:
                await park(
                    session, EVENT_TRIGGER_SOURCE, UNKNOWN_PATIENT_PARKED, f"{EVENT_REFERENCE}{event.id}"
                )
    answers: dict[str, EventDelivery] = {}
    due: list[PatientEvent] = []
    now = datetime.now(UTC)
    for event in wanted:
        before = earlier.get(event.id)
        if event.patient_id not in known:
            answers[event.id] = EventDelivery(event.id, [], [], parked=UNKNOWN_PATIENT_PARKED)
        elif before is not None and before.processed_at is not None:
            answers[event.id] = EventDelivery(
                event.id, list(before.delivered_to or []), list(before.started or [])
            )
        elif before is not None:
            due.append(
                PatientEvent(id=before.id, type=before.type, data=before.data, occurred_at=before.received_at)
            )
        else:
            due.append(PatientEvent(id=event.id, type=event.type, data=event.data, occurred_at=now))
    patient_of = {event.id: event.patient_id for event in wanted}
    delivered: dict[str, list[str]] = {}
    started: dict[str, list[str]] = {}
    if due:
        async with sessions() as session:
            found = await _look_up(session, patient_of, due)
        delivered = await _signal_running(client, found, patient_of, due, asyncio.Semaphore(concurrency))
        started = await _start_entered(sessions, starter, found, patient_of, due, concurrency)
        events = [SegmentEvent(patient_of[e.id], e.type, e.id) for e in due]
        await start_refreshes(starter, refreshes_of(found.segments, events))
    if due or then is not None:
        async with sessions.begin() as session:
            await finish_trigger_events(session, {e.id: (delivered[e.id], started[e.id]) for e in due})
            if then is not None:
                await then(session)
    for done in due:
        answers[done.id] = EventDelivery(done.id, delivered[done.id], started[done.id])
    return [answers[event.id] for event in incoming]


@dataclass(frozen=True)
class _Found:
    """What delivering a batch needs to know, read in one session: each patient's running enrollments,
    the event types each of their journeys listens for (None: every type), the journeys each type
    enters, the patients' resources (for entry criteria) and the segments the types refresh."""

    running: dict[str, list[Enrollment]]
    listens: dict[tuple[str, int], frozenset[str] | None]
    entered: dict[str, list[JourneyDefinition]]
    resources: dict[str, dict[str, Any] | None]
    segments: list[SegmentDefinition]


async def _look_up(session: AsyncSession, patient_of: dict[str, str], events: list[PatientEvent]) -> _Found:
    running: dict[str, list[Enrollment]] = {}
    listens: dict[tuple[str, int], frozenset[str] | None] = {}
    for enrollment in await running_enrollments_of_many(session, {patient_of[e.id] for e in events}):
        running.setdefault(enrollment.patient_id, []).append(enrollment)
        version = (enrollment.journey_key, enrollment.journey_version)
        if version not in listens:
            journey = await get_journey(session, *version)
            listens[version] = journey.listened_event_types() if journey is not None else frozenset()
    types = {event.type for event in events}
    entered = {kind: await journeys_entered_by_event(session, kind) for kind in types}
    judged = {patient_of[e.id] for e in events if any(_criteria(journey) for journey in entered[e.type])}
    resources = {patient: await load_current(session, "Patient", patient) for patient in sorted(judged)}
    segments = await segments_refreshed_by(session, types)
    return _Found(running, listens, entered, resources, segments)


async def _signal_running(
    client: Client,
    found: _Found,
    patient_of: dict[str, str],
    events: list[PatientEvent],
    gate: asyncio.Semaphore,
) -> dict[str, list[str]]:
    """Signal each event to its patient's running enrollments whose journey listens for its type; the
    enrollments it reached, by event id."""

    async def signal(event: PatientEvent) -> list[str]:
        reached = []
        for enrollment in found.running.get(patient_of[event.id], []):
            listened = found.listens[(enrollment.journey_key, enrollment.journey_version)]
            if listened is not None and event.type not in listened:
                continue
            try:
                async with gate:
                    await client.get_workflow_handle(enrollment.workflow_id).signal(DELIVER_EVENT, event)
            except RPCError as error:
                if error.status != RPCStatusCode.NOT_FOUND:
                    raise
                continue
            reached.append(enrollment.id)
        return reached

    reached = await asyncio.gather(*(signal(event) for event in events))
    return {event.id: ids for event, ids in zip(events, reached, strict=True)}


async def _start_entered(
    sessions: async_sessionmaker[AsyncSession],
    starter: EnrollmentStarter,
    found: _Found,
    patient_of: dict[str, str],
    events: list[PatientEvent],
    concurrency: int,
) -> dict[str, list[str]]:
    """Enroll each event's patient in the journeys its type enters (criteria permitting), a journey's
    patients in one allocation; the enrollments started (or found already started), by event id."""
    started: dict[str, list[str]] = {event.id: [] for event in events}
    resources = found.resources
    for kind, journeys in found.entered.items():
        for journey in journeys:
            chosen = [
                event
                for event in events
                if event.type == kind
                and await _meets(sessions, journey, event, resources.get(patient_of[event.id]))
            ]
            while chosen:  # one allocation per round of distinct patients
                batch: dict[str, PatientEvent] = {}
                later: list[PatientEvent] = []
                for event in chosen:
                    if patient_of[event.id] in batch:
                        later.append(event)
                    else:
                        batch[patient_of[event.id]] = event
                chosen = later
                outcomes = await starter.enroll_many(
                    journey,
                    [(patient, {}) for patient in batch],
                    concurrency=concurrency,
                    trigger_of=partial(_event_trigger_of, batch),
                )
                for event, outcome in zip(batch.values(), outcomes, strict=True):
                    # A repeat of an event whose first delivery was cut short answers the enrollment
                    # it started.
                    if outcome.enrollment_id and (outcome.created or outcome.reason == ALREADY_HANDLED):
                        started[event.id].append(outcome.enrollment_id)
    return started


def _event_trigger_of(batch: dict[str, PatientEvent], patient_id: str) -> tuple[EnrollmentTrigger, str]:
    event = batch[patient_id]
    return event_trigger(event), f"event:{event.id}"


def _criteria(journey: JourneyDefinition) -> str | None:
    return journey.entry.event.criteria if journey.entry and journey.entry.event else None


async def _meets(
    sessions: async_sessionmaker[AsyncSession],
    journey: JourneyDefinition,
    event: PatientEvent,
    patient: dict[str, Any] | None,
) -> bool:
    """Whether the event passes the journey's entry criteria; criteria that fail to evaluate park the
    event for that journey (it does not enter)."""
    criteria = _criteria(journey)
    if not criteria:
        return True
    variables = {"patient": patient, "trigger": event_view(event), "event": event_view(event), "context": {}}
    try:
        return is_true(criteria, patient or {}, variables)
    except FhirPathError as error:
        async with sessions.begin() as session:
            await park(
                session,
                "event-trigger",
                f"journey {journey.key!r} entry criteria failed: {error}",
                f"event {event.id}",
            )
        return False


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
