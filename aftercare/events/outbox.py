"""The outbox of event changes: what a committed change still owes Temporal, kept until it is done.

A registration (cancellation, offer, check-in, ...) commits its seats and, in the same transaction, one
`event_effects` row per patient event to deliver and per offer workflow to start. After the commit the
caller does them at once and deletes their rows; whatever fails (Temporal down, a timeout) stays, and
`retry_due` (run every second by each API process, `retry_forever`) does it again, with backoff, until
it is done. Each patient's effects run in order; different patients' run side by side. Every effect is
idempotent (a notice is delivered once per id, an offer workflow started once per id), so a repeat, or
two processes doing the same row, changes nothing. No connection is held while Temporal is called.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from aftercare.availability import unavailable_part
from aftercare.enrollment.starter import EnrollmentStarter
from aftercare.events.delivery import deliver_notices, notice_model, offer_input, settle_offer, start_offers
from aftercare.events.registrations import Notice, Offer
from models.event_tables import EventEffect, EventRegistration
from models.event_temporal import EventNoticeModel, OfferInput, offer_workflow_id

log = logging.getLogger(__name__)
NOTICE = "notice"
OFFER = "offer"
SETTLE = "settle"
# How long a failed effect waits before its next attempt: doubling per attempt, up to a minute.
MAX_BACKOFF = timedelta(minutes=1)


@dataclass(frozen=True)
class Effect:
    """One row of the outbox: an offer to watch or a notice to deliver."""

    id: int
    kind: str
    event_key: str
    patient_id: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class EffectRunner:
    """What doing an effect needs: the database, Temporal, the enrollment starter, the task queue."""

    sessions: async_sessionmaker[AsyncSession]
    temporal: Client
    starter: EnrollmentStarter
    task_queue: str


async def record_effects(
    session: AsyncSession,
    event_key: str,
    offers: list[Offer],
    notices: list[Notice],
    *,
    settled: EventRegistration | None = None,
) -> list[Effect]:
    """Write the change's effects in its own transaction: the settled offer's workflow told first
    (`settled`: a registration whose offer the change ended), then the new offers (a seat is watched
    before the patient hears of it), then the notices."""
    rows: list[dict[str, Any]] = []
    if settled is not None:
        workflow_id = offer_workflow_id(settled.id, settled.offers)
        rows.append(
            {
                "kind": SETTLE,
                "event_key": event_key,
                "patient_id": settled.patient_id,
                "payload": {"workflow_id": workflow_id},
            }
        )
    rows += [
        {
            "kind": OFFER,
            "event_key": event_key,
            "patient_id": patient,
            "payload": offer_input(event_key, offer).model_dump(mode="json"),
        }
        for offer, patient in await _offer_patients(session, notices, offers)
    ]
    rows += [
        {
            "kind": NOTICE,
            "event_key": event_key,
            "patient_id": notice.patient_id,
            "payload": notice_model(notice).model_dump(mode="json"),
        }
        for notice in notices
    ]
    if not rows:
        return []
    ids = list(await session.scalars(insert(EventEffect).returning(EventEffect.id), rows))
    return [
        Effect(row_id, row["kind"], row["event_key"], row["patient_id"], row["payload"])
        for row_id, row in zip(ids, rows, strict=True)
    ]


async def _offer_patients(
    session: AsyncSession, notices: list[Notice], offers: list[Offer]
) -> list[tuple[Offer, str]]:
    """Each offer with its registration's patient (the row is scoped by patient like the registration)."""
    known = {notice.registration_id: notice.patient_id for notice in notices}
    pairs = []
    for offer in offers:
        patient = known.get(offer.registration_id)
        if patient is None:
            patient = await session.scalar(
                select(EventRegistration.patient_id).where(EventRegistration.id == offer.registration_id)
            )
        pairs.append((offer, str(patient)))
    return pairs


