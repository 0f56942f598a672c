"""Every standard shape of subscription notification, read from the official HL7 examples: R5
notification Bundles and the Subscriptions Backport IG's R4 (status as `Parameters`) and R4B
(`SubscriptionStatus`) Bundles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aftercare.fhir_sync.notifications import is_topic_bundle, read_topic_bundle, relative_reference
from tests.conftest import FHIR_EXAMPLES, synthea_bundle

R5 = FHIR_EXAMPLES / "r5" / "notification-bundles"
BACKPORT = FHIR_EXAMPLES / "subscriptions-backport" / "sushi-generated"
ENCOUNTER = "https://example.org/fhir/Encounter/86009987-eabe-42bf-8c02-b112b18cb616"


def bundle(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def backport(version: str, name: str) -> Path:
    return BACKPORT / f"Bundle-{version}-notification-{name}.json"


@pytest.mark.parametrize("version", ["r4", "r4b"])
@pytest.mark.parametrize(
    ("name", "kind", "content", "resource_types", "references"),
    [
        ("full-resource", "event-notification", "full-resource", ["Encounter"], []),
        ("multi-resource", "event-notification", "full-resource", ["Encounter", "Patient"], []),
        ("id-only", "event-notification", "id-only", [], [ENCOUNTER]),
        ("id-only-with-query", "event-notification", "id-only", [], [ENCOUNTER]),
        ("empty", "event-notification", "empty", [], []),
        ("handshake", "handshake", None, [], []),
        ("heartbeat", "heartbeat", None, [], []),
    ],
)
def test_backport_notifications_say_what_happened_and_what_they_carry(
    version: str, name: str, kind: str, content: str | None, resource_types: list[str], references: list[str]
) -> None:
    document = bundle(backport(version, name))
    assert is_topic_bundle(document)
    notification = read_topic_bundle(document)
    assert notification.shape == "topic"
    assert notification.kind == kind
    assert notification.content == content
    assert [resource["resourceType"] for resource in notification.resources] == resource_types
    assert notification.references == references
    assert notification.subscription == "https://example.org/fhir/Subscription/admission"
    assert notification.topic == "http://hl7.org/SubscriptionTopic/admission"


@pytest.mark.parametrize("version", ["r4", "r4b"])
def test_event_numbers_and_the_count_since_start_are_read_for_gap_detection(version: str) -> None:
    notification = read_topic_bundle(bundle(backport(version, "id-only")))
    assert notification.event_numbers == [2]
    assert notification.events_since_start == 2
    assert notification.events[0].focus == ENCOUNTER
    heartbeat = read_topic_bundle(bundle(backport(version, "heartbeat")))
    assert (heartbeat.event_numbers, heartbeat.events_since_start) == ([], 2)


@pytest.mark.parametrize("version", ["r4", "r4b"])
def test_an_error_status_is_reported(version: str) -> None:
    notification = read_topic_bundle(bundle(backport(version, "error")))
    assert (notification.kind, notification.status) == ("query-status", "error")


@pytest.mark.parametrize(
    ("suffix", "kind", "status", "content", "numbers"),
    [
        ("full-resource", "event-notification", "active", "full-resource", [2]),
        ("full-resource-multi", "event-notification", "active", "full-resource", [2]),
        ("id-only", "event-notification", "active", "id-only", [2]),
        ("empty", "event-notification", "active", "empty", [2]),
        ("heartbeat", "heartbeat", "active", None, []),
        ("handshake", "handshake", "requested", None, []),
        ("query-status", "query-status", "active", None, []),
        ("error", "event-notification", "error", "empty", [328]),
    ],
)
def test_r5_notification_bundles(
    suffix: str, kind: str, status: str, content: str | None, numbers: list[int]
) -> None:
    [path] = [path for path in R5.glob("*.json") if path.name.endswith(f".{suffix}.json")]
    notification = read_topic_bundle(bundle(path))
    assert (notification.kind, notification.status, notification.content) == (kind, status, content)
    assert notification.event_numbers == numbers


def test_an_r5_id_only_notification_names_the_changed_resource() -> None:
    [path] = R5.glob("*.id-only.json")
    assert read_topic_bundle(bundle(path)).references == ["http://example.org/FHIR/R5/Encounter/2"]


def test_ordinary_bundles_are_not_taken_for_notifications() -> None:
    assert not is_topic_bundle(synthea_bundle())
    assert not is_topic_bundle(bundle(FHIR_EXAMPLES / "r4" / "Bundle-bundle-transaction.json"))
    assert not is_topic_bundle({"resourceType": "Observation", "id": "x"})


@pytest.mark.parametrize(
    ("reference", "relative"),
    [
        ("https://example.org/fhir/Encounter/86009987", "Encounter/86009987"),
        ("Encounter/2", "Encounter/2"),
        ("http://x/fhir/Observation/7/_history/3", "Observation/7"),
    ],
)
def test_references_are_made_relative(reference: str, relative: str) -> None:
    assert relative_reference(reference) == relative
