"""Frequency caps over every message of a patient, whatever journey sent it.

The patient's row is locked (`FOR UPDATE`) in the transaction that then records the intent, so two
sends racing for the last slot under a cap are serialised: the second counts the first.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.guardrails.decision import Decision
from aftercare.guardrails.policy import FrequencyCap
from models.tables import Message, Patient

# Messages that did not go out do not count.
NOT_COUNTED = ("skipped", "failed")
WINDOWS = (("per_day", timedelta(days=1), "day"), ("per_week", timedelta(days=7), "week"))


async def lock_patient(session: AsyncSession, patient_id: str) -> None:
    """Hold the patient's row until the transaction ends: caps are checked and taken one send at a time."""
    await session.execute(select(Patient.id).where(Patient.id == patient_id).with_for_update())


async def over_cap(
    session: AsyncSession,
    caps: Sequence[FrequencyCap],
    *,
    patient_id: str,
    channel: str,
    purpose: str,
    now: datetime,
    over_cap: str,
) -> Decision | None:
    """A `defer` (until a slot frees) or `skip` decision when the send would exceed a cap; else None.

    The caller must hold the patient's lock (`lock_patient`) and record the intent in the same
    transaction."""
    applying = [cap for cap in caps if cap.applies(channel, purpose)]
    if not applying:
        return None
    await lock_patient(session, patient_id)
    latest_until: datetime | None = None
    reasons: list[str] = []
    for cap in applying:
        for attribute, window, word in WINDOWS:
            limit: int | None = getattr(cap, attribute)
            if limit is None:
                continue
            query = select(Message.created_at).where(
                Message.patient_id == patient_id,
                Message.status.not_in(NOT_COUNTED),
                Message.created_at > now - window,
            )
            if cap.channel != "*":
                query = query.where(Message.channel == cap.channel)
            if cap.purpose != "*":
                query = query.where(Message.purpose == cap.purpose)
            sent = list(await session.scalars(query.order_by(Message.created_at.desc())))
            if len(sent) < limit:
                continue
            # Room comes back when the oldest message that keeps the count at the limit leaves the window.
            frees_at = (sent[limit - 1] if limit else now) + window + timedelta(seconds=1)
            latest_until = frees_at if latest_until is None else max(latest_until, frees_at)
            reasons.append(f"{len(sent)} of {limit} per {word} ({cap.channel} / {cap.purpose})")
    if latest_until is None:
        return None
    reason = "frequency cap reached: " + "; ".join(reasons)
    if over_cap == "drop" or not any(cap_limit(cap) for cap in applying):
        return Decision("skip", "frequency_cap", reason)
    return Decision("defer", "frequency_cap", reason, until=max(latest_until, now + timedelta(seconds=1)))


def cap_limit(cap: FrequencyCap) -> bool:
    """False for a cap of zero (nothing may ever go, so waiting is pointless)."""
    return bool(cap.per_day or cap.per_week) and cap.per_day != 0 and cap.per_week != 0
