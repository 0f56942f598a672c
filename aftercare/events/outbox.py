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
from aftercare.enrollment.event_triggers import IncomingEvent, deliver_events
from aftercare.enrollment.starter import EnrollmentStarter
from aftercare.events.delivery import (
    NOTICE_BATCH,
    notice_model,
    offer_input,
    settle_offer,
    start_offers,
)
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
    """Do the effects, deleting the rows of those done: each patient's in order, in rounds (a round
    does each patient's next effect). A round's notices go in batches of `NOTICE_BATCH` (one
    `deliver_events` each: a few statements for the batch), its offers and settlements
    `concurrency` at a time; its done rows are deleted in one statement. A failed effect is kept with
    its error and a later attempt time; when Temporal is down, everything not yet done waits with it.
    Returns how many were done."""
    queues: dict[str, list[Effect]] = {}
    for effect in effects:
        queues.setdefault(effect.patient_id, []).append(effect)
    done = 0
    while queues:
        current = [items.pop(0) for items in queues.values()]
        queues = {patient: items for patient, items in queues.items() if items}
        failures = await _notices(runner, [e for e in current if e.kind == NOTICE])
        failures |= await _singles(runner, [e for e in current if e.kind != NOTICE], concurrency)
        # the notices' rows went with their delivery; the offers' and settlements' go here
        finished = [e.id for e in current if e.id not in failures and e.kind != NOTICE]
        if finished:
            async with runner.sessions.begin() as session:
                await session.execute(delete(EventEffect).where(EventEffect.id.in_(finished)))
        done += len([effect for effect in current if effect.id not in failures])
        outage = next((error for error in failures.values() if unavailable_part(error)), None)
        if outage is not None:
            waiting = [e for e in current if e.id in failures] + [
                e for items in queues.values() for e in items
            ]
            await _postpone(runner.sessions, waiting, outage)
            return done
        for error, failed in _by_error(current, failures):
            await _postpone(runner.sessions, failed, error)
    return done


def _by_error(effects: list[Effect], failures: dict[int, Exception]) -> list[tuple[Exception, list[Effect]]]:
    grouped: dict[int, tuple[Exception, list[Effect]]] = {}
    for effect in effects:
        if effect.id in failures:
            error = failures[effect.id]
            grouped.setdefault(id(error), (error, []))[1].append(effect)
    return list(grouped.values())


async def _notices(runner: EffectRunner, effects: list[Effect]) -> dict[int, Exception]:
    """Deliver the notices (distinct patients) in batches; the ones that failed, with why. A batch that
    fails for another reason than an outage is tried one by one, to keep the failure to its notice."""
    failures: dict[int, Exception] = {}
    for start in range(0, len(effects), NOTICE_BATCH):
        batch = effects[start : start + NOTICE_BATCH]
        try:
            await _deliver(runner, batch)
        except Exception as error:
            if unavailable_part(error) is not None or len(batch) == 1:
                failures |= {effect.id: error for effect in batch}
                continue
            for effect in batch:
                try:
                    await _deliver(runner, [effect])
                except Exception as own:
                    failures[effect.id] = own
    return failures


async def _deliver(runner: EffectRunner, effects: list[Effect]) -> None:
    """Deliver the notices (distinct patients) as one batch, deleting their rows in the transaction
    that marks them delivered."""
    notices = [EventNoticeModel.model_validate(effect.payload) for effect in effects]

    async def forget(session: AsyncSession) -> None:
        await session.execute(delete(EventEffect).where(EventEffect.id.in_([e.id for e in effects])))

    await deliver_events(
        runner.sessions,
        runner.temporal,
        runner.starter,
        [IncomingEvent(notice.type, notice.patient_id, notice.data, notice.id) for notice in notices],
        then=forget,
    )


async def _singles(runner: EffectRunner, effects: list[Effect], concurrency: int) -> dict[int, Exception]:
    """Start the offers' workflows and settle the settled ones, `concurrency` at a time; the failed."""
    gate = asyncio.Semaphore(concurrency)

    async def one(effect: Effect) -> Exception | None:
        async with gate:
            try:
                if effect.kind == SETTLE:
                    await settle_offer(runner.temporal, str(effect.payload["workflow_id"]))
                else:
                    offer = OfferInput.model_validate(effect.payload)
                    await start_offers(runner.temporal, runner.task_queue, [offer])
            except Exception as error:
                return error
        return None

    outcomes = await asyncio.gather(*(one(effect) for effect in effects))
    return {effect.id: error for effect, error in zip(effects, outcomes, strict=True) if error is not None}


async def _postpone(
    sessions: async_sessionmaker[AsyncSession], effects: list[Effect], error: Exception
) -> None:
    """Keep the effects with the error, their next attempt 2 s later, doubling per attempt up to a
    minute: one statement."""
    part = unavailable_part(error)
    reason = f"{part} unavailable" if part else type(error).__name__
    if part is None:
        log.error(
            "an event effect failed; it will be retried",
            exc_info=error,
            extra={"effect_id": effects[0].id, "count": len(effects)},
        )
    else:
        log.warning(
            "event effects wait for %s", part, extra={"effect_id": effects[0].id, "count": len(effects)}
        )
    backoff = func.least(func.power(2, EventEffect.attempts), MAX_BACKOFF.total_seconds())
    async with sessions.begin() as session:
        await session.execute(
            update(EventEffect)
            .where(EventEffect.id.in_([effect.id for effect in effects]))
            .values(
                attempts=EventEffect.attempts + 1,
                last_error=reason,
                next_attempt_at=func.now() + func.make_interval(0, 0, 0, 0, 0, 0, backoff),
            )
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
