"""Transitional Care Management: the worklist of episodes, one episode, staff's complexity, and the
compliance report (JSON or CSV)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Response, status

from aftercare.store.tcm_episodes import set_complexity
from aftercare.tcm.report import as_csv
from aftercare.tcm.views import day_range, episode_views, report, worklist
from api.deps import ServicesDep, SessionDep
from models.risk_tables import TcmEpisode
from models.tcm_api import TcmComplexityChange, TcmEpisodeList, TcmEpisodeView, TcmReport

router = APIRouter(prefix="/v1/tcm", tags=["tcm"])
_MAX_REPORT_DAYS = 366


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@router.get("/episodes", response_model=TcmEpisodeList)
async def list_episodes(
    session: SessionDep,
    services: ServicesDep,
    episode_status: Annotated[
        Literal["open"], Query(alias="status", description="`open`: the worklist")
    ] = "open",
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> TcmEpisodeList:
    """The worklist: running episodes, those still to be contacted first by the time left to the contact
    deadline, then the contacted ones by the visit deadline; with risk band and attempts."""
    channels = services.settings.tcm_interactive_channels
    return TcmEpisodeList(items=await worklist(session, _now(), channels, limit))


async def _episode(
    session: SessionDep, services: ServicesDep, episode: TcmEpisode | None, episode_id: str
) -> TcmEpisodeView:
    if episode is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no TCM episode {episode_id!r}")
    views = await episode_views(session, [episode], _now(), services.settings.tcm_interactive_channels)
    return views[0]


@router.get("/episodes/{episode_id}", response_model=TcmEpisodeView)
async def get_episode(episode_id: str, session: SessionDep, services: ServicesDep) -> TcmEpisodeView:
    """One episode: deadlines, attempts, contact, visit, medication reconciliation, readmission."""
    return await _episode(session, services, await session.get(TcmEpisode, episode_id), episode_id)


@router.patch("/episodes/{episode_id}", response_model=TcmEpisodeView)
async def change_complexity(
    episode_id: str, body: TcmComplexityChange, session: SessionDep, services: ServicesDep
) -> TcmEpisodeView:
    """Staff set the complexity (high: visit within 7 days; moderate: 14); it then no longer follows the
    risk band."""
    async with session.begin():
        episode = await set_complexity(session, episode_id, body.complexity)
    return await _episode(session, services, episode, episode_id)


@router.get(
    "/report",
    response_model=TcmReport,
    responses={200: {"content": {"text/csv": {}}, "description": "the report, as JSON or CSV"}},
)
async def compliance_report(
    session: SessionDep,
    services: ServicesDep,
    start: Annotated[dt.date, Query(alias="from", description="first discharge day (UTC)")],
    end: Annotated[dt.date, Query(alias="to", description="last discharge day (UTC), included")],
    report_format: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
) -> TcmReport | Response:
    """Inpatient discharges of the period, read from the encounters (before TCM began too): how many,
    30-day readmissions (rate and 95 % CI), and where a TCM episode exists % contacted within 2
    business days, % seen within 7/14 days and 99495/99496 candidates; in total and by journey,
    version, variant, risk band and TCM contact. `format=csv` answers the groups as CSV, the total
    last."""
    if end < start or (end - start).days > _MAX_REPORT_DAYS:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"`to` must be on or after `from`, at most {_MAX_REPORT_DAYS} days on",
        )
    since, until = day_range(start, end)
    settings = services.settings
    total, groups = await report(
        session, since, until, _now(), settings.tcm_interactive_channels, settings.bands["lace"]
    )
    if report_format == "csv":
        return Response(
            as_csv([*groups, total]),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="tcm-{start}-{end}.csv"'},
        )
    return TcmReport(from_=since, to=until, total=total, groups=groups)