async def run_effects(runner: EffectRunner, effects: list[Effect], concurrency: int = 8) -> int:
    """Do the effects, deleting each row once done: each patient's in order, up to `concurrency`
    patients at a time. A failed one is kept with its error and a later attempt time; when Temporal is
    down, everything not yet done waits with it. Returns how many were done."""
    by_patient: dict[str, list[Effect]] = {}
    for effect in effects:
        by_patient.setdefault(effect.patient_id, []).append(effect)
    gate = asyncio.Semaphore(concurrency)
    outage: list[Exception] = []

    async def one_patient(items: list[Effect]) -> int:
        done = 0
        async with gate:
            for position, effect in enumerate(items):
                if outage:
                    await _postpone(runner.sessions, items[position:], outage[0])
                    return done
                try:
                    await _run(runner, effect)
                except Exception as error:
                    down = unavailable_part(error) is not None
                    if down:
                        outage.append(error)
                    await _postpone(runner.sessions, items[position:] if down else [effect], error)
                    if down:
                        return done
                    continue
                async with runner.sessions.begin() as session:
                    await session.execute(delete(EventEffect).where(EventEffect.id == effect.id))
                done += 1
        return done

    return sum(await asyncio.gather(*(one_patient(items) for items in by_patient.values())))


async def _run(runner: EffectRunner, effect: Effect) -> None:
    if effect.kind == SETTLE:
        await settle_offer(runner.temporal, str(effect.payload["workflow_id"]))
    elif effect.kind == OFFER:
        await start_offers(runner.temporal, runner.task_queue, [OfferInput.model_validate(effect.payload)])
    else:
        notice = EventNoticeModel.model_validate(effect.payload)
        await deliver_notices(runner.sessions, runner.temporal, runner.starter, [notice])


async def _postpone(
    sessions: async_sessionmaker[AsyncSession], effects: list[Effect], error: Exception
) -> None:
    part = unavailable_part(error)
    reason = f"{part} unavailable" if part else type(error).__name__
    if part is None:
        log.exception("an event effect failed; it will be retried", extra={"effect_id": effects[0].id})
    else:
        log.warning("an event effect waits for %s", part, extra={"effect_id": effects[0].id})
    async with sessions.begin() as session:
        rows = await session.scalars(select(EventEffect).where(EventEffect.id.in_([e.id for e in effects])))
        for row in rows:
            backoff = min(timedelta(seconds=2**row.attempts), MAX_BACKOFF)
            await session.execute(
                update(EventEffect)
                .where(EventEffect.id == row.id)
                .values(attempts=row.attempts + 1, last_error=reason, next_attempt_at=func.now() + backoff)
            )


async def due_effects(
    sessions: async_sessionmaker[AsyncSession], *, settle: timedelta = timedelta(seconds=2), limit: int = 100
) -> list[Effect]:
    """The effects whose next attempt is due, oldest first; a row younger than `settle` that was never
    tried is left to the request that wrote it."""
    now = datetime.now(UTC)
    async with sessions() as session:
        rows = await session.scalars(
            select(EventEffect)
            .where(
                EventEffect.next_attempt_at <= now,
                (EventEffect.attempts > 0) | (EventEffect.created_at <= now - settle),
            )
            .order_by(EventEffect.id)
            .limit(limit)
        )
        return [Effect(row.id, row.kind, row.event_key, row.patient_id, dict(row.payload)) for row in rows]


async def retry_due(runner: EffectRunner) -> int:
    """Do the due effects; returns how many were done."""
    return await run_effects(runner, await due_effects(runner.sessions))


async def retry_forever(runner: EffectRunner, interval: float = 1.0) -> None:
    """Until cancelled: retry the due effects every `interval` seconds."""
    while True:
        await asyncio.sleep(interval)
        try:
            done = await retry_due(runner)
        except Exception:
            log.warning("the event outbox could not be read; trying again")
            continue
        if done:
            log.info("event effects done after a retry", extra={"count": done})
