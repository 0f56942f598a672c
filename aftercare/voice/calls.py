"""The `voice_calls` rows: written when a call is recorded, then moved on by Twilio's callbacks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.api import CallView
from models.tables import Message
from models.voice import CallScript, RenderedCall
from models.voice_tables import VoiceCall

VOICE_PROVIDER = "twilio-voice"
# Twilio's call statuses after which nothing more happens.
FINAL_CALL_STATUSES = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})


async def record_call(session: AsyncSession, message: Message, rendered: RenderedCall) -> None:
    """The call's durable record, in the transaction that records its message."""
    session.add(
        VoiceCall(
            message_id=message.id,
            patient_id=message.patient_id,
            enrollment_id=message.enrollment_id,
            step_id=message.step_id,
            script=rendered.model_dump(mode="json"),
            answers={},
        )
    )
    await session.flush()


async def load_call(session: AsyncSession, message_id: str, *, lock: bool = False) -> VoiceCall | None:
    """A call's record (locked for update when asked)."""
    statement = select(VoiceCall).where(VoiceCall.message_id == message_id)
    if lock:
        statement = statement.with_for_update()
    return (await session.scalars(statement)).one_or_none()


async def call_views(session: AsyncSession, message_ids: Sequence[str]) -> dict[str, CallView]:
    """How each of these calls went, by message id (calls with no record are left out)."""
    if not message_ids:
        return {}
    rows = await session.scalars(select(VoiceCall).where(VoiceCall.message_id.in_(message_ids)))
    return {
        call.message_id: CallView(
            status=call.status,
            outcome=call.outcome,
            answered_by=call.answered_by,
            duration_seconds=call.duration_seconds,
            answers=dict(call.answers or {}),
            transferred=call.transferred,
            voicemail_left=call.recording_seconds is not None,
        )
        for call in rows
    }


async def ensure_call(session: AsyncSession, message_id: str) -> VoiceCall | None:
    """A call's record, locked; a `voice` message recorded without a script (a campaign's) gets one
    that says its body. None when the message is not a call."""
    call = await load_call(session, message_id, lock=True)
    if call is not None:
        return call
    message = await session.get(Message, message_id)
    if message is None or message.channel != "voice":
        return None
    await record_call(
        session, message, RenderedCall(script=CallScript(say=message.body or ""), language=message.locale)
    )
    return await load_call(session, message_id, lock=True)


def rendered_of(call: VoiceCall) -> RenderedCall:
    """The rendered script a call was recorded with."""
    return RenderedCall.model_validate(call.script)


async def call_sid_of(session: AsyncSession, message_id: str) -> str | None:
    """The CallSid Twilio's callbacks reported for this message, if any arrived."""
    found: str | None = await session.scalar(
        select(VoiceCall.call_sid).where(VoiceCall.message_id == message_id)
    )
    return found


async def change_call(session: AsyncSession, message_id: str, **values: Any) -> None:
    """Set columns of a call's record."""
    await session.execute(
        update(VoiceCall).where(VoiceCall.message_id == message_id).values(updated_at=func.now(), **values)
    )


async def note_identity(session: AsyncSession, call: VoiceCall, call_sid: str | None) -> None:
    """Remember the CallSid a callback named for this call (the first one wins), on the call and on
    its message when the attempt that placed it died before recording it."""
    if call_sid and call.call_sid is None:
        call.call_sid = call_sid
        await session.execute(
            update(Message)
            .where(Message.id == call.message_id, Message.provider_message_id.is_(None))
            .values(provider_message_id=call_sid, provider=VOICE_PROVIDER, updated_at=func.now())
        )
