"""Named activity option presets: explicit timeouts and bounded retries for each kind of side effect."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio.common import RetryPolicy

# Error types an activity raises when retrying cannot help.
PERMANENT_ERRORS = [
    "PatientNotFound",
    "TemplateNotFound",
    "TemplateRenderError",
    "ExpressionError",
    "InvalidInput",
    "MessageNotFound",
]


@dataclass(frozen=True)
class ActivityPreset:
    """Timeouts and retry policy for one kind of activity."""

    start_to_close_timeout: timedelta
    retry_policy: RetryPolicy
    schedule_to_close_timeout: timedelta | None = None
    heartbeat_timeout: timedelta | None = None

    def options(self) -> dict[str, Any]:
        """Keyword arguments for `workflow.execute_activity` and `execute_local_activity`."""
        options: dict[str, Any] = {
            "start_to_close_timeout": self.start_to_close_timeout,
            "schedule_to_close_timeout": self.schedule_to_close_timeout,
            "retry_policy": self.retry_policy,
        }
        if self.heartbeat_timeout is not None:
            options["heartbeat_timeout"] = self.heartbeat_timeout
        return options


DB_WRITE = ActivityPreset(
    start_to_close_timeout=timedelta(seconds=15),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(milliseconds=500),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=1),
        maximum_attempts=60,
        non_retryable_error_types=PERMANENT_ERRORS,
    ),
)

EVALUATE = ActivityPreset(
    start_to_close_timeout=timedelta(seconds=15),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(milliseconds=500),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=30),
        maximum_attempts=20,
        non_retryable_error_types=PERMANENT_ERRORS,
    ),
)

# A read from a FHIR server: the client already retries 429/5xx within an attempt (honouring
# Retry-After); these attempts ride out longer outages, visibly in the Temporal UI.
FHIR_READ = ActivityPreset(
    start_to_close_timeout=timedelta(minutes=2),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(seconds=5),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=5),
        maximum_attempts=20,
        non_retryable_error_types=[*PERMANENT_ERRORS, "FhirQueryRefused", "FhirSourceMissing"],
    ),
)

# Writing outreach to a FHIR server: never in a journey's way, so retried for long with a slow backoff.
FHIR_WRITE = ActivityPreset(
    start_to_close_timeout=timedelta(minutes=1),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(seconds=5),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=10),
        maximum_attempts=30,
        non_retryable_error_types=[*PERMANENT_ERRORS, "FhirQueryRefused", "FhirSourceMissing"],
    ),
)
# A campaign range's Communications (up to a batch of them): longer, heartbeating after each write.
FHIR_WRITE_MANY = dataclasses.replace(
    FHIR_WRITE, start_to_close_timeout=timedelta(minutes=30), heartbeat_timeout=timedelta(minutes=1)
)

# The fast path: a send runs as a local activity inside the workflow task. If the provider cannot take
# it within these attempts, the workflow hands the send to a regular activity (SEND_MESSAGE), whose
# retries and last failure are visible to operators in the Temporal UI.
SEND_MESSAGE_FAST = ActivityPreset(
    start_to_close_timeout=timedelta(seconds=30),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_attempts=2,
        non_retryable_error_types=PERMANENT_ERRORS,
    ),
)

SEND_MESSAGE = ActivityPreset(
    start_to_close_timeout=timedelta(seconds=60),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(seconds=2),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=5),
        maximum_attempts=12,
        non_retryable_error_types=PERMANENT_ERRORS,
    ),
)

# A campaign batch: hundreds of recipients decided in one transaction, then delivered. It heartbeats as
# it delivers, so a worker that dies mid-batch is noticed within 30 s and the batch runs again
# elsewhere (deciding nothing twice, and delivering only what the dead attempt had not).
# Its deliveries retry as a send's do (the last attempt records what still cannot go as failed); a
# batch that keeps failing for six hours is given up and its range tried again later by the run.
CAMPAIGN_BATCH = ActivityPreset(
    start_to_close_timeout=timedelta(minutes=15),
    heartbeat_timeout=timedelta(seconds=30),
    schedule_to_close_timeout=timedelta(hours=6),
    retry_policy=SEND_MESSAGE.retry_policy,
)

# A campaign run's own rows: freezing its audience (one statement over the segment, however large)
# and closing it.
CAMPAIGN_STORE = ActivityPreset(
    start_to_close_timeout=timedelta(minutes=10),
    schedule_to_close_timeout=timedelta(hours=1),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(seconds=2),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=2),
        maximum_attempts=10,
        non_retryable_error_types=[*PERMANENT_ERRORS, "SegmentNotFound", "CampaignNotFound"],
    ),
)
