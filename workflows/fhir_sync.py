"""Workflows that keep the patient store in step with FHIR sources: finishing a subscription
notification (reading id-only resources, recovering missed events), and a polling run (scheduled per
source, or started by an empty notification)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.fhir import FhirActivities
    from activities.options import FHIR_READ
    from models.temporal import (
        NotificationProcessed,
        ParkNotificationInput,
        PollSourceInput,
        PollSourceResult,
        PollTypeInput,
        PollTypeResult,
        ProcessNotificationInput,
        SourceTypes,
    )
    from models.workflow_names import FHIR_NOTIFICATION_WORKFLOW, FHIR_POLL_WORKFLOW

# A type's poll pages through everything new since the mark; it heartbeats each page.
POLL_TYPE_TIMEOUT = timedelta(minutes=30)
POLL_HEARTBEAT = timedelta(minutes=2)


@workflow.defn(name=FHIR_NOTIFICATION_WORKFLOW)
class FhirNotificationWorkflow:
    """Finish one received notification; its id is the workflow id, so it runs once."""

    @workflow.run
    async def run(self, request: ProcessNotificationInput) -> NotificationProcessed:
        """Read what the notification named (or recover what was missed) into the store."""
        workflow.set_current_details(f"Reading notification {request.notification_id} from the FHIR server")
        try:
            result: NotificationProcessed = await workflow.execute_activity_method(
                FhirActivities.process_notification,
                request,
                summary="Reading the notified resources",
                start_to_close_timeout=POLL_TYPE_TIMEOUT,
                heartbeat_timeout=POLL_HEARTBEAT,
                retry_policy=FHIR_READ.retry_policy,
            )
        except ActivityError as error:
            reason = str(error.cause or error)
            workflow.set_current_details(f"Parked: {reason}")
            await workflow.execute_activity_method(
                FhirActivities.park_notification,
                ParkNotificationInput(notification_id=request.notification_id, reason=reason),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_attempts=10),
            )
            return NotificationProcessed(read=0, stored=0, triggered=0, parked=reason)
        workflow.set_current_details(
            f"Read {result.read} resources: {result.stored} new versions, {result.triggered} triggered"
        )
        return result


@workflow.defn(name=FHIR_POLL_WORKFLOW)
class FhirPollWorkflow:
    """One polling run over a source's watched resource types, each from its high-water mark."""

    @workflow.run
    async def run(self, request: PollSourceInput) -> PollSourceResult:
        """Poll each type in turn; one failing type does not stop the others (it keeps its mark)."""
        types = request.resource_types
        if types is None:
            planned: SourceTypes = await workflow.execute_activity_method(
                FhirActivities.source_types,
                request,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_attempts=5),
            )
            types = planned.resource_types
        results: dict[str, PollTypeResult] = {}
        for resource_type in types:
            workflow.set_current_details(f"Polling **{resource_type}** from source {request.source_key}")
            try:
                results[resource_type] = await workflow.execute_activity_method(
                    FhirActivities.poll_resource_type,
                    PollTypeInput(source_key=request.source_key, resource_type=resource_type),
                    summary=f"Polling {resource_type}",
                    start_to_close_timeout=POLL_TYPE_TIMEOUT,
                    heartbeat_timeout=POLL_HEARTBEAT,
                    retry_policy=RetryPolicy(
                        initial_interval=timedelta(seconds=5),
                        maximum_interval=timedelta(minutes=1),
                        maximum_attempts=3,
                        non_retryable_error_types=["FhirSourceMissing", "FhirQueryRefused"],
                    ),
                )
            except ActivityError:
                workflow.logger.warning("polling a type failed", extra={"resource_type": resource_type})
        workflow.set_current_details(f"Polled {len(results)} of {len(types)} types")
        return PollSourceResult(types=results)
