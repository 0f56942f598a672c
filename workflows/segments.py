"""The segment refresh workflow, run by a Temporal schedule (every segment) or on demand (one)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.segments import SegmentActivities
    from models.segment_runs import RefreshSegmentsInput, RefreshSegmentsResult
    from models.workflow_names import REFRESH_SEGMENTS_WORKFLOW


@workflow.defn(name=REFRESH_SEGMENTS_WORKFLOW)
class RefreshSegmentsWorkflow:
    """One refresh pass: every segment due (the schedule), one segment, or one segment for one patient."""

    @workflow.run
    async def run(self, request: RefreshSegmentsInput) -> RefreshSegmentsResult:
        """Refresh the segments; a failed pass is retried, and the next scheduled one starts afresh."""
        result: RefreshSegmentsResult = await workflow.execute_activity_method(
            SegmentActivities.refresh_segments,
            request,
            start_to_close_timeout=timedelta(minutes=30),
            heartbeat_timeout=timedelta(minutes=2),
            retry_policy=RetryPolicy(maximum_attempts=3),
        )
        return result
