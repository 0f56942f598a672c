"""Activities that read from FHIR servers: a journey's `fetch` step, finishing subscription
notifications, and polling."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.variables import load_variables, render_or_fail
from aftercare.enrollment.starter import EnrollmentStarter
from aftercare.fhir_client.client import FhirClient
from aftercare.fhir_client.errors import (
    FhirAuthError,
    FhirClientError,
    FhirNotFound,
    FhirNotSupported,
    FhirUnavailable,
)
from aftercare.fhir_sync.notifications import is_topic_bundle, read_topic_bundle, relative_reference
from aftercare.fhir_sync.poller import poll_type, record_poll_error
from aftercare.fhir_sync.receive import Ingestion
from aftercare.fhir_sync.sources import SourceMissingError, open_client, source_plan
from aftercare.settings import Settings
from aftercare.store.fetches import record_fetch
from aftercare.store.fhir_notifications import mark_processed, park_notification
from models.tables import FhirNotification
from models.temporal import (
    FetchInput,
    FetchResult,
    NotificationProcessed,
    ParkNotificationInput,
    PollSourceInput,
    PollTypeInput,
    PollTypeResult,
    ProcessNotificationInput,
    SourceTypes,
)

log = logging.getLogger(__name__)


class FhirActivities:
    """Reads resources from the configured FHIR sources."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        starter: EnrollmentStarter,
        temporal: Client,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._ingestion = Ingestion(
            sessions,
            starter,
            temporal,
            settings.phone_default_region,
            settings.identity_rules,
            settings.write_back_queue,
        )

    @activity.defn(name="fetch_resources")
    async def fetch_resources(self, request: FetchInput) -> FetchResult:
        """Run the step's search (rendered with the enrollment's variables) and keep what it finds."""
        call = request.call
        async with self._sessions() as session:
            variables = await load_variables(
                session,
                call.scope,
                journey_key=call.journey_key,
                step_id=call.step_id,
                with_patient_resource=False,
                hospital_timezone=self._settings.hospital_timezone,
            )
            client = await self._open(session, request.fetch.source)
        query = render_or_fail(request.fetch.query, variables.template_variables(), "the fetch query")
        resources: list[dict[str, Any]] = []
        try:
            async with client:
                async for resource in client.search_query(query, limit=request.fetch.limit):
                    resources.append(resource)
        except FhirClientError as error:
            raise retryable_or_not(error) from error
        async with self._sessions.begin() as session:
            await record_fetch(
                session,
                enrollment_id=call.scope.enrollment_id,
                step_id=call.step_id,
                visit=call.visit,
                name=request.name,
                query=request.fetch.query,
                resources=resources,
                total=None,
            )
        log.info("fetched", extra={"enrollment_id": call.scope.enrollment_id, "count": len(resources)})
        return FetchResult(count=len(resources))

    @activity.defn(name="process_notification")
    async def process_notification(self, request: ProcessNotificationInput) -> NotificationProcessed:
        """Read the resources a notification named, or recover the events it said were missed (through
        `$events`, or by searching again when the server has no `$events`), into the trigger path."""
        async with self._sessions() as session:
            notification = await session.get(FhirNotification, request.notification_id)
            if notification is None:
                raise ApplicationError(
                    f"notification {request.notification_id} is not recorded",
                    type="InvalidInput",
                    non_retryable=True,
                )
            if notification.status == "processed":
                return NotificationProcessed(read=0, stored=0, triggered=0)
            client = await self._open(session, notification.source_key)
        resources: list[dict[str, Any]] = []
        missing = 0
        poll = False
        try:
            async with client:
                if notification.kind == "gap" and notification.subscription:
                    found, missing, poll = await _missed_events(client, notification)
                    resources.extend(found)
                elif notification.references:
                    found, missing = await _read_all(client, notification.references)
                    resources.extend(found)
                else:
                    poll = True
                received = await self._ingestion.receive(
                    resources, source=f"notification:{notification.source_key}"
                )
                stored, triggered = received.stored, received.triggered
                if poll:
                    async with self._sessions() as session:
                        plan = await source_plan(session, self._settings, notification.source_key)
                    for resource_type in plan.watched_types:
                        polled = await poll_type(
                            client,
                            self._ingestion,
                            notification.source_key,
                            resource_type,
                            on_page=lambda pages: activity.heartbeat(pages),
                        )
                        stored += polled.stored
                        triggered += polled.triggered
        except FhirClientError as error:
            raise retryable_or_not(error) from error
        async with self._sessions.begin() as session:
            await mark_processed(session, notification.id)
        return NotificationProcessed(
            read=len(resources), stored=stored, triggered=triggered, missing=missing, polled=poll
        )

    @activity.defn(name="park_notification")
    async def park_notification(self, request: ParkNotificationInput) -> None:
        """Keep a notification whose work failed for good, with the reason, for an operator."""
        async with self._sessions.begin() as session:
            await park_notification(session, request.notification_id, request.reason)
        log.warning("notification parked", extra={"notification_id": request.notification_id})

    @activity.defn(name="source_types")
    async def source_types(self, request: PollSourceInput) -> SourceTypes:
        """The resource types a source watches."""
        async with self._sessions() as session:
            try:
                plan = await source_plan(session, self._settings, request.source_key)
            except SourceMissingError as error:
                raise ApplicationError(str(error), type="FhirSourceMissing", non_retryable=True) from error
        return SourceTypes(resource_types=list(plan.watched_types))

    @activity.defn(name="poll_resource_type")
    async def poll_resource_type(self, request: PollTypeInput) -> PollTypeResult:
        """Search one type of a source since its high-water mark and receive every page."""
        async with self._sessions() as session:
            client = await self._open(session, request.source_key)
        try:
            async with client:
                polled = await poll_type(
                    client,
                    self._ingestion,
                    request.source_key,
                    request.resource_type,
                    on_page=lambda pages: activity.heartbeat(pages),
                )
        except FhirClientError as error:
            async with self._sessions.begin() as session:
                await record_poll_error(session, request.source_key, request.resource_type, str(error))
            raise retryable_or_not(error) from error
        return PollTypeResult(
            seen=polled.seen, stored=polled.stored, triggered=polled.triggered, high_water=polled.high_water
        )

    async def _open(self, session: AsyncSession, source_key: str | None) -> FhirClient:
        try:
            return await open_client(session, self._settings, source_key)
        except SourceMissingError as error:
            raise ApplicationError(str(error), type="FhirSourceMissing", non_retryable=True) from error


