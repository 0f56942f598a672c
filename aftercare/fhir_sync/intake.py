"""Taking a subscription notification in: what can be done at once is done at once (full resources are
stored and trigger journeys before the answer); what needs the FHIR server (id-only resources, an empty
notification, missed events) is recorded and handed to a Temporal workflow, so the answer is fast and the
work is durable.

Topic-based notifications carry event numbers. Each subscription's last number is kept; a notification
(or heartbeat) that skips numbers is a gap, recovered through the server's `$events` operation, or by
searching again when the server has none. A subscription seen for the first time starts from the first
number it sends.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from aftercare.fhir_sync.notifications import Notification
from aftercare.fhir_sync.receive import Ingestion, Received
from models.tables import FhirNotification, SubscriptionState
from models.temporal import ProcessNotificationInput
from models.workflow_names import FHIR_NOTIFICATION_WORKFLOW

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Intake:
    """What taking a notification in did: stored at once, and handed on (notification ids)."""

    received: Received | None
    queued: list[str]
    gap: tuple[int, int] | None = None


@dataclass(frozen=True)
class NotificationIntake:
    """Everything taking notifications in needs: the ingestion path and Temporal."""

    ingestion: Ingestion
    temporal: Client
    task_queue: str

    async def take(self, source_key: str, notification: Notification) -> Intake:
        """Take a notification in (any shape)."""
        gap = None
        async with self.ingestion.sessions.begin() as session:
            if notification.shape == "topic" and notification.subscription:
                gap = await advance_subscription(session, source_key, notification)
        received = None
        if notification.resources:
            received = await self.ingestion.receive(
                notification.resources, source=f"notification:{source_key}"
            )
        work: list[tuple[str, list[str], list[int]]] = []
        if notification.shape == "ping":
            work.append(("ping", notification.references, []))
        elif notification.references:
            work.append(("id-only", notification.references, []))
        elif notification.content == "empty":
            work.append(("empty", [], []))
        if gap is not None:
            work.append(("gap", [], [gap[0], gap[1]]))
        queued = []
        for kind, references, numbers in work:
            queued.append(await self._hand_on(source_key, notification, kind, references, numbers))
        return Intake(received=received, queued=queued, gap=gap)

    async def _hand_on(
        self,
        source_key: str,
        notification: Notification,
        kind: str,
        references: list[str],
        numbers: list[int],
    ) -> str:
        notification_id = str(uuid.uuid4())
        async with self.ingestion.sessions.begin() as session:
            session.add(
                FhirNotification(
                    id=notification_id,
                    source_key=source_key,
                    subscription=notification.subscription,
                    kind=kind,
                    content=notification.content,
                    event_numbers=numbers or notification.event_numbers,
                    references=references,
                )
            )
        await start_notification_workflow(self.temporal, self.task_queue, notification_id)
        return notification_id


async def start_notification_workflow(temporal: Client, task_queue: str, notification_id: str) -> bool:
    """Start the workflow that finishes a notification (once); False when Temporal cannot be reached —
    the notification stays `received` and reconciliation starts it later."""
    try:
        await temporal.start_workflow(
            FHIR_NOTIFICATION_WORKFLOW,
            ProcessNotificationInput(notification_id=notification_id),
            id=f"fhir-notification-{notification_id}",
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            static_summary="Finish a FHIR subscription notification",
        )
    except RPCError:
        log.warning("notification workflow not started", extra={"notification_id": notification_id})
        return False
    return True


async def advance_subscription(
    session: AsyncSession, source_key: str, notification: Notification
) -> tuple[int, int] | None:
    """Record the subscription's progress; the range of event numbers it skipped, if any."""
    assert notification.subscription is not None
    numbers = notification.event_numbers
    since_start = notification.events_since_start
    baseline = (min(numbers) - 1) if numbers else (since_start or 0)
    await session.execute(
        insert(SubscriptionState)
        .values(
            source_key=source_key,
            subscription=notification.subscription,
            topic=notification.topic,
            last_event_number=baseline,
        )
        .on_conflict_do_nothing(index_elements=["source_key", "subscription"])
    )
    state = await session.get(
        SubscriptionState,
        (source_key, notification.subscription),
        with_for_update=True,
        populate_existing=True,
    )
    assert state is not None
    gap = None
    last = state.last_event_number
    if numbers:
        if min(numbers) > last + 1:
            gap = (last + 1, min(numbers) - 1)
        state.last_event_number = max(last, *numbers)
    elif (
        since_start is not None and notification.kind in ("heartbeat", "query-status") and since_start > last
    ):
        gap = (last + 1, since_start)
        state.last_event_number = since_start
    state.status = notification.status or state.status
    state.topic = notification.topic or state.topic
    state.last_notification_at = datetime.now(UTC)
    if gap is not None:
        state.gaps_recovered += 1
        log.warning(
            "subscription events missed",
            extra={"source": source_key, "first": gap[0], "last": gap[1]},
        )
    await session.flush()
    return gap
