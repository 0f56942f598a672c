"""The test server's subscriptions, driven the way Aftercare drives a real server: `register_subscriptions`
through FhirClient, then resources written; what arrives at the endpoint is read with Aftercare's own
notification parser (`aftercare.fhir_sync.notifications`)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aftercare.fhir_client.client import FhirClient
from aftercare.fhir_sync.notifications import is_topic_bundle, read_topic_bundle
from aftercare.fhir_sync.subscriptions import Content, register_subscriptions
from tests.fhir_server import FhirTestServer, asgi_deliver, running_fhir_server

ENDPOINT = "http://aftercare.test/v1/fhir/notifications"
TOPIC = "http://aftercare.test/SubscriptionTopic/all-changes"
HBA1C = {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]}


@dataclass
class Receiver:
    """An in-process notification endpoint: records each request and answers `status`."""

    status: int = 200
    received: list[tuple[str, str, bytes]] = field(default_factory=list)

    def app(self) -> Starlette:
        async def record(request: Request) -> Response:
            self.received.append((request.method, request.url.path, await request.body()))
            return Response(status_code=self.status)

        return Starlette(routes=[Route("/{path:path}", record, methods=["POST", "PUT"])])


def encounter(encounter_id: str = "e1") -> dict[str, object]:
    return {
        "resourceType": "Encounter",
        "id": encounter_id,
        "status": "finished",
        "class": {"code": "IMP"},
        "subject": {"reference": "Patient/p1"},
    }


@pytest.fixture
async def hooked(fhir: FhirTestServer) -> AsyncIterator[tuple[FhirTestServer, Receiver, FhirClient]]:
    receiver = Receiver()
    fhir.deliver = asgi_deliver(receiver.app())
    fhir.put({"resourceType": "Patient", "id": "p1"})
    async with FhirClient(fhir.base_url) as client:
        yield fhir, receiver, client


async def test_a_classic_rest_hook_puts_the_resource_under_the_endpoint(
    hooked: tuple[FhirTestServer, Receiver, FhirClient],
) -> None:
    fhir, receiver, client = hooked
    [registered] = await register_subscriptions(client, ["Encounter"], ENDPOINT)
    assert fhir.get("Subscription", registered.subscription_id)["status"] == "active"  # type: ignore[index]
    created = await client.create(encounter())
    await client.create({"resourceType": "Observation", "status": "final", "code": HBA1C})
    assert [(m, p) for m, p, _ in receiver.received] == [
        ("PUT", f"/v1/fhir/notifications/Encounter/{created['id']}")
    ]
    assert json.loads(receiver.received[0][2]) == created
    assert fhir.deliveries[0].headers["Content-Type"] == "application/fhir+json"


async def test_registering_again_updates_the_subscription_in_place(
    hooked: tuple[FhirTestServer, Receiver, FhirClient],
) -> None:
    _, _, client = hooked
    [first] = await register_subscriptions(client, ["Encounter"], ENDPOINT)
    [again] = await register_subscriptions(client, ["Encounter"], ENDPOINT)
    assert (again.subscription_id, again.created) == (first.subscription_id, False)


async def test_the_post_style_posts_the_resource_to_the_endpoint(
    hooked: tuple[FhirTestServer, Receiver, FhirClient],
) -> None:
    fhir, receiver, client = hooked
    fhir.rest_hook_style = "post"
    await register_subscriptions(client, ["Encounter"], ENDPOINT)
    created = await client.create(encounter())
    assert [(m, p, json.loads(b)["id"]) for m, p, b in receiver.received] == [
        ("POST", "/v1/fhir/notifications", created["id"])
    ]


async def test_a_classic_subscription_without_payload_sends_an_empty_post(
    hooked: tuple[FhirTestServer, Receiver, FhirClient],
) -> None:
    fhir, receiver, client = hooked
    await register_subscriptions(client, ["Encounter"], ENDPOINT, content="empty")
    fhir.put(encounter())
    assert receiver.received == []  # queued until flushed
    await fhir.flush()
    assert receiver.received == [("POST", "/v1/fhir/notifications", b"")]


async def test_classic_criteria_filter_by_search_parameters(
    hooked: tuple[FhirTestServer, Receiver, FhirClient],
) -> None:
    fhir, receiver, client = hooked
    await client.create(
        {
            "resourceType": "Subscription",
            "status": "requested",
            "reason": "HbA1c",
            "criteria": "Observation?code=http://loinc.org|4548-4",
            "channel": {
                "type": "rest-hook",
                "endpoint": ENDPOINT,
                "payload": "application/fhir+json",
                "header": ["Authorization: Bearer hook-token"],
            },
        }
    )
    await fhir.aput(
        {
            "resourceType": "Observation",
            "id": "glucose",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}]},
        }
    )
    await fhir.aput({"resourceType": "Observation", "id": "a1c", "status": "final", "code": HBA1C})
    assert [p for _, p, _ in receiver.received] == ["/v1/fhir/notifications/Observation/a1c"]
    assert fhir.deliveries[0].headers["Authorization"] == "Bearer hook-token"


@pytest.mark.parametrize("content", ["full-resource", "id-only", "empty"])
async def test_a_backport_subscription_shakes_hands_then_notifies_with_its_content(
    hooked: tuple[FhirTestServer, Receiver, FhirClient], content: Content
) -> None:
    fhir, receiver, client = hooked
    [registered] = await register_subscriptions(
        client, ["Encounter"], ENDPOINT, style="backport", content=content, topic=TOPIC
    )
    handshake = read_topic_bundle(fhir.deliveries[0].json())
    assert (handshake.kind, handshake.status, handshake.events_since_start) == ("handshake", "requested", 0)
    assert handshake.subscription == f"{fhir.base_url}/Subscription/{registered.subscription_id}"
    assert handshake.topic == TOPIC
    assert fhir.get("Subscription", registered.subscription_id)["status"] == "active"  # type: ignore[index]

    created = await client.create(encounter())
    await client.create({"resourceType": "Observation", "status": "final", "code": HBA1C})  # filtered out
    assert len(receiver.received) == 2
    method, path, body = receiver.received[1]
    assert (method, path) == ("POST", "/v1/fhir/notifications")
    bundle = json.loads(body)
    assert is_topic_bundle(bundle)
    assert bundle["type"] == "history"
    notification = read_topic_bundle(bundle)
    assert (notification.kind, notification.status, notification.event_numbers) == (
        "event-notification",
        "active",
        [1],
    )
    assert notification.content == content
    if content == "full-resource":
        assert notification.resources == [created]
    if content == "id-only":
        assert notification.references == [f"{fhir.base_url}/Encounter/{created['id']}"]
    if content == "empty":
        assert (notification.resources, notification.references) == ([], [])


async def test_a_refused_handshake_leaves_the_subscription_in_error(
    hooked: tuple[FhirTestServer, Receiver, FhirClient],
) -> None:
    fhir, receiver, client = hooked
    receiver.status = 500
    [registered] = await register_subscriptions(
        client, ["Encounter"], ENDPOINT, style="backport", topic=TOPIC
    )
    assert fhir.get("Subscription", registered.subscription_id)["status"] == "error"  # type: ignore[index]
    await client.create(encounter())
    assert len(receiver.received) == 1


async def test_dropped_notifications_leave_a_gap_that_events_fills(
    hooked: tuple[FhirTestServer, Receiver, FhirClient],
) -> None:
    fhir, _, client = hooked
    [registered] = await register_subscriptions(
        client, ["Encounter"], ENDPOINT, style="backport", topic=TOPIC, content="id-only"
    )
    await client.create(encounter("e1"))
    fhir.drop_next_notifications(2)
    created = [(await client.create(encounter()))["id"] for _ in range(3)]
    numbers = [read_topic_bundle(d.json()).event_numbers for d in fhir.deliveries[1:]]
    assert numbers == [[1], [4]]
    assert [e.number for e in fhir.events(registered.subscription_id)] == [1, 2, 3, 4]

    response = await client.request(
        "GET",
        f"Subscription/{registered.subscription_id}/$events",
        params={"eventsSinceNumber": 2, "eventsUntilNumber": 3},
    )
    missed = read_topic_bundle(response.json())
    assert (missed.kind, missed.event_numbers, missed.events_since_start) == ("query-event", [2, 3], 4)
    assert [r["id"] for r in missed.resources] == created[:2]


async def test_heartbeat_and_status_report_the_events_so_far(
    hooked: tuple[FhirTestServer, Receiver, FhirClient],
) -> None:
    fhir, _, client = hooked
    [registered] = await register_subscriptions(
        client, ["Encounter"], ENDPOINT, style="backport", topic=TOPIC
    )
    await client.create(encounter())
    delivery = await fhir.send_heartbeat(registered.subscription_id)
    heartbeat = read_topic_bundle(delivery.json())
    assert (delivery.status, heartbeat.kind, heartbeat.events_since_start, heartbeat.events) == (
        200,
        "heartbeat",
        1,
        [],
    )
    response = await client.request("GET", f"Subscription/{registered.subscription_id}/$status")
    status = response.json()["entry"][0]["resource"]
    parameters = {
        p["name"]: next(v for k, v in p.items() if k.startswith("value")) for p in status["parameter"]
    }
    assert parameters["type"] == "query-status"
    assert parameters["status"] == "active"
    assert parameters["events-since-subscription-start"] == "1"


async def test_the_default_delivery_puts_over_http_into_another_fhir_server() -> None:
    async with running_fhir_server() as source, running_fhir_server() as copy:
        await source.aput(
            {
                "resourceType": "Subscription",
                "status": "requested",
                "reason": "mirror",
                "criteria": "Encounter?",
                "channel": {
                    "type": "rest-hook",
                    "endpoint": copy.base_url,
                    "payload": "application/fhir+json",
                },
            }
        )
        stored = await source.aput(encounter())
        assert source.deliveries[0].status == 201
        assert copy.get("Encounter", "e1")["status"] == stored["status"]  # type: ignore[index]


async def test_an_unreachable_endpoint_is_recorded_not_raised(fhir: FhirTestServer) -> None:
    from tests.prism import free_port

    await fhir.aput(
        {
            "resourceType": "Subscription",
            "status": "requested",
            "reason": "x",
            "criteria": "Encounter?",
            "channel": {"type": "rest-hook", "endpoint": f"http://127.0.0.1:{free_port()}/hook"},
        }
    )
    await fhir.aput(encounter())
    [delivery] = fhir.deliveries
    assert (delivery.status, delivery.error is not None and delivery.error.startswith("ConnectError")) == (
        None,
        True,
    )
