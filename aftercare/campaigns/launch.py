"""Launching and steering campaigns in Temporal: a one-off campaign is one `CampaignRun` workflow; a
recurring one is a Temporal schedule that starts a run at each occurrence. Pause, resume and cancel
act on the schedule (if any) and on the run in progress (updates with validators, and cancellation).

Launching is idempotent: the run's workflow id and the schedule id come from the campaign key and
version, so launching again (say after Temporal was unreachable) starts what is missing and nothing
twice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from aftercare.store.campaigns import get_launch, record_launch, runs_of, set_launch_status, upsert_run
from models.campaign import CampaignDefinition
from models.campaign_runs import TERMINAL_RUN_STATUSES, CampaignRunInput, CampaignRunState, RunControl
from models.campaign_tables import CampaignLaunch, CampaignRun
from models.durations import format_iso_duration
from models.search_attributes import CAMPAIGN_KEY, CURRENT_STEP
from models.workflow_names import CAMPAIGN_RUN_WORKFLOW, CAMPAIGN_WORKFLOW_PREFIX, PAUSE_UPDATE, RESUME_UPDATE


class CampaignStateError(Exception):
    """The campaign cannot do that now (not launched, already cancelled, run already ended...)."""


@dataclass(frozen=True)
class Launched:
    """What a launch started: a run (one-off) or a schedule (recurring); `created` is False when it had
    been launched before."""

    key: str
    version: int
    status: str
    created: bool
    run_id: str | None = None
    schedule_id: str | None = None


def one_off_run_id(campaign: CampaignDefinition) -> str:
    """The id of a one-off campaign's run."""
    return f"{campaign.key}-v{campaign.version}"


def schedule_id_of(campaign: CampaignDefinition) -> str:
    """The id of a recurring campaign's Temporal schedule."""
    return f"{CAMPAIGN_WORKFLOW_PREFIX}{campaign.key}-v{campaign.version}"


