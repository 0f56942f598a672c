"""Starting `FhirWriteBack` workflows from outside a journey: after a care task changes (the API, the
EHR) or a provider reports what became of a message, once the change has committed."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from aftercare.settings import Settings
from models.tables import Message
from models.temporal import WriteBackInput
from models.workflow_names import FHIR_WRITE_BACK_PREFIX, FHIR_WRITE_BACK_WORKFLOW

log = logging.getLogger(__name__)
# A provider's final word on a message: its Communication moves on (completed, not-done, entered-in-error).
REPORTED_STATUSES = frozenset({"delivered", "undelivered", "failed"})


async def start_write_back(temporal: Client, task_queue: str, request: WriteBackInput, name: str) -> None:
    """Start the write (`fhir-write-back-<name>`), once per name: a repeat is left alone."""
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await temporal.start_workflow(
            FHIR_WRITE_BACK_WORKFLOW,
            request,
            id=f"{FHIR_WRITE_BACK_PREFIX}{name}",
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )


async def write_reported_messages_back(
    sessions: async_sessionmaker[AsyncSession],
    temporal: Client,
    settings: Settings,
    message_ids: Iterable[str],
) -> int:
    """After provider events committed: rewrite the Communication of each journey or campaign message
    whose status is now a provider's final word (once per message and status). Returns how many writes
    started.

    The reports are recorded already, so a Temporal outage here is logged, not raised: a provider's
    retry would be a duplicate event and change nothing."""
    wanted = sorted(set(message_ids))
    if not settings.writes_back or not wanted:
        return 0
    async with sessions() as session:
        reported = (
            await session.execute(
                select(Message.id, Message.status).where(
                    Message.id.in_(wanted),
                    Message.enrollment_id.is_not(None) | Message.campaign_run_id.is_not(None),
                    Message.status.in_(REPORTED_STATUSES),
                )
            )
        ).all()
    started = 0
    for message_id, status in reported:
        try:
            await start_write_back(
                temporal,
                settings.temporal_task_queue,
                WriteBackInput(message_id=message_id),
                f"message-{message_id}-{status}",
            )
        except RPCError as error:
            log.warning("write-back not started", extra={"message_id": message_id, "error": str(error)})
            continue
        started += 1
    return started
