"""Messages patients send us (SMS replies), each recorded once by the provider's id."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import InboundMessage, Message, Patient


async def record_inbound(
    session: AsyncSession,
    *,
    provider: str,
    provider_message_id: str,
    channel: str,
    from_address: str,
    patient_id: str | None,
    body: str | None,
    keyword: str | None,
) -> bool:
    """Record an inbound message; False when the provider delivered this one before."""
    inserted = await session.execute(
        insert(InboundMessage)
        .values(
            provider=provider,
            provider_message_id=provider_message_id,
            channel=channel,
            from_address=from_address,
            patient_id=patient_id,
            body=body,
            keyword=keyword,
        )
        .on_conflict_do_nothing(index_elements=["provider_message_id"])
        .returning(InboundMessage.provider_message_id)
    )
    return inserted.first() is not None


async def patients_with_phone(session: AsyncSession, phone: str) -> list[str]:
    """Every patient whose current mobile number this is (a family may share one)."""
    return list(await session.scalars(select(Patient.id).where(Patient.phone == phone).order_by(Patient.id)))


async def latest_recipient(session: AsyncSession, channel: str, address: str) -> str | None:
    """The patient we last messaged at this address: whom a reply from it most likely answers."""
    patient_id: str | None = await session.scalar(
        select(Message.patient_id)
        .where(Message.channel == channel, Message.to == address, Message.sent_at.is_not(None))
        .order_by(Message.created_at.desc())
        .limit(1)
    )
    return patient_id
