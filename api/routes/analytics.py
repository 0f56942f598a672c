"""Analytics: a journey's funnel and delivery and engagement per channel, journey, template or
campaign, from the rollups the database keeps with every fact (counts only; facility scoped)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status

from aftercare.analytics.ab import Conversion, campaign_ab, journey_split_ab
from aftercare.analytics.attendance import STATUSES, attendance, invitations
from aftercare.analytics.export import rate_cell
from aftercare.analytics.funnel import NO_SEGMENT, journey_funnel, segment_key
from aftercare.analytics.messages import COUNTS, RATES, GroupBy, message_rows
from aftercare.analytics.series import Interval, Point, journey_series, message_series
from aftercare.analytics.stats import Comparison
from aftercare.analytics.window import Window
from api.deps import SessionDep
from api.routes.analytics_export import ExportDep
from models.analytics_api import (
    AbView,
    AttendanceRowView,
    AttendanceView,
    FunnelOutcomeView,
    FunnelStepView,
    FunnelView,
    JourneyAbView,
    MessageAnalyticsView,
    MessageRowView,
    SeriesPointView,
    SeriesView,
    VariantView,
)
from models.journey import Channel
from models.zones import known_zone

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])

From = Annotated[datetime | None, Query(alias="from", description="facts from this instant (inclusive)")]
To = Annotated[datetime | None, Query(alias="to", description="facts before this instant")]


Zone = Annotated[str, Query(description="the viewer's IANA time zone (hours and days are its)")]
Every = Annotated[Interval, Query(description="hour or day")]


def zone_of(name: str) -> str:
    """A known IANA zone name; 400 otherwise."""
    if not known_zone(name):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"unknown time zone {name[:64]!r}")
    return name


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
    export: ExportDep,
    start: From = None,
    end: To = None,
    version: Annotated[int | None, Query(ge=1, description="one version (default: all)")] = None,
    segment: Annotated[
        str | None,
        Query(
            max_length=64,
            description=f"enrollments that entered through this segment (`{NO_SEGMENT}`: started otherwise)",
        ),
    ] = None,
    channel: Annotated[Channel | None, Query(description="steps whose message went on this channel")] = None,
) -> FunnelView | Response:
    """A journey's funnel: per step entered, passed, waiting, timed out, exited, results and branches."""
    counted = await journey_funnel(
        session,
        key,
        version=version,
        window=window_of(start, end),
        segment=None if segment is None else segment_key(segment),
        channel=channel,
    )
    if export.csv:
        return export.response(
            "-".join(["funnel", key, *(name for name in (segment, channel) if name is not None)]),
            ["step", "entered", "passed", "waiting", "timed_out", "exited", "median_seconds", "p90_seconds"],
            [
                *(
                    [
                        row.id,
                        row.entered,
                        row.passed,
                        row.waiting,
                        row.timed_out,
                        sum(row.exited.values()),
                        row.median_seconds,
                        row.p90_seconds,
                    ]
                    for row in counted.steps
                ),
                *(
                    [
                        f"outcome:{row.outcome}",
                        row.count,
                        None,
                        None,
                        None,
                        None,
                        row.median_seconds,
                        row.p90_seconds,
                    ]
                    for row in counted.outcomes
                ),
            ],
        )
    return FunnelView(
        journey_key=counted.journey_key,
        version=counted.version,
        segment=segment,
        channel=channel,
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
    export: ExportDep,
    group_by: Annotated[GroupBy, Query(description="channel, journey, template or campaign")] = "channel",
    start: From = None,
    end: To = None,
) -> MessageAnalyticsView | Response:
    """Delivery and engagement: sent, delivered, failed, bounced, opened, clicked, blocked, with rates."""
    rows = await message_rows(session, group_by, window_of(start, end))
    if export.csv:
        return export.response(
            f"messages-by-{group_by}",
            [group_by, *COUNTS, *RATES],
            (
                [
                    row.key,
                    *(row.counts[name] for name in COUNTS),
                    *(
                        rate_cell(
                            rate, row.counts[RATES[name][0]], row.counts[RATES[name][1]], export.small_cell
                        )
                        for name, rate in row.rates().items()
                    ),
                ]
                for row in rows
            ),
        )
    return MessageAnalyticsView(
        group_by=group_by,
        rows=[
            MessageRowView(
                key=row.key,
                **row.counts,
                blocked_by=row.blocked_by,
                failed_by=row.failed_by,
                deferred_by=row.deferred_by,
                rates=row.rates(),
            )
            for row in rows
        ],
    )


def _ab_csv(export: ExportDep, name: str, comparison: Comparison) -> Response:
    return export.response(
        name,
        ["variant", "exposures", "conversions", "rate", "ci_low", "ci_high", "p_value"],
        (
            [
                row.variant,
                row.exposures,
                row.conversions,
                *(
                    rate_cell(value, row.conversions, row.exposures, export.small_cell)
                    for value in (row.rate, row.ci_low, row.ci_high)
                ),
                row.p_value,
            ]
            for row in comparison.variants
        ),
    )


