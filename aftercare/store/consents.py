"""Consent to be contacted, per patient and channel: an append-only record whose latest entry holds."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import ConsentEvent

ALL_PURPOSES = "*"


async def record_consent(
    session: AsyncSession,
    patient_ids: Iterable[str],
    channel: str,
    status: str,
    source: str,
    detail: str | None = None,
    purpose: str = ALL_PURPOSES,
) -> None:
    """Record that these patients gave (`granted`) or withdrew (`revoked`) consent on a channel."""
    session.add_all(
        ConsentEvent(
            patient_id=patient_id,
            channel=channel,
            purpose=purpose,
            status=status,
            source=source,
            detail=detail,
        )
        for patient_id in patient_ids
    )
    await session.flush()


async def current_consents(session: AsyncSession, patient_id: str) -> Sequence[ConsentEvent]:
    """The latest consent entry for each of the patient's channels and purposes."""
    rows = await session.scalars(
        select(ConsentEvent)
        .where(ConsentEvent.patient_id == patient_id)
        .distinct(ConsentEvent.channel, ConsentEvent.purpose)
        .order_by(
            ConsentEvent.channel,
            ConsentEvent.purpose,
            ConsentEvent.recorded_at.desc(),
            ConsentEvent.id.desc(),
        )
    )
    return rows.all()


async def revoked_channels(session: AsyncSession, patient_id: str) -> dict[str, ConsentEvent]:
    """The channels on which the patient's latest consent for every purpose is withdrawn."""
    return {
        consent.channel: consent
        for consent in await current_consents(session, patient_id)
        if consent.purpose == ALL_PURPOSES and consent.status == "revoked"
    }
