"""Keeping in step with a FHIR server, end to end: the local FHIR test server (real HTTP, real search
paging, real subscriptions) notifies the real API in this process; the Temporal dev server and a real
worker finish what needs the server (id-only and empty notifications, missed events, polling, a
journey's `fetch` step)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from aftercare.settings import Settings
from models.tables import FhirNotification, FhirResource, FhirResourceVersion, SubscriptionState
from models.temporal import PollSourceResult
from tests.conftest import ABDUL_BUNDLE, ABDUL_PATIENT_ID, AUTH_HEADERS, suite_converter, synthea_bundle
from tests.fhir_server import FhirTestServer, asgi_deliver, running_fhir_server
from workflows import WORKFLOWS

ALEXIA_BUNDLE = "Alexia_Senger_a5f5a550-b13e-4f92-b194-6d118f67fcdb.json"
ALEXIA_PATIENT_ID = "2d95f315-808c-4b67-836b-e56bdba9dd21"
TOPIC = "http://hospital.example/SubscriptionTopic/encounter-changes"
WATCHED = ["Patient", "Encounter", "Observation", "Condition"]


@dataclass
class Synced:
    """The API (in process), the FHIR server it reads from, and what to look into."""

    api: httpx.AsyncClient
    fhir: FhirTestServer
    sessions: async_sessionmaker[AsyncSession]
    temporal: WorkflowEnvironment


@pytest.fixture(scope="module")
async def fhir_server() -> AsyncIterator[FhirTestServer]:
    async with running_fhir_server() as server:
        yield server


@pytest.fixture
async def synced(
    fhir_server: FhirTestServer,
    api_settings: Settings,
    dev_server: WorkflowEnvironment,
    empty_database: Any,
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[Synced]:
    from activities.registry import build_activities
    from api.app import create_app
    from worker import build_worker

    fhir_server.reset()
    settings = api_settings.model_copy(
        update={
            "fhir_base_url": fhir_server.base_url,
            "public_base_url": "http://aftercare.test",
            "fhir_watched_types": WATCHED,
        }
    )
    app = create_app(settings, temporal=dev_server.client)
    async with app.router.lifespan_context(app):
        fhir_server.deliver = asgi_deliver(app)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://aftercare.test", headers=AUTH_HEADERS
        ) as api:
            running = build_worker(
                dev_server.client, settings, build_activities(sessions, settings, dev_server.client)
            )
            async with running:
                yield Synced(api, fhir_server, sessions, dev_server)


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 30.0) -> Any:
    """Poll `check()` until it returns something truthy."""
    async with asyncio.timeout(timeout):
        while not (value := await check()):
            await asyncio.sleep(0.1)
        return value


async def stored_count(synced: Synced, resource_type: str) -> int:
    async with synced.sessions() as session:
        count = await session.scalar(
            select(func.count()).select_from(FhirResource).where(FhirResource.resource_type == resource_type)
        )
    return int(count or 0)


async def versions_of(synced: Synced, resource_type: str, resource_id: str) -> int:
    async with synced.sessions() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(FhirResourceVersion)
            .where(
                FhirResourceVersion.resource_type == resource_type,
                FhirResourceVersion.resource_id == resource_id,
            )
        )
    return int(count or 0)


async def is_stored(synced: Synced, resource_type: str, resource_id: str) -> bool:
    return await versions_of(synced, resource_type, resource_id) > 0


async def poll(synced: Synced) -> dict[str, Any]:
    started = await synced.api.post("/v1/fhir/sources/default/poll")
    assert started.status_code == 202, started.text
    handle = synced.temporal.client.get_workflow_handle(
        started.json()["workflow_id"], result_type=PollSourceResult
    )
    result = await handle.result()
    return {kind: polled.model_dump() for kind, polled in result.types.items()}


async def replays(synced: Synced, workflow_id: str) -> None:
    """The workflow's recorded history replays against today's code (it is deterministic)."""
    history = await synced.temporal.client.get_workflow_handle(workflow_id).fetch_history()
    await Replayer(workflows=WORKFLOWS, data_converter=suite_converter()).replay_workflow(history)


def encounter(encounter_id: str, patient_id: str = ABDUL_PATIENT_ID) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "id": encounter_id,
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "period": {"start": "2026-11-20T08:00:00Z", "end": "2026-11-24T10:00:00Z"},
    }


JOURNEY = {
    "key": "discharge-checkin",
    "version": 1,
    "name": "Check in after discharge",
    "entry": {"fhir": {"resource": "Encounter", "interactions": ["create", "update"]}},
    "steps": [
        {"id": "hello", "send": {"channel": "sms", "body": "Hi {{ patient.given }}, how are you feeling?"}}
    ],
}


async def enrollments_of(synced: Synced, patient_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await synced.api.get(f"/v1/patients/{patient_id}")).json()["enrollments"]
    return items


async def test_polling_reads_everything_once_then_only_what_changed(synced: Synced) -> None:
    synced.fhir.load_synthea([ABDUL_BUNDLE])
    on_server = {kind: len(synced.fhir.store.of_type(kind)) for kind in WATCHED}

    first = await poll(synced)

    assert {kind: result["stored"] for kind, result in first.items()} == on_server
    for kind, count in on_server.items():
        assert await stored_count(synced, kind) == count
    again = await poll(synced)
    assert {kind: result["stored"] for kind, result in again.items()} == dict.fromkeys(WATCHED, 0)

    [observation] = synced.fhir.store.of_type("Observation")[:1]
    changed = synced.fhir.put({**observation, "status": "amended"})
    third = await poll(synced)
    assert third["Observation"]["stored"] == 1
    assert await versions_of(synced, "Observation", changed["id"]) == 2
    cursors = (await synced.api.get("/v1/fhir/sources/default")).json()["cursors"]
    assert {cursor["resource_type"] for cursor in cursors} == set(WATCHED)
    await replays(synced, "aftercare-fhir-poll-default-now")
    assert all(cursor["high_water"] and cursor["last_error"] is None for cursor in cursors)


async def test_a_failing_server_keeps_the_mark_and_the_next_poll_catches_up(synced: Synced) -> None:
    synced.fhir.load_synthea([ABDUL_BUNDLE])
    await poll(synced)
    synced.fhir.put(encounter("late-encounter"))
    synced.fhir.fail_next(len(WATCHED), status=400)  # each type's first search: refused for good

    failed = await poll(synced)

    assert failed == {}
    assert not await is_stored(synced, "Encounter", "late-encounter")
    cursors = (await synced.api.get("/v1/fhir/sources/default")).json()["cursors"]
    assert any(cursor["last_error"] for cursor in cursors)
    await poll(synced)
    assert await versions_of(synced, "Encounter", "late-encounter") == 1


async def test_registered_rest_hook_subscriptions_deliver_resources_that_start_journeys(
    synced: Synced,
) -> None:
    assert (await synced.api.post("/v1/journeys", json=JOURNEY)).status_code == 201
    assert (await synced.api.post("/v1/fhir/import?triggers=false", json=synthea_bundle())).status_code == 200

    registered = await synced.api.post("/v1/fhir/sources/default/subscriptions", json={})
    assert registered.status_code == 200, registered.text
    assert registered.json()["endpoint"] == "http://aftercare.test/v1/fhir/notifications"
    [item] = registered.json()["items"]
    assert item["resource_type"] == "Encounter"
    assert item["created"] is True
    again = await synced.api.post("/v1/fhir/sources/default/subscriptions", json={})
    assert again.json()["items"][0]["created"] is False

    await synced.fhir.aput(encounter("discharge-1"))

    [delivery] = [d for d in synced.fhir.deliveries if d.kind == "rest-hook"]
    assert (delivery.method, delivery.status) == ("PUT", 200)
    assert delivery.url.endswith("/v1/fhir/notifications/Encounter/discharge-1")
    assert await is_stored(synced, "Encounter", "discharge-1")
    [enrollment] = await eventually(lambda: enrollments_of(synced, ABDUL_PATIENT_ID))
    assert enrollment["journey_key"] == "discharge-checkin"


async def test_an_empty_rest_hook_notification_is_read_back_from_the_server(synced: Synced) -> None:
    registered = await synced.api.post(
        "/v1/fhir/sources/default/subscriptions", json={"content": "empty", "resource_types": ["Encounter"]}
    )
    assert registered.status_code == 200, registered.text

    await synced.fhir.aput(encounter("pinged"))

    [delivery] = [d for d in synced.fhir.deliveries if d.kind == "rest-hook"]
    assert (delivery.method, delivery.body, delivery.status) == ("POST", b"", 200)
    # An empty ping names nothing: the worker searches the watched types again.
    assert await eventually(lambda: is_stored(synced, "Encounter", "pinged"))
    await eventually(lambda: notifications_done(synced))


async def notifications_done(synced: Synced) -> bool:
    async with synced.sessions() as session:
        statuses = (await session.scalars(select(FhirNotification.status))).all()
    return bool(statuses) and all(status == "processed" for status in statuses)


async def register_backport(synced: Synced, content: str) -> str:
    registered = await synced.api.post(
        "/v1/fhir/sources/default/subscriptions",
        json={"style": "backport", "topic": TOPIC, "content": content, "resource_types": ["Encounter"]},
    )
    assert registered.status_code == 200, registered.text
    subscription_id: str = registered.json()["items"][0]["subscription_id"]
    assert synced.fhir.get("Subscription", subscription_id)["status"] == "active"  # type: ignore[index]
    return subscription_id


async def subscription_state(synced: Synced) -> SubscriptionState:
    async with synced.sessions() as session:
        state = await session.scalar(select(SubscriptionState))
    assert state is not None
    return state


async def test_id_only_notifications_are_read_and_missed_events_recovered_through_events(
    synced: Synced,
) -> None:
    await register_backport(synced, "id-only")
    await synced.fhir.aput(encounter("first"))
    assert await eventually(lambda: is_stored(synced, "Encounter", "first"))

    synced.fhir.drop_next_notifications(2)
    await synced.fhir.aput(encounter("lost-1"))
    await synced.fhir.aput(encounter("lost-2"))
    await synced.fhir.aput(encounter("after-the-gap"))

    for encounter_id in ("after-the-gap", "lost-1", "lost-2"):
        assert await eventually(lambda e=encounter_id: is_stored(synced, "Encounter", e)), encounter_id
    state = await subscription_state(synced)
    assert state.last_event_number == 4
    assert state.gaps_recovered == 1
    assert any(request[1].endswith("/$events") for request in synced.fhir.requests)
    await eventually(lambda: notifications_done(synced))
    async with synced.sessions() as session:
        gap = await session.scalar(select(FhirNotification.id).where(FhirNotification.kind == "gap"))
    await replays(synced, f"fhir-notification-{gap}")


async def test_a_heartbeat_that_reveals_missed_events_recovers_them(synced: Synced) -> None:
    subscription_id = await register_backport(synced, "full-resource")
    await synced.fhir.aput(encounter("seen"))
    assert await is_stored(synced, "Encounter", "seen")  # full resources are stored before the answer
    synced.fhir.drop_next_notifications(1)
    await synced.fhir.aput(encounter("missed"))

    heartbeat = await synced.fhir.send_heartbeat(subscription_id)

    assert heartbeat.status == 200
    assert await eventually(lambda: is_stored(synced, "Encounter", "missed"))
    assert (await subscription_state(synced)).last_event_number == 2


FETCH_JOURNEY = {
    "key": "a1c-check",
    "version": 1,
    "name": "Tell the patient their latest HbA1c",
    "steps": [
        {
            "id": "latest-a1c",
            "fetch": {
                "query": "Observation?patient={{ patient.id }}&code=http://loinc.org|4548-4&_sort=-date&_count=1",
                "limit": 1,
            },
        },
        {
            "id": "route",
            "branch": [
                {"when": "%fetched.latest_a1c.first().valueQuantity.value > 9", "goto": "high"},
                {"otherwise": "in-range"},
            ],
        },
        {"id": "high", "send": {"channel": "sms", "body": "Your HbA1c needs follow-up."}, "goto": "done"},
        {
            "id": "in-range",
            "send": {
                "channel": "sms",
                "body": "Good news {{ patient.given }}: your last HbA1c was "
                "{{ fetched.latest_a1c[0].valueQuantity.value | round(1) }}% "
                "({{ fetched.latest_a1c[0].effectiveDateTime[:10] }}).",
            },
        },
        {"id": "done", "end": {"outcome": "completed"}},
    ],
}


async def test_a_fetch_step_reads_the_latest_result_for_a_branch_and_a_message(synced: Synced) -> None:
    synced.fhir.load_synthea([ALEXIA_BUNDLE])
    imported = await synced.api.post("/v1/fhir/import?triggers=false", json=synthea_bundle(ALEXIA_BUNDLE))
    assert imported.status_code == 200
    assert (await synced.api.post("/v1/journeys", json=FETCH_JOURNEY)).status_code == 201

    enrolled = await synced.api.post(
        "/v1/journeys/a1c-check/enrollments", json={"patient_id": ALEXIA_PATIENT_ID}
    )
    assert enrolled.status_code == 201, enrolled.text

    async def sent() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = (
            await synced.api.get("/v1/messages", params={"patient_id": ALEXIA_PATIENT_ID})
        ).json()["items"]
        return items

    [message] = await eventually(sent)
    # The source file's latest HbA1c (LOINC 4548-4) is 5.92 % on 2020-10-02.
    assert message["body"] == "Good news Alexia: your last HbA1c was 5.9% (2020-10-02)."
    searches = [query for method, path, query in synced.fhir.requests if path == "Observation"]
    assert any("_sort=-date" in query for query in searches)
