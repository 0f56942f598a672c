"""Analytics in the console: an overview (messages per channel and per day, journeys, event
attendance) and a dashboard per journey (its funnel, each step coloured by drop-off, outcomes, entries
per day). Every chart (drawn by the vendored uPlot from the numbers embedded as JSON) is also a table,
and every table downloads as the API's CSV (small cells hidden)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response

from aftercare.analytics.ab import Conversion, campaign_ab
from aftercare.analytics.attendance import attendance
from aftercare.analytics.funnel import NO_SEGMENT, Funnel, journey_funnel, segment_key
from aftercare.analytics.messages import message_rows
from aftercare.analytics.series import journey_series, message_series
from aftercare.analytics.window import Window
from aftercare.store.campaigns import get_campaign, latest_campaigns
from aftercare.store.journeys import get_journey, latest_journeys
from aftercare.store.segments import latest_segments
from api.deps import get_services
from api.routes import analytics as api
from api.routes.analytics_export import Export
from console.auth import ConsoleUser
from console.rendering import render
from models.journey import Channel
from models.zones import known_zone

router = APIRouter(prefix="/console/analytics", include_in_schema=False)

Days = Annotated[int, Query(ge=1, le=366, description="the last this many days")]
Zone = Annotated[str | None, Query(description="the viewer's time zone")]
SegmentFilter = Annotated[str | None, Query(max_length=64, description="the segment entered through")]
ChannelFilter = Annotated[Channel | Literal[""] | None, Query(description="the steps' channel")]


def _zone(request: Request, name: str | None) -> str:
    zone = name or get_services(request).settings.hospital_timezone
    if not known_zone(zone):
        raise HTTPException(400, f"unknown time zone {zone[:64]!r}")
    return zone


def drop_off(entered: int, passed: int, waiting: int, exited: int) -> str:
    """How much of a step's entrants it loses (exits after the step, or neither passing it nor still
    waiting there): the class that colours the step (`low` under 10 %, `medium` under 30 %, else
    `high`)."""
    if entered <= 0:
        return "none"
    lost = max(exited, entered - passed - waiting) / entered
    return "low" if lost < 0.1 else "medium" if lost < 0.3 else "high"


def _funnel_chart(funnel: Funnel) -> dict[str, Any]:
    return {
        "kind": "bars",
        "labels": [step.id for step in funnel.steps],
        "series": {
            "entered": [step.entered for step in funnel.steps],
            "passed": [step.passed for step in funnel.steps],
        },
    }


def _series_chart(points: list[Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {
        "kind": "lines",
        "x": [int(point.start.timestamp()) for point in points],
        "labels": [point.start.strftime("%Y-%m-%d") for point in points],
        "series": {name: [point.counts.get(name, 0) for point in points] for name in names},
    }


@router.get("", response_class=HTMLResponse)
async def overview(request: Request, user: ConsoleUser, days: Days = 30, tz: Zone = None) -> HTMLResponse:
    """Messages per channel and per day, journeys' entries and outcomes, and event attendance."""
    zone = _zone(request, tz)
    window = Window(start=datetime.now(UTC) - timedelta(days=days))
    async with get_services(request).sessions() as session:
        channels = await message_rows(session, "channel", window)
        daily = await message_series(session, "day", zone, window)
        journeys = [
            (journey, await journey_funnel(session, journey.key, window=window))
            for journey in await latest_journeys(session)
        ]
        events = await attendance(session)
        campaigns = await latest_campaigns(session)
    context = {
        "campaigns": campaigns,
        "days": days,
        "tz": zone,
        "channels": channels,
        "daily": daily,
        "journeys": journeys,
        "events": events,
        "channel_chart": {
            "kind": "bars",
            "labels": [row.key or "none" for row in channels],
            "series": {
                name: [row.counts[name] for row in channels] for name in ("sent", "delivered", "failed")
            },
        },
        "daily_chart": _series_chart(daily, ("messages", "sent", "delivered")),
    }
    return render(request, "analytics.html", context)


