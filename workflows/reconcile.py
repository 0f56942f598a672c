"""The reconciliation workflow, run by a Temporal schedule: enrollment projections kept in step with
their workflows."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.enrollments import ReconcileActivities
    from models.temporal import ReconcileInput, ReconcileResult
    from models.workflow_names import RECONCILE_WORKFLOW


@workflow.defn(name=RECONCILE_WORKFLOW)
class ReconcileEnrollmentsWorkflow:
    """One reconciliation pass."""

    @workflow.run
    async def run(self, request: ReconcileInput) -> ReconcileResult:
        """Close projections of workflows ended outside Aftercare; start workflows never started."""
        result: ReconcileResult = await workflow.execute_activity_method(
            ReconcileActivities.reconcile_enrollments,
            request,
            start_to_close_timeout=timedelta(minutes=4),
            heartbeat_timeout=timedelta(minutes=1),
            retry_policy=RetryPolicy(maximum_attempts=3),
        )
        return result
