"""Consent to be contacted, per patient, channel and purpose: an append-only record whose latest entry
holds. `*` as the channel or the purpose covers them all; the purpose `phi` is consent to receive
protected health information on the channel."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import ConsentEvent

ALL_PURPOSES = "*"
ALL_CHANNELS = "*"
PHI = "phi"


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


async def consent_for(
    session: AsyncSession, patient_id: str, channel: str, purpose: str, *, exact_purpose: bool = False
) -> ConsentEvent | None:
    """The latest consent entry that covers this channel and purpose (wildcards included, for the
    purpose only unless `exact_purpose`), if any."""
    found: ConsentEvent | None = await session.scalar(
        select(ConsentEvent)
        .where(
            ConsentEvent.patient_id == patient_id,
            ConsentEvent.channel.in_((channel, ALL_CHANNELS)),
            ConsentEvent.purpose.in_(
                (purpose,) if exact_purpose or purpose == PHI else (purpose, ALL_PURPOSES)
            ),
        )
        .order_by(ConsentEvent.recorded_at.desc(), ConsentEvent.id.desc())
        .limit(1)
    )
    return found


async def consent_history(session: AsyncSession, patient_id: str, limit: int = 500) -> Sequence[ConsentEvent]:
    """Every consent change of the patient, newest first."""
    rows = await session.scalars(
        select(ConsentEvent)
        .where(ConsentEvent.patient_id == patient_id)
        .order_by(ConsentEvent.recorded_at.desc(), ConsentEvent.id.desc())
        .limit(limit)
    )
    return rows.all()