def _chosen(segment: str | None, channel: Channel | Literal[""] | None) -> tuple[str | None, Channel | None]:
    """The filters' values; the empty choice ("all") is none."""
    return segment or None, channel if channel else None


@router.get("/journeys/{key}", response_class=HTMLResponse)
async def journey_dashboard(
    request: Request,
    user: ConsoleUser,
    key: str,
    days: Days = 30,
    tz: Zone = None,
    segment: SegmentFilter = None,
    channel: ChannelFilter = None,
) -> HTMLResponse:
    """A journey's funnel (filtered by segment and channel), outcomes and entries per day."""
    zone = _zone(request, tz)
    window = Window(start=datetime.now(UTC) - timedelta(days=days))
    segment, picked = _chosen(segment, channel)
    async with get_services(request).sessions() as session:
        journey = await get_journey(session, key)
        if journey is None:
            return render(request, "not_found.html", {"what": f"journey {key}"}, status_code=404)
        funnel = await journey_funnel(
            session,
            key,
            window=window,
            segment=None if segment is None else segment_key(segment),
            channel=picked,
        )
        daily = await journey_series(session, key, "day", zone, window)
        segments = [definition.key for definition in await latest_segments(session)]
    context = {
        "journey": journey,
        "funnel": funnel,
        "segment": segment,
        "channel": picked,
        "segments": segments,
        "no_segment": NO_SEGMENT,
        "channels": get_args(Channel),
        "filters": urlencode(
            {name: value for name, value in (("segment", segment), ("channel", picked)) if value}
        ),
        "days": days,
        "tz": zone,
        "daily": daily,
        "drop_off": drop_off,
        "funnel_chart": _funnel_chart(funnel),
        "daily_chart": _series_chart(daily, ("entered", "completed", "exited")),
    }
    return render(request, "analytics_journey.html", context)


@router.get("/campaigns/{key}", response_class=HTMLResponse)
async def campaign_dashboard(
    request: Request, user: ConsoleUser, key: str, metric: Conversion = "clicked"
) -> HTMLResponse:
    """A campaign's latest run per variant: rates with 95 % intervals, p-values and the winner rule."""
    async with get_services(request).sessions() as session:
        campaign = await get_campaign(session, key)
        if campaign is None:
            return render(request, "not_found.html", {"what": f"campaign {key}"}, status_code=404)
        compared = await campaign_ab(session, key, metric)
    variants = compared.comparison.variants if compared is not None else []
    context = {
        "campaign": campaign,
        "metric": metric,
        "metrics": get_args(Conversion),
        "compared": compared,
        "ab_chart": {
            "kind": "bars",
            "labels": [row.variant for row in variants],
            "series": {
                "exposures": [row.exposures for row in variants],
                metric: [row.conversions for row in variants],
            },
        },
    }
    return render(request, "analytics_campaign.html", context)


@router.get("/export.csv")
async def export(
    request: Request,
    user: ConsoleUser,
    table: Annotated[Literal["messages", "funnel", "series", "events"], Query()],
    group_by: Annotated[Literal["channel", "journey", "template", "campaign"], Query()] = "channel",
    journey: Annotated[str | None, Query()] = None,
    days: Days = 30,
    tz: Zone = None,
    segment: SegmentFilter = None,
    channel: ChannelFilter = None,
) -> Response:
    """A table of these pages as the API's CSV, with small cells hidden."""
    zone = _zone(request, tz)
    options = Export(csv=True, small_cell=get_services(request).settings.analytics_small_cell)
    start = datetime.now(UTC) - timedelta(days=days)
    answer: object
    async with get_services(request).sessions() as session:
        if table == "messages":
            answer = await api.messages(session, options, group_by, start, None)
        elif table == "series":
            answer = await api.messages_series(session, options, "day", zone, start, None)
        elif table == "events":
            answer = await api.events_attendance(session, options)
        elif journey is None:
            raise HTTPException(400, "a funnel export names its journey")
        else:
            answer = await api.funnel(
                journey, session, options, start, None, None, *_chosen(segment, channel)
            )
    assert isinstance(answer, Response)
    return answer