class CampaignLauncher:
    """Launches campaigns and steers their runs."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        client: Client,
        task_queue: str,
        *,
        parallel_batches: int = 2,
    ) -> None:
        self._sessions = sessions
        self._client = client
        self._task_queue = task_queue
        self._parallel = parallel_batches

    def run_input(
        self,
        campaign: CampaignDefinition,
        run_id: str | None,
        now: datetime,
        facilities: Sequence[str] = (),
    ) -> CampaignRunInput:
        """The workflow input of a run (the send settings are frozen in with it)."""
        schedule = campaign.schedule
        return CampaignRunInput(
            campaign_key=campaign.key,
            campaign_version=campaign.version,
            run_id=run_id,
            start_at=campaign.first_run_at(now) if run_id and schedule.at else None,
            send_window=campaign.send_window,
            throttle_per_second=campaign.throttle.rate if campaign.throttle else None,
            batch_size=campaign.batch_size,
            parallel_batches=self._parallel,
            expires_after_seconds=campaign.expires_after.total_seconds(),
            facilities=sorted(facilities),
        )

    async def launch(self, campaign: CampaignDefinition, facilities: Sequence[str] = ()) -> Launched:
        """Start the campaign (again, harmlessly, when it was launched before and is not cancelled), to
        the patients of `facilities` (the launching caller's; none: the whole group)."""
        recurring = campaign.schedule.recurring
        first_status = "scheduled" if recurring or campaign.schedule.at else "launched"
        async with self._sessions.begin() as session:
            earlier = await get_launch(session, campaign.key, campaign.version)
            if earlier is not None and earlier.status == "cancelled":
                raise CampaignStateError(
                    f"campaign {campaign.key!r} version {campaign.version} was cancelled; "
                    "publish a new version to send it again"
                )
            created = await record_launch(
                session,
                campaign.key,
                campaign.version,
                status=first_status,
                recurring=_recurrence(campaign) if recurring else None,
                schedule_id=schedule_id_of(campaign) if recurring else None,
            )
            status = earlier.status if earlier is not None else first_status
            if not recurring:
                run_id = one_off_run_id(campaign)
                existing = await runs_of(session, campaign.key, campaign.version, limit=1)
                if not existing:
                    await upsert_run(
                        session,
                        run_id,
                        campaign_key=campaign.key,
                        campaign_version=campaign.version,
                        workflow_id=CAMPAIGN_WORKFLOW_PREFIX + run_id,
                        segment_key=campaign.segment,
                        status="scheduled" if campaign.schedule.at else "running",
                        scheduled_for=campaign.first_run_at(datetime.now(UTC)),
                        phase="Launched",
                    )
        if recurring:
            await self._create_schedule(campaign, facilities)
            return Launched(
                campaign.key, campaign.version, status, created, schedule_id=schedule_id_of(campaign)
            )
        await self._start_run(campaign, one_off_run_id(campaign), facilities)
        return Launched(campaign.key, campaign.version, status, created, run_id=one_off_run_id(campaign))

    async def _start_run(self, campaign: CampaignDefinition, run_id: str, facilities: Sequence[str]) -> None:
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await self._client.start_workflow(
                CAMPAIGN_RUN_WORKFLOW,
                self.run_input(campaign, run_id, datetime.now(UTC), facilities),
                id=CAMPAIGN_WORKFLOW_PREFIX + run_id,
                task_queue=self._task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=_search_attributes(campaign),
                static_summary=f"Campaign {campaign.name} (v{campaign.version})",
                static_details=(
                    f"Campaign `{campaign.key}` v{campaign.version} to segment `{campaign.segment}`"
                ),
            )

    async def _create_schedule(self, campaign: CampaignDefinition, facilities: Sequence[str]) -> None:
        schedule = campaign.schedule
        spec = ScheduleSpec(
            intervals=[ScheduleIntervalSpec(every=schedule.every)] if schedule.every else [],
            cron_expressions=[schedule.cron] if schedule.cron else [],
            start_at=schedule.at,
            end_at=schedule.until,
            time_zone_name=None,
        )
        action = ScheduleActionStartWorkflow(
            CAMPAIGN_RUN_WORKFLOW,
            self.run_input(campaign, None, datetime.now(UTC), facilities),
            id=schedule_id_of(campaign),
            task_queue=self._task_queue,
            typed_search_attributes=_search_attributes(campaign),
            static_summary=f"Campaign {campaign.name} (v{campaign.version})",
        )
        with contextlib.suppress(ScheduleAlreadyRunningError):
            await self._client.create_schedule(
                schedule_id_of(campaign),
                Schedule(action=action, spec=spec, policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP)),
            )

    async def pause(self, campaign: CampaignDefinition, reason: str | None) -> CampaignRunState | None:
        """Pause the schedule and the run in progress; answers the run's state when one was running."""
        return await self._steer(campaign, PAUSE_UPDATE, "paused", reason)

    async def resume(self, campaign: CampaignDefinition, reason: str | None) -> CampaignRunState | None:
        """Resume the schedule and the paused run."""
        return await self._steer(campaign, RESUME_UPDATE, "launched", reason)

    async def _live(self, campaign: CampaignDefinition) -> tuple[CampaignLaunch, list[CampaignRun]]:
        """The campaign's launch and its runs in progress; refuses a campaign never launched, cancelled,
        or one-off with no run in progress."""
        async with self._sessions() as session:
            launch = await get_launch(session, campaign.key, campaign.version)
            runs = await runs_of(session, campaign.key, campaign.version, limit=5)
        name = f"campaign {campaign.key!r} version {campaign.version}"
        if launch is None:
            raise CampaignStateError(f"{name} is not launched")
        if launch.status == "cancelled":
            raise CampaignStateError(f"{name} was cancelled")
        live = [run for run in runs if run.status not in TERMINAL_RUN_STATUSES]
        if launch.schedule_id is None and not live:
            raise CampaignStateError(f"{name} has no run in progress")
        return launch, live

    async def _steer(
        self, campaign: CampaignDefinition, update: str, status: str, reason: str | None
    ) -> CampaignRunState | None:
        launch, runs = await self._live(campaign)
        live = runs[0] if runs else None
        if launch.schedule_id is not None:
            handle = self._client.get_schedule_handle(launch.schedule_id)
            await (handle.pause(note=reason) if update == PAUSE_UPDATE else handle.unpause(note=reason))
        state = None
        if live is not None:
            try:
                state = await self._client.get_workflow_handle(live.workflow_id).execute_update(
                    update, RunControl(reason=reason), result_type=CampaignRunState
                )
            except WorkflowUpdateFailedError as error:
                cause = error.cause
                raise CampaignStateError(
                    cause.message if isinstance(cause, ApplicationError) else str(cause or error)
                ) from error
            except RPCError as error:
                if error.status != RPCStatusCode.NOT_FOUND:
                    raise
                if launch.schedule_id is None:
                    raise CampaignStateError("the campaign's run has ended") from error
        async with self._sessions.begin() as session:
            await set_launch_status(session, campaign.key, campaign.version, status)
        return state

    async def cancel(self, campaign: CampaignDefinition) -> None:
        """Stop the campaign: delete its schedule and cancel the run in progress (its remaining
        recipients are recorded as `cancelled`)."""
        launch, live = await self._live(campaign)
        if launch.schedule_id is not None:
            with contextlib.suppress(RPCError):
                await self._client.get_schedule_handle(launch.schedule_id).delete()
        for run in live:
            try:
                await self._client.get_workflow_handle(run.workflow_id).cancel()
            except RPCError as error:
                if error.status != RPCStatusCode.NOT_FOUND:
                    raise
        async with self._sessions.begin() as session:
            await set_launch_status(session, campaign.key, campaign.version, "cancelled")


def _recurrence(campaign: CampaignDefinition) -> str:
    schedule = campaign.schedule
    if schedule.cron is not None:
        return schedule.cron
    assert schedule.every is not None
    return format_iso_duration(schedule.every)


def _search_attributes(campaign: CampaignDefinition) -> TypedSearchAttributes:
    return TypedSearchAttributes(
        [SearchAttributePair(CAMPAIGN_KEY, campaign.key), SearchAttributePair(CURRENT_STEP, "launched")]
    )
