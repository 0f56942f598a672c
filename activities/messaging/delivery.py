"""Delivering recorded messages through their providers, at most once each, one message or hundreds.

Each message is marked `sending` (with its attempt count and time) before its provider is called, and
its outcome recorded after. A message found `sending` was interrupted: it is looked up at the provider
before anything is sent again. Many messages share their bookkeeping: one statement marks them all,
their calls go out concurrently, and one transaction records every outcome. A rate-limited provider's
messages each wait for their turn (a sliding window shared by every worker) as they are marked.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

from sqlalchemy import Boolean, bindparam, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.messaging.intent import outgoing
from activities.messaging.providers import (
    BatchingProvider,
    MessageProvider,
    ProviderOutcome,
    ProviderRegistry,
    ProviderRejectedError,
    ProviderTemporaryError,
)
from activities.options import SEND_MESSAGE
from aftercare.metrics import MESSAGES
from aftercare.store.messages import update_message
from aftercare.store.provider_pace import take_turn
from aftercare.store.suppressions import suppress
from models.tables import Message, table_of
from models.temporal import SendMessageResult

log = logging.getLogger(__name__)

FINAL_STATUSES = frozenset({"queued", "sent", "printed", "delivered", "undelivered", "failed", "skipped"})
_MESSAGES = table_of(Message)
_MARK_SENDING = (
    update(_MESSAGES)
    .where(_MESSAGES.c.id == bindparam("m_id"))
    .values(
        status="sending",
        provider=bindparam("m_provider"),
        attempts=_MESSAGES.c.attempts + 1,
        attempted_at=func.clock_timestamp(),
        updated_at=func.now(),
    )
)
_RECORD_OUTCOME = (
    update(_MESSAGES)
    .where(_MESSAGES.c.id == bindparam("m_id"))
    .values(
        status=bindparam("m_status"),
        reason=bindparam("m_reason"),
        provider=bindparam("m_provider"),
        provider_message_id=bindparam("m_provider_id"),
        sent_at=case((bindparam("m_accepted", type_=Boolean), func.now()), else_=_MESSAGES.c.sent_at),
        updated_at=func.now(),
    )
)
# Recording provider ids holds the provider's lock: shared by senders recording the ids the provider
# gave them, exclusive for a lookup's claim, which so sees every id recorded before it checks that no
# other message owns the one it found. One lock per transaction, however many messages it records.
_SHARE_PROVIDER_IDS = select(func.pg_advisory_xact_lock_shared(func.hashtext(bindparam("lock_key"))))
_CLAIM_PROVIDER_IDS = select(func.pg_advisory_xact_lock(func.hashtext(bindparam("lock_key"))))
# Updating many messages in one statement moves the analytics rollups of their shards in the order of
# the messages, so two such statements at once (parallel campaign batches) could deadlock: they take
# turns. Taken after the provider-ids lock, never before it.
_MANY_MESSAGES = "delivery-many-messages"


@dataclass
class _Waiting:
    """A message the provider could not take yet, and why."""

    message: Message
    provider: MessageProvider
    error: ProviderTemporaryError
    looked_up: bool = False


def _batches(
    provider: BatchingProvider, messages: list[Message]
) -> tuple[list[Message], list[list[Message]]]:
    """The messages a batching provider (SendGrid's personalizations) takes in shared calls, grouped by
    key up to its limit, and the rest, which go alone. Each keeps its own record, outcome and provider
    events; only the call is shared."""
    if len(messages) < 2:
        return messages, []
    alone: list[Message] = []
    groups: dict[object, list[Message]] = {}
    for message in messages:
        key = provider.batch_key(outgoing(message))
        if key is None:
            alone.append(message)
        else:
            groups.setdefault(key, []).append(message)
    size = provider.max_batch
    together = []
    for group in groups.values():
        chunks = [group[start : start + size] for start in range(0, len(group), size)]
        together += [chunk for chunk in chunks if len(chunk) > 1]
        alone += [chunk[0] for chunk in chunks if len(chunk) == 1]
    return alone, together


def result_of(message: Message) -> SendMessageResult:
    """A recorded message as a send's result."""
    return SendMessageResult(
        message_id=message.id, status=message.status, reason=message.reason, channel=message.channel
    )


class Delivery:
    """Sends recorded messages through the provider registered for their channel."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], providers: ProviderRegistry, concurrency: int = 16
    ) -> None:
        self._sessions = sessions
        self._providers = providers
        self._concurrency = concurrency

    async def deliver(self, message: Message) -> SendMessageResult:
        """Deliver one message; raises a retryable `ProviderUnavailable` error while its provider cannot
        take it (after recording why)."""
        [result] = await self.deliver_many([message])
        return result

    async def deliver_many(self, messages: Sequence[Message]) -> list[SendMessageResult]:
        """Deliver every message not finished yet, in the order given. Outcomes are recorded for all of
        them; then, when some could not go yet, a retryable `ProviderUnavailable` error says how many."""
        results = {m.id: result_of(m) for m in messages if m.status in FINAL_STATUSES}
        waiting: list[_Waiting] = []
        groups: dict[str, list[Message]] = {}
        for message in messages:
            if message.id not in results:
                groups.setdefault(self._providers.for_channel(message.channel).name, []).append(message)
        for group in groups.values():
            provider = self._providers.for_channel(group[0].channel)
            finished, stuck = await self._through(provider, group)
            results.update(finished)
            waiting += stuck
        if waiting:
            await self._set_back(waiting)
            first = waiting[0].error
            text = str(first)
            if len(messages) > 1:
                text = f"{len(waiting)} of {len(messages)} messages could not be delivered yet: {first}"
            # A provider that said when to come back (429 Retry-After) is asked again no sooner.
            delays = [w.error.retry_after for w in waiting if w.error.retry_after and not w.looked_up]
            raise ApplicationError(
                text,
                type="ProviderUnavailable",
                next_retry_delay=timedelta(seconds=max(delays)) if delays else None,
            ) from first
        return [results[message.id] for message in messages]

    async def _through(
        self, provider: MessageProvider, messages: list[Message]
    ) -> tuple[dict[str, SendMessageResult], list[_Waiting]]:
        """One provider's messages: look up the interrupted ones, send the rest, record every outcome."""
        limit = asyncio.Semaphore(self._concurrency)
        outcomes: list[tuple[Message, ProviderOutcome]] = []
        waiting: list[_Waiting] = []
        fresh: list[Message] = []
        claims: set[str] = set()

        async def look_up(message: Message) -> None:
            async with limit:
                interrupted = replace(
                    outgoing(message), owned_elsewhere=await self._owned_elsewhere(message, provider)
                )
                try:
                    found = await provider.find_sent(interrupted)
                except ProviderTemporaryError as error:
                    waiting.append(_Waiting(message, provider, error, looked_up=True))
                    return
            if found is not None:
                outcomes.append((message, found))
                claims.add(message.id)
            else:
                fresh.append(message)

        await asyncio.gather(*(look_up(m) for m in messages if m.status == "sending"))
        fresh += [m for m in messages if m.status != "sending"]
        rate_limit = self._providers.rate_limit(provider)
        if rate_limit is None and fresh:
            async with self._sessions.begin() as session:
                if len(fresh) > 1:
                    await session.execute(_CLAIM_PROVIDER_IDS, {"lock_key": _MANY_MESSAGES})
                await session.execute(
                    _MARK_SENDING, [{"m_id": m.id, "m_provider": provider.name} for m in fresh]
                )

        async def send(message: Message) -> None:
            async with limit:
                if rate_limit is not None:
                    await self._take_turn(message, provider, rate_limit.per_second)
                try:
                    outcome = await provider.send(outgoing(message))
                except ProviderRejectedError as error:
                    outcome = ProviderOutcome("failed", None, reason=str(error), suppress=error.suppress)
                except ProviderTemporaryError as error:
                    waiting.append(_Waiting(message, provider, error))
                    return
            outcomes.append((message, outcome))

        async def send_together(batching: BatchingProvider, group: list[Message]) -> None:
            async with limit:
                try:
                    found = await batching.send_batch([outgoing(message) for message in group])
                except ProviderRejectedError:
                    found = None  # one refused address refuses the request: each goes alone instead
                except ProviderTemporaryError as error:
                    waiting.extend(_Waiting(message, provider, error) for message in group)
                    return
            if found is None:
                await asyncio.gather(*(send(message) for message in group))
            else:
                outcomes.extend(zip(group, found, strict=True))

        if rate_limit is None and isinstance(provider, BatchingProvider):
            alone, together = _batches(provider, fresh)
            await asyncio.gather(
                *(send(message) for message in alone), *(send_together(provider, g) for g in together)
            )
        else:
            await asyncio.gather(*(send(message) for message in fresh))
        waiting = await self._give_up(waiting, outcomes)
        finished, contested = await self._record(provider, outcomes, claims)
        return finished, waiting + contested

    async def _owned_elsewhere(self, message: Message, provider: MessageProvider) -> frozenset[str]:
        """The provider ids other messages to the same address own: a lookup must never claim them."""
        if message.to is None:
            return frozenset()
        async with self._sessions() as session:
            owned = await session.scalars(
                select(Message.provider_message_id).where(
                    Message.channel == message.channel,
                    Message.to == message.to,
                    Message.provider == provider.name,
                    Message.id != message.id,
                    Message.provider_message_id.is_not(None),
                )
            )
            return frozenset(owner for owner in owned if owner)

    async def _take_turn(self, message: Message, provider: MessageProvider, per_second: float) -> None:
        """Wait for this call's turn under the provider's limit; the turn and the `sending` mark are one
        transaction, so `attempted_at` is the turn."""
        while True:
            async with self._sessions.begin() as session:
                turn = await take_turn(session, provider.name, per_second)
                if not isinstance(turn, float):
                    await update_message(
                        session,
                        message.id,
                        status="sending",
                        provider=provider.name,
                        attempts=message.attempts + 1,
                        attempted_at=turn,
                    )
                    return
            # Waiters wake spread over a fraction of an interval, so they do not all ask at once.
            await asyncio.sleep(turn + random.uniform(0, 0.1 / per_second))

    async def _give_up(
        self, waiting: list[_Waiting], outcomes: list[tuple[Message, ProviderOutcome]]
    ) -> list[_Waiting]:
        """On the activity's last attempt, a message that surely did not go out is recorded as failed."""
        if not waiting or not activity.in_activity():
            return waiting
        info = activity.info()
        # The policy the workflow scheduled with (some test servers do not echo it in the task).
        policy = info.retry_policy or SEND_MESSAGE.retry_policy
        # A local attempt never gives up: the workflow hands the send to a regular activity instead.
        last = bool(not info.is_local and policy.maximum_attempts and info.attempt >= policy.maximum_attempts)
        if not last:
            return waiting
        kept = []
        for item in waiting:
            if item.error.ambiguous or item.looked_up:
                kept.append(item)
            else:
                reason = f"gave up after {info.attempt} attempts: {item.error}"
                outcomes.append((item.message, ProviderOutcome("failed", None, reason)))
        return kept

    async def _record(
        self,
        provider: MessageProvider,
        outcomes: list[tuple[Message, ProviderOutcome]],
        claims: set[str] | frozenset[str] = frozenset(),
    ) -> tuple[dict[str, SendMessageResult], list[_Waiting]]:
        """Every outcome in one transaction (and the addresses a provider refused for good suppressed).

        An outcome a lookup found (`claims`) is recorded only when no other message owns its provider
        id; otherwise the message stays `sending`, to be looked up again."""
        if not outcomes:
            return {}, []
        contested: list[_Waiting] = []
        async with self._sessions.begin() as session:
            claimed = [(m, o) for m, o in outcomes if m.id in claims and o.provider_message_id]
            if claimed or any(outcome.provider_message_id for _, outcome in outcomes):
                lock = _CLAIM_PROVIDER_IDS if claimed else _SHARE_PROVIDER_IDS
                await session.execute(lock, {"lock_key": f"provider-ids:{provider.name}"})
            for message, outcome in claimed:
                if await _owner(session, provider.name, outcome.provider_message_id, message.id):
                    error = ProviderTemporaryError(
                        f"the provider's message {outcome.provider_message_id} belongs to another message",
                        ambiguous=True,
                    )
                    contested.append(_Waiting(message, provider, error, looked_up=True))
            outcomes = [(m, o) for m, o in outcomes if m.id not in {w.message.id for w in contested}]
            if not outcomes:
                return {}, contested
            if len(outcomes) > 1:
                await session.execute(_CLAIM_PROVIDER_IDS, {"lock_key": _MANY_MESSAGES})
            await session.execute(
                _RECORD_OUTCOME,
                [
                    {
                        "m_id": message.id,
                        "m_status": outcome.status,
                        "m_reason": outcome.reason,
                        "m_provider": provider.name,
                        "m_provider_id": outcome.provider_message_id,
                        "m_accepted": outcome.status not in ("failed", "undelivered"),
                    }
                    for message, outcome in outcomes
                ],
            )
            for message, outcome in outcomes:
                if outcome.suppress and message.to:
                    await suppress(
                        session, message.channel, message.to, outcome.suppress, source=provider.name
                    )
        results = {}
        for message, outcome in outcomes:
            log.info(
                "message %s", outcome.status, extra={"message_id": message.id, "provider": provider.name}
            )
            MESSAGES.labels(message.channel, provider.name, outcome.status).inc()
            results[message.id] = SendMessageResult(
                message_id=message.id, status=outcome.status, reason=outcome.reason, channel=message.channel
            )
        return results, contested

    async def _set_back(self, waiting: list[_Waiting]) -> None:
        """Record why each waiting message could not go: `pending` to be sent again, or still `sending`
        when the provider may have taken it (the next attempt looks first)."""
        async with self._sessions.begin() as session:
            for item in waiting:
                if item.looked_up:
                    continue
                await update_message(
                    session,
                    item.message.id,
                    status="sending" if item.error.ambiguous else "pending",
                    reason=str(item.error),
                )
        for item in waiting:
            log.warning(
                "provider unavailable",
                extra={
                    "message_id": item.message.id,
                    "provider": item.provider.name,
                    "attempt": activity.info().attempt if activity.in_activity() else None,
                },
            )


async def _owner(
    session: AsyncSession, provider: str, provider_message_id: str | None, other_than: str
) -> bool:
    """Whether a message other than `other_than` owns this provider id."""
    owner = await session.scalar(
        select(Message.id)
        .where(
            Message.provider == provider,
            Message.provider_message_id == provider_message_id,
            Message.id != other_than,
        )
        .limit(1)
    )
    return owner is not None
