"""Prometheus metrics.

Labels carry kinds and keys (resource type, journey key, status), never patient data.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

FHIR_RESOURCES = Counter(
    "aftercare_fhir_resources_total",
    "FHIR resource versions received",
    ["source", "resource_type", "outcome"],
)
ENROLLMENTS_STARTED = Counter(
    "aftercare_enrollments_started_total", "Enrollments started", ["journey_key", "trigger"]
)
TRIGGER_EVENTS = Counter("aftercare_trigger_events_total", "Patient events received", ["event_type"])
MESSAGES = Counter("aftercare_messages_total", "Send attempts finished", ["channel", "provider", "status"])
HTTP_LATENCY = Histogram(
    "aftercare_http_request_seconds",
    "API request latency",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
PROVIDER_WEBHOOKS = Counter(
    "aftercare_provider_webhooks_total",
    "Provider webhook requests and events, by outcome (applied, duplicate, unmatched, rejected)",
    ["provider", "kind", "outcome"],
)
UNAVAILABLE_ANSWERS = Counter(
    "aftercare_unavailable_answers_total", "503 answers because a part was down", ["part"]
)