def _variants(comparison: Comparison) -> list[VariantView]:
    return [VariantView.model_validate(row, from_attributes=True) for row in comparison.variants]


@router.get("/journeys/{key}/ab", response_model=JourneyAbView)
async def journey_variants(
    key: str,
    session: SessionDep,
    export: ExportDep,
    step: Annotated[str, Query(description="the split step")],
    goal: Annotated[str, Query(description="the outcome that counts as a conversion")],
    version: Annotated[int | None, Query(ge=1, description="one version (default: all)")] = None,
) -> JourneyAbView | Response:
    """A journey's split test: per path, enrollments sent down it and those that reached the goal."""
    comparison = await journey_split_ab(session, key, step, goal, version)
    if export.csv:
        return _ab_csv(export, f"ab-{key}-{step}", comparison)
    return JourneyAbView(
        journey_key=key,
        step=step,
        goal=goal,
        variants=_variants(comparison),
        winner=comparison.winner,
        rule=comparison.rule,
    )


@router.get("/campaigns/{key}/ab", response_model=AbView)
async def campaign_variants(
    key: str,
    session: SessionDep,
    export: ExportDep,
    metric: Annotated[Conversion, Query(description="the conversion")] = "clicked",
    run_id: Annotated[str | None, Query(description="a run (default: the latest)")] = None,
) -> AbView | Response:
    """A campaign run's A/B result: per variant rate, 95 % interval, p-value; a winner if significant."""
    compared = await campaign_ab(session, key, metric, run_id)
    if compared is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"campaign {key!r} has no such run")
    if export.csv:
        return _ab_csv(export, f"ab-{key}", compared.comparison)
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


def _series(
    export: ExportDep, name: str, interval: str, zone: str, points: list[Point]
) -> SeriesView | Response:
    names = list(points[0].counts) if points else []
    if export.csv:
        return export.response(
            name, ["start", *names], ([point.start.isoformat(), *point.counts.values()] for point in points)
        )
    return SeriesView(
        interval=interval,
        timezone=zone,
        points=[SeriesPointView(start=point.start, counts=point.counts) for point in points],
    )


@router.get("/messages/series", response_model=SeriesView)
async def messages_series(
    session: SessionDep,
    export: ExportDep,
    interval: Every = "day",
    tz: Zone = "UTC",
    start: From = None,
    end: To = None,
    channel: Annotated[str | None, Query(description="one channel")] = None,
    journey_key: Annotated[str | None, Query(description="one journey")] = None,
) -> SeriesView | Response:
    """Message counts per hour or day in the viewer's time zone."""
    zone = zone_of(tz)
    points = await message_series(
        session, interval, zone, window_of(start, end), channel=channel, journey_key=journey_key
    )
    return _series(export, "messages-series", interval, zone, points)


@router.get("/journeys/{key}/series", response_model=SeriesView)
async def journeys_series(
    key: str,
    session: SessionDep,
    export: ExportDep,
    interval: Every = "day",
    tz: Zone = "UTC",
    start: From = None,
    end: To = None,
    version: Annotated[int | None, Query(ge=1, description="one version (default: all)")] = None,
) -> SeriesView | Response:
    """Enrollments entered and ended (per status) per hour or day in the viewer's time zone."""
    zone = zone_of(tz)
    points = await journey_series(session, key, interval, zone, window_of(start, end), version)
    return _series(export, f"journey-series-{key}", interval, zone, points)


@router.get("/events", response_model=AttendanceView)
async def events_attendance(
    session: SessionDep,
    export: ExportDep,
    event_key: Annotated[str | None, Query(description="one event (default: all)")] = None,
) -> AttendanceView | Response:
    """Event attendance per session: registered, waitlisted, cancelled, attended, no-show and its rate;
    the invitations sent per event."""
    rows = await attendance(session, event_key)
    if export.csv:
        return export.response(
            "event-attendance",
            ["event", "session", *STATUSES, "offers", "no_show_rate"],
            (
                [
                    row.event_key,
                    row.session_id,
                    *row.counts.values(),
                    row.offers,
                    rate_cell(
                        row.no_show_rate,
                        row.counts["no_show"],
                        row.counts["attended"] + row.counts["no_show"],
                        export.small_cell,
                    ),
                ]
                for row in rows
            ),
        )
    return AttendanceView(
        rows=[
            AttendanceRowView(
                event_key=row.event_key,
                session_id=row.session_id,
                **{name: row.counts[name] for name in STATUSES},
                offers=row.offers,
                no_show_rate=row.no_show_rate,
            )
            for row in rows
        ],
        invited=await invitations(session, event_key),
    )
