"""Published campaign definitions, their launches and their runs' projections."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.store.versioned import VersionConflict, latest_versions, publish_version, read_version
from models.campaign import CampaignDefinition
from models.campaign_tables import Campaign, CampaignLaunch, CampaignRun


class CampaignVersionConflict(VersionConflict):
    """This key and version is already published with other content."""


async def publish_campaign(
    session: AsyncSession, definition: CampaignDefinition
) -> Literal["created", "unchanged"]:
    """Store a version; identical content again is a no-op, other content a conflict."""
    return await publish_version(
        session,
        Campaign,
        definition.document(),
        {
            "key": definition.key,
            "version": definition.version,
            "name": definition.name,
            "facility": definition.facility,
        },
        what="campaign",
        conflict=CampaignVersionConflict,
    )


async def get_campaign(
    session: AsyncSession, key: str, version: int | None = None
) -> CampaignDefinition | None:
    """One version, or the latest when `version` is None."""
    document = await read_version(session, Campaign, key, version)
    return CampaignDefinition.model_validate(document) if document is not None else None


async def latest_campaigns(session: AsyncSession) -> list[CampaignDefinition]:
    """The latest version of every campaign, by key."""
    return [
        CampaignDefinition.model_validate(document) for document in await latest_versions(session, Campaign)
    ]


async def get_launch(session: AsyncSession, key: str, version: int) -> CampaignLaunch | None:
    """The launch of this campaign version, if it was launched."""
    launch: CampaignLaunch | None = await session.get(CampaignLaunch, (key, version))
    return launch


async def launches_of(
    session: AsyncSession, campaigns: Sequence[CampaignDefinition]
) -> dict[tuple[str, int], CampaignLaunch]:
    """The launches of these campaign versions (one query), by key and version."""
    if not campaigns:
        return {}
    wanted = [(campaign.key, campaign.version) for campaign in campaigns]
    rows = await session.scalars(
        select(CampaignLaunch).where(tuple_(CampaignLaunch.key, CampaignLaunch.version).in_(wanted))
    )
    return {(launch.key, launch.version): launch for launch in rows}


async def record_launch(
    session: AsyncSession,
    key: str,
    version: int,
    *,
    status: str,
    recurring: str | None,
    schedule_id: str | None,
) -> bool:
    """Record a launch; False when this version was already launched (nothing changes then)."""
    inserted = await session.scalar(
        insert(CampaignLaunch)
        .values(key=key, version=version, status=status, recurring=recurring, schedule_id=schedule_id)
        .on_conflict_do_nothing()
        .returning(CampaignLaunch.key)
    )
    return inserted is not None


async def set_launch_status(session: AsyncSession, key: str, version: int, status: str) -> None:
    """Record what the API did to a launch (`paused`, `launched`, `cancelled`)."""
    await session.execute(
        update(CampaignLaunch)
        .where(CampaignLaunch.key == key, CampaignLaunch.version == version)
        .values(status=status, updated_at=func.now())
    )


async def upsert_run(session: AsyncSession, run_id: str, **values: Any) -> None:
    """Create or change a run's projection (`campaign_key`, `campaign_version`, `workflow_id` and
    `segment_key` are needed the first time)."""
    statement = insert(CampaignRun).values(id=run_id, **values)
    changed = {
        name: value for name, value in values.items() if name not in ("campaign_key", "campaign_version")
    }
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[CampaignRun.id], set_={**changed, "updated_at": func.now()}
        )
    )


async def get_run(session: AsyncSession, run_id: str) -> CampaignRun | None:
    """One run's projection."""
    run: CampaignRun | None = await session.get(CampaignRun, run_id)
    return run


async def runs_of(
    session: AsyncSession,
    key: str,
    version: int | None = None,
    *,
    before: datetime | None = None,
    limit: int = 50,
) -> Sequence[CampaignRun]:
    """A campaign's runs (of one version, or all), newest first."""
    query = select(CampaignRun).where(CampaignRun.campaign_key == key)
    if version is not None:
        query = query.where(CampaignRun.campaign_version == version)
    if before is not None:
        query = query.where(CampaignRun.created_at < before)
    rows = await session.scalars(query.order_by(CampaignRun.created_at.desc(), CampaignRun.id).limit(limit))
    return rows.all()
