"""Delivery and engagement from the rollups: messages per channel, journey, template or campaign, with
their fate (sent, delivered, failed, bounced, opened, clicked, blocked), the failures by reason (the
provider and its error code) and the guardrail decisions that blocked or deferred sends, by rule."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Label, SQLColumnExpression, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.analytics.live import DECISIONS, FAILURES, MESSAGES
from aftercare.analytics.window import Window
from models.campaign_tables import CampaignRun

GroupBy = Literal["channel", "journey", "template", "campaign"]
COUNTS = (
    "messages",
    "sent",
    "delivered",
    "failed",
    "bounced",
    "opened",
    "clicked",
    "blocked",
    "replied",
    "opted_out",
)
# Each rate with the count it is taken of.
RATES: dict[str, tuple[str, str]] = {
    "delivered_of_sent": ("delivered", "sent"),
    "failed_of_sent": ("failed", "sent"),
    "bounced_of_sent": ("bounced", "sent"),
    "opened_of_delivered": ("opened", "delivered"),
    "clicked_of_delivered": ("clicked", "delivered"),
    "blocked_of_messages": ("blocked", "messages"),
    "replied_of_sent": ("replied", "sent"),
    "opted_out_of_sent": ("opted_out", "sent"),
}
# Decisions that kept a message from going out (a deferral only delays it).
BLOCKING = ("suppressed", "skipped")


@dataclass
class MessageRow:
    """One group's counts; `key` None for messages outside any journey, template or campaign."""

    key: str | None
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    blocked_by: dict[str, int] = field(default_factory=dict)
    failed_by: dict[str, int] = field(default_factory=dict)
    deferred_by: dict[str, int] = field(default_factory=dict)

    def rates(self) -> dict[str, float | None]:
        """Each rate of `RATES`; None when its denominator is zero."""
        return {
            name: (self.counts[part] / self.counts[whole]) if self.counts[whole] else None
            for name, (part, whole) in RATES.items()
        }


def _group_column(group_by: GroupBy, table: Any = MESSAGES) -> SQLColumnExpression[Any]:
    """The grouping column of the messages rollup (or of the failures rollup, keyed alike)."""
    columns: dict[str, SQLColumnExpression[Any]] = {
        "channel": table.channel,
        "journey": table.journey_key,
        "template": table.template_key,
        "campaign": func.coalesce(CampaignRun.campaign_key, table.campaign_run_id),
    }
    return columns[group_by]


async def message_rows(
    session: AsyncSession, group_by: GroupBy, window: Window | None = None
) -> list[MessageRow]:
    """Rows per group, largest first. Decisions are counted for `channel` and `journey` (a decision
    names no template or campaign)."""
    window = window or Window()
    key: Label[Any] = _group_column(group_by).label("key")
    query = select(key, *(func.sum(getattr(MESSAGES, name)).label(name) for name in COUNTS)).where(
        window.over(MESSAGES.hour)
    )
    if group_by == "campaign":
        query = query.outerjoin(CampaignRun, CampaignRun.id == MESSAGES.campaign_run_id)
    rows: dict[str | None, MessageRow] = {}
    for record in await session.execute(query.group_by(key)):
        name = record.key or None
        row = rows.setdefault(name, MessageRow(name))
        for count in COUNTS:
            row.counts[count] += int(getattr(record, count) or 0)
    failure: Label[Any] = _group_column(group_by, FAILURES).label("key")
    failures = select(failure, FAILURES.reason, func.sum(FAILURES.n)).where(window.over(FAILURES.hour))
    if group_by == "campaign":
        failures = failures.outerjoin(CampaignRun, CampaignRun.id == FAILURES.campaign_run_id)
    for group, reason, count in await session.execute(failures.group_by(failure, FAILURES.reason)):
        if count:
            row = rows.setdefault(group or None, MessageRow(group or None))
            row.failed_by[reason] = row.failed_by.get(reason, 0) + int(count)
    if group_by in ("channel", "journey"):
        column = DECISIONS.channel if group_by == "channel" else DECISIONS.journey_key
        decisions = await session.execute(
            select(
                column,
                DECISIONS.decision,
                DECISIONS.rule,
                func.sum(DECISIONS.n),
            )
            .where(window.over(DECISIONS.hour), DECISIONS.decision != literal("sent"))
            .group_by(column, DECISIONS.decision, DECISIONS.rule)
        )
        for group, decision, rule, count in decisions:
            row = rows.setdefault(group or None, MessageRow(group or None))
            target = row.blocked_by if decision in BLOCKING else row.deferred_by
            target[rule] = target.get(rule, 0) + int(count)
    return sorted(rows.values(), key=lambda row: (-row.counts["messages"], row.key or ""))
