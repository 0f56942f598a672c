"""Analytics: a journey's funnel and delivery and engagement per channel, journey, template or
campaign, from the rollups the database keeps with every fact (counts only; facility scoped)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from aftercare.analytics.ab import Conversion, campaign_ab
from aftercare.analytics.funnel import journey_funnel
from aftercare.analytics.messages import GroupBy, message_rows
from aftercare.analytics.window import Window
from api.deps import SessionDep
from models.analytics_api import (
    AbView,
    FunnelOutcomeView,
    FunnelStepView,
    FunnelView,
    MessageAnalyticsView,
    MessageRowView,
    VariantView,
)

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])

From = Annotated[datetime | None, Query(alias="from", description="facts from this instant (inclusive)")]
To = Annotated[datetime | None, Query(alias="to", description="facts before this instant")]


def window_of(start: datetime | None, end: datetime | None) -> Window:
    """The window of `from` and `to` (an instant without an offset is UTC); 400 when empty."""
    start = start.replace(tzinfo=UTC) if start is not None and start.tzinfo is None else start
    end = end.replace(tzinfo=UTC) if end is not None and end.tzinfo is None else end
    if start is not None and end is not None and start >= end:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "`from` must be before `to`")
    return Window(start, end)


@router.get("/journeys/{key}/funnel", response_model=FunnelView)
async def funnel(
    key: str,
    session: SessionDep,
    start: From = None,
    end: To = None,
    version: Annotated[int | None, Query(ge=1, description="one version (default: all)")] = None,
) -> FunnelView:
    """A journey's funnel: per step entered, passed, waiting, timed out, exited, results and branches."""
    counted = await journey_funnel(session, key, version=version, window=window_of(start, end))
    return FunnelView(
        journey_key=counted.journey_key,
        version=counted.version,
        entered=counted.entered,
        steps=[
            FunnelStepView(
                id=row.id,
                entered=row.entered,
                passed=row.passed,
                waiting=row.waiting,
                timed_out=row.timed_out,
                exited=sum(row.exited.values()),
                exited_by_status=row.exited,
                results=row.results,
                branches=row.branches,
                median_seconds=row.median_seconds,
                p90_seconds=row.p90_seconds,
            )
            for row in counted.steps
        ],
        outcomes={row.outcome: row.count for row in counted.outcomes},
        outcome_details=[
            FunnelOutcomeView(
                outcome=row.outcome,
                count=row.count,
                statuses=row.statuses,
                median_seconds=row.median_seconds,
                p90_seconds=row.p90_seconds,
            )
            for row in counted.outcomes
        ],
    )


@router.get("/messages", response_model=MessageAnalyticsView)
async def messages(
    session: SessionDep,
    group_by: Annotated[GroupBy, Query(description="channel, journey, template or campaign")] = "channel",
    start: From = None,
    end: To = None,
) -> MessageAnalyticsView:
    """Delivery and engagement: sent, delivered, failed, bounced, opened, clicked, blocked, with rates."""
    rows = await message_rows(session, group_by, window_of(start, end))
    return MessageAnalyticsView(
        group_by=group_by,
        rows=[
            MessageRowView(
                key=row.key,
                **row.counts,
                blocked_by=row.blocked_by,
                deferred_by=row.deferred_by,
                rates=row.rates(),
            )
            for row in rows
        ],
    )


@router.get("/campaigns/{key}/ab", response_model=AbView)
async def campaign_variants(
    key: str,
    session: SessionDep,
    metric: Annotated[Conversion, Query(description="the conversion")] = "clicked",
    run_id: Annotated[str | None, Query(description="a run (default: the latest)")] = None,
) -> AbView:
    """A campaign run's A/B result: per variant rate, 95 % interval, p-value; a winner if significant."""
    compared = await campaign_ab(session, key, metric, run_id)
    if compared is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"campaign {key!r} has no such run")
    return AbView(
        campaign_key=compared.campaign_key,
        run_id=compared.run_id,
        metric=compared.metric,
        variants=[
            VariantView.model_validate(row, from_attributes=True) for row in compared.comparison.variants
        ],
        winner=compared.comparison.winner,
        rule=compared.comparison.rule,
    )
