"""A campaign run's progress and results, from its recipients and their messages: who was targeted,
who was suppressed or skipped and why, and of the messages sent, how many were delivered, opened,
clicked, replied to, or followed by an opt-out; per A/B variant as well."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, Integer, Select, and_, case, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.campaigns.audience import RECIPIENTS
from models.tables import ConsentEvent, InboundMessage, Message, table_of

MESSAGES = table_of(Message)
INBOUND = table_of(InboundMessage)
CONSENTS = table_of(ConsentEvent)
# Replies and opt-outs count for a message when they come within this long after it.
ATTRIBUTION_WINDOW = timedelta(days=7)
RECIPIENT_STATES = ("pending", "deferred", "messaged", "suppressed", "skipped", "expired", "cancelled")
# Message statuses that mean the provider took the message, and those that mean it failed.
FAILED = ("failed", "undelivered")
DELIVERED = ("delivered", "printed")


@dataclass
class Tally:
    """Counts for a run or one of its variants."""

    targeted: int = 0
    states: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RECIPIENT_STATES, 0))
    sent: int = 0
    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    replied: int = 0
    opted_out: int = 0
    failed: int = 0
    in_flight: int = 0


@dataclass(frozen=True)
class Reason:
    """Why some recipients were not messaged: the state, the guardrail rule and its words."""

    state: str
    rule: str | None
    reason: str | None
    count: int


@dataclass(frozen=True)
class RunResults:
    """The run's totals, per variant, and the reasons recipients were passed over."""

    total: Tally
    variants: dict[str, Tally]
    reasons: list[Reason]


async def run_results(session: AsyncSession, run_id: str, reasons_limit: int = 25) -> RunResults:
    """Three grouped queries over the run's recipients (and their messages)."""
    total, variants = Tally(), dict[str, Tally]()
    states = await session.execute(
        select(RECIPIENTS.c.variant, RECIPIENTS.c.state, func.count())
        .where(RECIPIENTS.c.run_id == run_id)
        .group_by(RECIPIENTS.c.variant, RECIPIENTS.c.state)
    )
    for variant, state, count in states:
        tally = variants.setdefault(variant, Tally())
        for target in (tally, total):
            target.targeted += count
            target.states[state] = target.states.get(state, 0) + count
    for row in await session.execute(_engagement(run_id)):
        tally = variants.setdefault(row.variant, Tally())
        for target in (tally, total):
            for name in (
                "sent",
                "delivered",
                "opened",
                "clicked",
                "replied",
                "opted_out",
                "failed",
                "in_flight",
            ):
                setattr(target, name, getattr(target, name) + int(getattr(row, name) or 0))
    passed_over = await session.execute(
        select(RECIPIENTS.c.state, RECIPIENTS.c.rule, RECIPIENTS.c.reason, func.count().label("n"))
        .where(RECIPIENTS.c.run_id == run_id, RECIPIENTS.c.state.not_in(("messaged", "pending")))
        .group_by(RECIPIENTS.c.state, RECIPIENTS.c.rule, RECIPIENTS.c.reason)
        .order_by(func.count().desc(), RECIPIENTS.c.state, RECIPIENTS.c.rule)
        .limit(reasons_limit)
    )
    return RunResults(
        total=total,
        variants=dict(sorted(variants.items())),
        reasons=[Reason(state, rule, reason, count) for state, rule, reason, count in passed_over],
    )


def _engagement(run_id: str) -> Select[Any]:
    message = MESSAGES
    replied = exists().where(
        INBOUND.c.patient_id == message.c.patient_id,
        INBOUND.c.keyword.is_(None),
        INBOUND.c.received_at >= message.c.created_at,
        INBOUND.c.received_at < message.c.created_at + ATTRIBUTION_WINDOW,
    )
    opted_out = exists().where(
        CONSENTS.c.patient_id == message.c.patient_id,
        CONSENTS.c.status == "revoked",
        CONSENTS.c.recorded_at >= message.c.created_at,
        CONSENTS.c.recorded_at < message.c.created_at + ATTRIBUTION_WINDOW,
    )
    sent = message.c.sent_at.is_not(None)

    def count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
        return func.sum(case((condition, 1), else_=0)).cast(Integer)

    return (
        select(
            RECIPIENTS.c.variant,
            count_if(sent).label("sent"),
            count_if(message.c.delivered_at.is_not(None) | message.c.status.in_(DELIVERED)).label(
                "delivered"
            ),
            count_if(message.c.opened_at.is_not(None)).label("opened"),
            count_if(message.c.clicked_at.is_not(None)).label("clicked"),
            count_if(and_(sent, replied)).label("replied"),
            count_if(and_(sent, opted_out)).label("opted_out"),
            count_if(message.c.status.in_(FAILED)).label("failed"),
            count_if(message.c.status.in_(("pending", "sending"))).label("in_flight"),
        )
        .select_from(RECIPIENTS.join(message, message.c.id == RECIPIENTS.c.message_id))
        .where(RECIPIENTS.c.run_id == run_id, RECIPIENTS.c.state == "messaged")
        .group_by(RECIPIENTS.c.variant)
    )