async def _read_all(client: FhirClient, references: list[str]) -> tuple[list[dict[str, Any]], int]:
    """Read each referenced resource; ones the server no longer has are counted, not fatal."""
    found: list[dict[str, Any]] = []
    missing = 0
    for reference in references:
        resource_type, _, resource_id = relative_reference(reference).partition("/")
        try:
            found.append(await client.read(resource_type, resource_id))
        except FhirNotFound:
            missing += 1
    return found, missing


async def _missed_events(
    client: FhirClient, notification: FhirNotification
) -> tuple[list[dict[str, Any]], int, bool]:
    """The resources of the missed events from `$events`; (resources, missing, search again instead)."""
    assert notification.subscription is not None
    first, last = notification.event_numbers[0], notification.event_numbers[-1]
    try:
        response = await client.request(
            "GET",
            f"{relative_reference(notification.subscription)}/$events",
            params={
                "eventsSinceNumber": str(first),
                "eventsUntilNumber": str(last),
                "content": "full-resource",
            },
        )
    except FhirNotSupported:
        return [], 0, True
    document = response.json()
    if not is_topic_bundle(document):
        return [], 0, True
    replay = read_topic_bundle(document)
    found, missing = await _read_all(client, replay.references)
    return [*replay.resources, *found], missing, False


def retryable_or_not(error: FhirClientError) -> ApplicationError:
    if isinstance(error, FhirUnavailable):
        return ApplicationError(f"the FHIR server is unavailable: {error}", type="FhirUnavailable")
    if isinstance(error, FhirAuthError):
        return ApplicationError(f"the FHIR server refused our credentials: {error}", type="FhirAuth")
    return ApplicationError(
        f"the FHIR server refused the request: {error}", type="FhirQueryRefused", non_retryable=True
    )
