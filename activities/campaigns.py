"""The activities of a campaign run: freeze the audience, read the send windows, send a batch, keep the
run's projection, and close the run."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.messaging.campaign_batch import CampaignBatchSender
from aftercare.campaigns.audience import close_open_recipients, freeze_audience, zone_ranges
from aftercare.campaigns.windows import window_state, zone_named
from aftercare.store.campaigns import get_campaign, get_run, upsert_run
from aftercare.store.facilities import audience_reach, list_facilities
from aftercare.store.segments import get_segment
from models.campaign import CampaignDefinition
from models.campaign_runs import (
    CampaignBatchInput,
    CampaignBatchResult,
    CloseRunInput,
    CloseRunResult,
    FreezeAudienceInput,
    FreezeAudienceResult,
    RunProjection,
    WindowsInput,
    WindowsResult,
    ZoneSpan,
    ZoneWindow,
)


class CampaignActivities:
    """Campaign runs' side effects, on the store and (through the batch sender) the providers."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        sender: CampaignBatchSender,
        hospital_timezone: str,
        *,
        write_back: bool = False,
    ) -> None:
        self._sessions = sessions
        self._write_back = write_back
        self._sender = sender
        self._hospital_timezone = hospital_timezone
        # Published versions never change, so each is read once per worker.
        self._definitions: dict[tuple[str, int], CampaignDefinition] = {}

    async def _campaign(self, session: AsyncSession, key: str, version: int) -> CampaignDefinition:
        found = self._definitions.get((key, version)) or await get_campaign(session, key, version)
        if found is None:
            raise ApplicationError(
                f"campaign {key!r} version {version} is not published",
                type="CampaignNotFound",
                non_retryable=True,
            )
        self._definitions[(key, version)] = found
        return found

    @activity.defn(name="freeze_campaign_audience")
    async def freeze_campaign_audience(self, request: FreezeAudienceInput) -> FreezeAudienceResult:
        """Freeze the segment's members as the run's recipients, once: a retry finds them frozen."""
        async with self._sessions.begin() as session:
            await session.execute(
                select(func.pg_advisory_xact_lock(func.hashtext(f"campaign:{request.run_id}")))
            )
            run = await get_run(session, request.run_id)
            if run is None or run.frozen_at is None:
                campaign = await self._campaign(session, request.campaign_key, request.campaign_version)
                segment = await get_segment(session, campaign.segment)
                if segment is None:
                    raise ApplicationError(
                        f"segment {campaign.segment!r} does not exist",
                        type="SegmentNotFound",
                        non_retryable=True,
                    )
                now = datetime.now(UTC)
                reach = audience_reach(
                    await list_facilities(session), request.facilities, (campaign.facility, segment.facility)
                )
                audience = await freeze_audience(
                    session, request.run_id, campaign, segment, now, self._hospital_timezone, reach
                )
                await upsert_run(
                    session,
                    request.run_id,
                    campaign_key=campaign.key,
                    campaign_version=campaign.version,
                    workflow_id=request.workflow_id,
                    segment_key=segment.key,
                    segment_version=segment.version,
                    audience=audience,
                    frozen_at=datetime.now(UTC),
                    status="running",
                    phase=f"Audience frozen: {audience} members of segment {segment.key}",
                )
                version: int | None = segment.version
            else:
                audience, version = run.audience or 0, run.segment_version
            zones = await zone_ranges(session, request.run_id)
        return FreezeAudienceResult(
            audience=audience,
            segment_version=version,
            zones=[ZoneSpan(zone=z.zone, first=z.first, last=z.last, count=z.count) for z in zones],
        )

    @activity.defn(name="campaign_windows")
    async def campaign_windows(self, request: WindowsInput) -> WindowsResult:
        """Whether each zone's send window is open at `now`, until when, or when it opens."""
        zones = []
        for name in request.zones:
            state = window_state(request.window, zone_named(name, self._hospital_timezone), request.now)
            zones.append(
                ZoneWindow(zone=name, open=state.open, closes_at=state.closes_at, opens_at=state.opens_at)
            )
        return WindowsResult(zones=zones)

    @activity.defn(name="send_campaign_batch")
    async def send_campaign_batch(self, request: CampaignBatchInput) -> CampaignBatchResult:
        """Decide and send one range of the run's recipients (heartbeating while it delivers)."""
        async with self._sessions() as session:
            campaign = await self._campaign(session, request.campaign_key, request.campaign_version)
        result = await self._sender.send(request, campaign, heartbeat=activity.heartbeat)
        return result.model_copy(update={"write_back": self._write_back and result.selected > 0})

    @activity.defn(name="record_campaign_run")
    async def record_campaign_run(self, update: RunProjection) -> None:
        """Bring the run's projection up to date (created on the first call)."""
        async with self._sessions.begin() as session:
            campaign = await self._campaign(session, update.campaign_key, update.campaign_version)
            values = {
                "campaign_key": campaign.key,
                "campaign_version": campaign.version,
                "workflow_id": update.workflow_id,
                "segment_key": campaign.segment,
                "status": update.status,
                "phase": update.phase,
            }
            if update.scheduled_for is not None:
                values["scheduled_for"] = update.scheduled_for
            if update.ended:
                values["ended_at"] = datetime.now(UTC)
            await upsert_run(session, update.run_id, **values)

    @activity.defn(name="close_campaign_run")
    async def close_campaign_run(self, request: CloseRunInput) -> CloseRunResult:
        """Close the recipients still open (`expired` or `cancelled`, with the reason)."""
        async with self._sessions.begin() as session:
            closed = await close_open_recipients(
                session, request.run_id, request.recipient_state, request.reason
            )
        return CloseRunResult(closed=closed)
