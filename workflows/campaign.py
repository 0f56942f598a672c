"""The campaign run workflow: one run of a campaign version over its frozen audience.

It freezes the segment's members (once), then pages through them one time zone at a time, fanning
each round out to a few batch activities (never a workflow per patient). A zone is sent only while its
send window is open on the patients' clock; the run sleeps on durable timers until the next window
opens, until deferred sends are due, and between rounds to hold the campaign's throttle. `pause` and
`resume` are updates; cancellation closes the rest of the audience as `cancelled`. Everything it has
done lives in its state (what is left, as ranges of ordinals) and in the recipients' rows, so a crash
anywhere resumes where it was, and a long run continues as new with that state.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from activities.campaigns import CampaignActivities
    from activities.options import CAMPAIGN_BATCH, CAMPAIGN_STORE, DB_WRITE, EVALUATE
    from models.campaign_runs import (
        CampaignBatchInput,
        CampaignBatchResult,
        CampaignRunInput,
        CampaignRunResult,
        CampaignRunState,
        CampaignRunStatus,
        CloseRunInput,
        CloseRunResult,
        FreezeAudienceInput,
        RunControl,
        RunProgress,
        RunProjection,
        WindowsInput,
        WorkRange,
        ZoneWindow,
    )
    from models.search_attributes import CAMPAIGN_KEY, CURRENT_STEP
    from models.temporal import WriteBackInput
    from models.workflow_names import (
        CAMPAIGN_RUN_WORKFLOW,
        CAMPAIGN_WORKFLOW_PREFIX,
        FHIR_WRITE_BACK_PREFIX,
        FHIR_WRITE_BACK_WORKFLOW,
        PAUSE_UPDATE,
        RESUME_UPDATE,
        STATE_QUERY,
    )
    from workflows.support import failure_reason

# Runs started before campaigns wrote their messages back never do.
WRITE_BACK_PATCH = "campaign-write-back"

# A round's batches are at most this many seconds' worth of a throttled campaign.
THROTTLE_ROUND_SECONDS = 2.0
# A batch that failed for good is tried again this much later (until the run expires).
FAILED_BATCH_RETRY = timedelta(minutes=10)
# Rounds per run before continuing as new (the history stays small whatever the audience).
ROUNDS_PER_RUN = 250


@workflow.defn(name=CAMPAIGN_RUN_WORKFLOW)
class CampaignRunWorkflow:
    """Sends one campaign run."""

    def __init__(self) -> None:
        self._request: CampaignRunInput | None = None
        self._run_id = ""
        self._status: CampaignRunStatus = "running"
        self._phase: str | None = None
        self._pause_note = "Paused"
        self._progress = RunProgress()

    # --- handlers -------------------------------------------------------------------------------

    @workflow.query(name=STATE_QUERY)
    def state(self) -> CampaignRunState:
        """Status, what the run is doing, and its counts so far."""
        progress = self._progress
        return CampaignRunState(
            run_id=self._run_id,
            status="paused" if progress.paused and self._status == "running" else self._status,
            phase=self._phase,
            paused=progress.paused,
            audience=progress.audience,
            messaged=progress.messaged,
            refused=progress.refused,
        )

    @workflow.update(name=PAUSE_UPDATE)
    async def pause(self, request: RunControl) -> CampaignRunState:
        """Hold the run before its next round (batches in flight finish first)."""
        self._progress = self._progress.model_copy(update={"paused": True})
        self._pause_note = "Paused" + (f": {request.reason}" if request.reason else "")
        await self._show("paused", self._pause_note, project=True)
        return self.state()

    @pause.validator
    def _validate_pause(self, request: RunControl) -> None:
        if self._progress.paused or self._status not in ("running", "scheduled"):
            raise ApplicationError("the run is already paused or has ended", type="InvalidState")

    @workflow.update(name=RESUME_UPDATE)
    async def resume(self, request: RunControl) -> CampaignRunState:
        """Let a paused run go on."""
        self._progress = self._progress.model_copy(update={"paused": False})
        await self._show(
            "resuming", "Resumed" + (f": {request.reason}" if request.reason else ""), project=True
        )
        return self.state()

    @resume.validator
    def _validate_resume(self, request: RunControl) -> None:
        if not self._progress.paused or self._status not in ("running", "scheduled"):
            raise ApplicationError("the run is not paused", type="InvalidState")

    # --- the run --------------------------------------------------------------------------------

    @workflow.run
    async def run(self, request: CampaignRunInput) -> CampaignRunResult:
        """Freeze the audience, send it zone by zone inside the windows, then close the run."""
        self._request = request
        self._run_id = request.run_id or workflow.info().workflow_id.removeprefix(CAMPAIGN_WORKFLOW_PREFIX)
        self._progress = request.progress or RunProgress()
        workflow.upsert_search_attributes([CAMPAIGN_KEY.value_set(request.campaign_key)])
        try:
            if not self._progress.frozen:
                await self._wait_for_start(request)
                await self._freeze(request)
            await self._send(request)
        except asyncio.CancelledError:
            await self._close("cancelled", "cancelled", "the campaign run was cancelled")
            raise
        except ActivityError as failure:
            reason = failure_reason(failure)
            await self._close("failed", "expired", f"the campaign run failed: {reason}")
            raise ApplicationError(f"the campaign run failed: {reason}", type="CampaignFailed") from None
        closed = await self._close("completed", "expired", "the run ended before this patient's turn came")
        progress = self._progress
        return CampaignRunResult(
            run_id=self._run_id,
            status="completed",
            audience=progress.audience,
            messaged=progress.messaged,
            expired=closed,
        )

    async def _wait_for_start(self, request: CampaignRunInput) -> None:
        if request.start_at is not None and request.start_at > workflow.now():
            self._status = "scheduled"
            await self._show(
                "scheduled",
                f"Scheduled for {_when(request.start_at)}",
                project=True,
                scheduled=request.start_at,
            )
            await workflow.sleep(request.start_at - workflow.now())
            self._status = "running"
        await self._hold_while_paused()

    async def _freeze(self, request: CampaignRunInput) -> None:
        await self._show("freezing", "Freezing the audience", project=True)
        frozen = await workflow.execute_activity_method(
            CampaignActivities.freeze_campaign_audience,
            FreezeAudienceInput(
                run_id=self._run_id,
                workflow_id=workflow.info().workflow_id,
                campaign_key=request.campaign_key,
                campaign_version=request.campaign_version,
                facilities=request.facilities,
            ),
            **CAMPAIGN_STORE.options(),
        )
        self._progress = self._progress.model_copy(
            update={
                "frozen": True,
                "audience": frozen.audience,
                "todo": [WorkRange(zone=z.zone, first=z.first, last=z.last) for z in frozen.zones],
                "expires_at": workflow.now() + timedelta(seconds=request.expires_after_seconds),
            }
        )
        await self._show("sending", f"Sending to {frozen.audience} patients", project=True)

    async def _send(self, request: CampaignRunInput) -> None:
        rounds = 0
        while self._progress.todo:
            await self._hold_while_paused()
            now = workflow.now()
            expires_at = self._progress.expires_at
            if expires_at is not None and now >= expires_at:
                return
            windows = await self._windows(request, now)
            if not any(_due(r, windows[r.zone], now) for r in self._progress.todo):
                await self._sleep_until_due(windows, now)
                continue
            started = workflow.now()
            messaged = await self._round(request, windows, now)
            rounds += 1
            rate = request.throttle_per_second
            if rate:
                pause = timedelta(seconds=messaged / rate) - (workflow.now() - started)
                if pause > timedelta(0) and self._progress.todo:
                    self._phase = f"Throttled to {rate:g} messages a second"
                    await workflow.sleep(pause)
            if rounds >= ROUNDS_PER_RUN or workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(request.model_copy(update={"progress": self._progress}))

    async def _round(self, request: CampaignRunInput, windows: dict[str, ZoneWindow], now: datetime) -> int:
        """Carve up to `parallel_batches` batches off the front of the runnable ranges, send them at once,
        and put back what is left, what the window cut short and what was deferred."""
        size = request.batch_size
        parallel = request.parallel_batches
        if request.throttle_per_second:
            size = max(1, min(size, int(request.throttle_per_second * THROTTLE_ROUND_SECONDS)))
            parallel = 1
        batches: list[WorkRange] = []
        todo: list[WorkRange] = []
        for work in self._progress.todo:
            if not _due(work, windows[work.zone], now):
                todo.append(work)
                continue
            while len(batches) < parallel and work.first <= work.last:
                piece = work.model_copy(update={"last": min(work.first + size - 1, work.last)})
                batches.append(piece)
                work = work.model_copy(update={"first": piece.last + 1})
            if work.first <= work.last:
                todo.append(work)
        self._show_now("sending", _sending(batches, self._progress))
        results = await asyncio.gather(
            *(self._batch(request, piece, windows[piece.zone]) for piece in batches), return_exceptions=True
        )
        progress = self._progress
        messaged = refused = 0
        for piece, result in zip(batches, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, ActivityError):
                    raise result
                workflow.logger.warning("campaign batch failed; retrying later: %s", failure_reason(result))
                retry_at = workflow.now() + FAILED_BATCH_RETRY
                todo.append(piece.model_copy(update={"not_before": retry_at, "deferred": True}))
                continue
            if not result.complete:
                todo.append(piece.model_copy(update={"not_before": None}))
            if result.next_due is not None:
                due = max(result.next_due, workflow.now() + timedelta(seconds=1))
                todo.append(piece.model_copy(update={"not_before": due, "deferred": True}))
            messaged += result.messaged
            refused += result.refused
        self._progress = progress.model_copy(
            update={
                "todo": sorted(todo, key=lambda r: (r.not_before is not None, r.first)),
                "messaged": progress.messaged + messaged,
                "refused": progress.refused + refused,
                "batches": progress.batches + len(batches),
            }
        )
        return messaged

    async def _batch(
        self, request: CampaignRunInput, piece: WorkRange, window: ZoneWindow
    ) -> CampaignBatchResult:
        result: CampaignBatchResult = await workflow.execute_activity_method(
            CampaignActivities.send_campaign_batch,
            CampaignBatchInput(
                run_id=self._run_id,
                campaign_key=request.campaign_key,
                campaign_version=request.campaign_version,
                first=piece.first,
                last=piece.last,
                deferred=piece.deferred,
                not_after=window.closes_at,
                due_at=workflow.now(),
            ),
            **CAMPAIGN_BATCH.options(),
        )
        if result.write_back and workflow.patched(WRITE_BACK_PATCH):
            await self._write_back(piece)
        return result

    async def _write_back(self, piece: WorkRange) -> None:
        """Hand the range's messages to a `FhirWriteBack` workflow of their own (it outlives the run if
        need be); each batch of the range (a deferred range is tried again) writes its messages as they
        are then, so the id names the moment."""
        moment = workflow.now().strftime("%Y%m%dT%H%M%S%f")
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await workflow.start_child_workflow(
                FHIR_WRITE_BACK_WORKFLOW,
                WriteBackInput(campaign_run_id=self._run_id, first=piece.first, last=piece.last),
                id=f"{FHIR_WRITE_BACK_PREFIX}campaign-{self._run_id}-{piece.first}-{moment}",
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                static_summary="Writing the campaign's messages to the FHIR source (Communications)",
            )

    async def _windows(self, request: CampaignRunInput, now: datetime) -> dict[str, ZoneWindow]:
        zones = sorted({r.zone for r in self._progress.todo})
        if request.send_window is None:
            return {zone: ZoneWindow(zone=zone, open=True) for zone in zones}
        result = await workflow.execute_local_activity_method(
            CampaignActivities.campaign_windows,
            WindowsInput(zones=zones, window=request.send_window, now=now),
            **EVALUATE.options(),
        )
        return {window.zone: window for window in result.zones}

    async def _sleep_until_due(self, windows: dict[str, ZoneWindow], now: datetime) -> None:
        moments = [_next_chance(r, windows[r.zone]) for r in self._progress.todo]
        known = [moment for moment in moments if moment is not None]
        expires_at = self._progress.expires_at
        wake = min([*known, *([expires_at] if expires_at else [])], default=None)
        if wake is None:
            return
        closed = sorted({r.zone for r in self._progress.todo if not windows[r.zone].open})
        waiting_for = f"the send window in {', '.join(closed)}" if closed else "deferred sends to be due"
        await self._show("waiting", f"Waiting for {waiting_for} (until {_when(wake)})", project=True)
        await workflow.sleep(max(wake - now, timedelta(seconds=1)))

    async def _hold_while_paused(self) -> None:
        if self._progress.paused:
            await workflow.wait_condition(lambda: not self._progress.paused)
            await self._show("sending", "Resumed", project=True)

    async def _close(self, status: CampaignRunStatus, recipient_state: str, reason: str) -> int:
        self._status = status
        closed: CloseRunResult = await workflow.execute_activity_method(
            CampaignActivities.close_campaign_run,
            CloseRunInput(
                run_id=self._run_id,
                status=status,
                recipient_state="cancelled" if recipient_state == "cancelled" else "expired",
                reason=reason,
            ),
            **CAMPAIGN_STORE.options(),
        )
        progress = self._progress
        summary = f"{progress.messaged} of {progress.audience} messaged"
        if closed.closed:
            summary += f"; {closed.closed} {recipient_state}"
        await self._show(status, f"**{status}**: {summary}", project=True, ended=True)
        return closed.closed

    def _show_now(self, step: str, phase: str) -> str:
        """Show the step and phase (while paused: the pause note); returns the phase shown."""
        if self._progress.paused and self._status in ("running", "scheduled"):
            step, phase = "paused", self._pause_note
        self._phase = phase
        workflow.upsert_search_attributes([CURRENT_STEP.value_set(step)])
        workflow.set_current_details(phase)
        return phase

    async def _show(
        self,
        step: str,
        phase: str,
        *,
        project: bool = False,
        scheduled: datetime | None = None,
        ended: bool = False,
    ) -> None:
        """Show what the run does in the Temporal UI (current details, `CurrentStep`) and, when asked,
        in the database projection."""
        phase = self._show_now(step, phase)
        if not project or self._request is None:
            return
        status = self._status
        if status == "running" and self._progress.paused:
            status = "paused"
        await workflow.execute_local_activity_method(
            CampaignActivities.record_campaign_run,
            RunProjection(
                run_id=self._run_id,
                workflow_id=workflow.info().workflow_id,
                campaign_key=self._request.campaign_key,
                campaign_version=self._request.campaign_version,
                status=status,
                phase=phase,
                scheduled_for=scheduled,
                ended=ended,
            ),
            **DB_WRITE.options(),
        )


def _due(work: WorkRange, window: ZoneWindow, now: datetime) -> bool:
    return window.open and (work.not_before is None or work.not_before <= now)


def _next_chance(work: WorkRange, window: ZoneWindow) -> datetime | None:
    """When this range may run next: its due time, inside its zone's next window."""
    if window.open:
        return work.not_before
    if window.opens_at is None:
        return None
    return max(window.opens_at, work.not_before) if work.not_before else window.opens_at


def _sending(batches: list[WorkRange], progress: RunProgress) -> str:
    zones = ", ".join(sorted({piece.zone for piece in batches}))
    return f"Sending ({progress.messaged} of {progress.audience} messaged so far) to patients in {zones}"


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")
