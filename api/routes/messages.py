"""Messages sent (or not) to patients."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.store.messages import list_messages
from aftercare.voice.calls import call_views
from api.deps import SessionDep
from models.api import CallView, MessageList, MessageView
from models.tables import Message

router = APIRouter(prefix="/v1/messages", tags=["messages"])


def message_view(message: Message, call: CallView | None = None) -> MessageView:
    """A message row as the API shows it (with how the call went, for a call)."""
    view = MessageView.model_validate(message, from_attributes=True)
    return view.model_copy(update={"call": call}) if call is not None else view


async def message_views(session: AsyncSession, rows: Sequence[Message]) -> list[MessageView]:
    """Message rows as the API shows them, calls with their outcome and answers."""
    calls = await call_views(session, [row.id for row in rows if row.channel == "voice"])
    return [message_view(row, calls.get(row.id)) for row in rows]


@router.get("", response_model=MessageList)
async def read_messages(
    session: SessionDep,
    patient_id: str | None = None,
    enrollment_id: str | None = None,
    journey_key: str | None = None,
    campaign_run_id: str | None = None,
    channel: str | None = None,
    status: str | None = None,
    before: Annotated[datetime | None, Query(description="only messages created before this time")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> MessageList:
    """Messages, newest first; page back with `before=` the oldest `created_at` seen."""
    rows = await list_messages(
        session,
        patient_id=patient_id,
        enrollment_id=enrollment_id,
        journey_key=journey_key,
        campaign_run_id=campaign_run_id,
        channel=channel,
        status=status,
        before=before,
        limit=limit,
    )
    return MessageList(items=await message_views(session, rows))


@router.get("/{message_id}", response_model=MessageView)
async def read_message(message_id: str, session: SessionDep) -> MessageView:
    """One message: what was sent, with the email headers (`List-Unsubscribe`, `List-Unsubscribe-Post`)
    and, for a call, its outcome and answers."""
    message = await session.get(Message, message_id)
    if message is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no message {message_id!r}")
    (view,) = await message_views(session, [message])
    return view
