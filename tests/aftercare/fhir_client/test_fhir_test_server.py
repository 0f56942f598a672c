"""The local FHIR test server itself: loading Synthea quickly, versions, and the search features other
tests lean on (sorting by `_lastUpdated`, includes of any reference parameter, 400s for what it lacks)."""

from __future__ import annotations

import time

import pytest

from aftercare.fhir_client.client import FhirClient
from aftercare.fhir_client.errors import FhirClientError
from tests.fhir_server import FhirTestServer
from tests.fhir_server.store import reference_of


def test_all_synthea_bundles_load_in_a_few_seconds_with_references_resolved() -> None:
    server = FhirTestServer()
    started = time.monotonic()
    count = server.load_synthea()
    assert time.monotonic() - started < 10
    assert count > 9000
    assert len(server.store.of_type("Patient")) == 48
    observation = server.store.of_type("Observation")[0]
    assert reference_of(observation["subject"]).startswith("Patient/")  # type: ignore[union-attr]
    assert server.get("Patient", observation["subject"]["reference"].split("/")[1]) is not None


def test_versions_and_last_updated_strictly_increase() -> None:
    server = FhirTestServer()
    stored = [server.put({"resourceType": "Patient", "id": "p1", "active": n % 2 == 0}) for n in range(50)]
    assert [s["meta"]["versionId"] for s in stored] == [str(n) for n in range(1, 51)]
    instants = [s["meta"]["lastUpdated"] for s in stored]
    assert instants == sorted(set(instants))
    assert server.store.version("Patient", "p1", "1") == stored[0]


async def test_sort_by_last_updated_descending(fhir: FhirTestServer) -> None:
    for name in ("a", "b", "c"):
        fhir.put({"resourceType": "Patient", "id": name})
    fhir.put({"resourceType": "Patient", "id": "a", "active": True})
    async with FhirClient(fhir.base_url) as client:
        newest_first = [r["id"] async for r in client.search("Patient", {"_sort": "-_lastUpdated"})]
        by_id = [r["id"] async for r in client.search("Patient", {"_sort": "_id"})]
    assert newest_first == ["a", "c", "b"]
    assert by_id == ["a", "b", "c"]


async def test_include_follows_any_reference_parameter(fhir: FhirTestServer) -> None:
    fhir.put({"resourceType": "Medication", "id": "m1", "code": {"text": "metformin"}})
    fhir.put(
        {
            "resourceType": "MedicationRequest",
            "id": "r1",
            "status": "active",
            "intent": "order",
            "medicationReference": {"reference": "Medication/m1"},
            "subject": {"reference": "Patient/p1"},
        }
    )
    async with FhirClient(fhir.base_url) as client:
        entries = [
            (e.mode, e.resource["id"])
            async for e in client.search_entries(
                "MedicationRequest", {"patient": "p1", "_include": "MedicationRequest:medication"}
            )
        ]
    assert entries == [("match", "r1"), ("include", "m1")]


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("Patient", {"patient": "p1"}, "unknown search parameter 'patient' for Patient"),
        ("Observation", {"code:text": "x"}, "modifier :text of code is not supported"),
        (
            "Observation",
            {"_include": "Observation:*"},
            "_include=Observation:* is not supported (use Type:param or Type:param:Target)",
        ),
        ("Observation", {"_sort": "value"}, "_sort=value is not supported (use date, _lastUpdated, _id)"),
        ("Observation", {"date": "yesterday"}, "'yesterday' is not a FHIR date"),
    ],
)
async def test_what_the_server_cannot_do_is_a_400(
    fhir: FhirTestServer, path: str, params: dict[str, str], message: str
) -> None:
    async with FhirClient(fhir.base_url) as client:
        with pytest.raises(FhirClientError) as raised:
            [r async for r in client.search(path, params)]
    assert (raised.value.status, raised.value.issues) == (400, [message])


async def test_events_take_their_range_from_a_posted_parameters_body(fhir: FhirTestServer) -> None:
    await fhir.aput(
        {
            "resourceType": "Subscription",
            "id": "s1",
            "status": "active",
            "reason": "x",
            "criteria": "Encounter?",
            "channel": {"type": "rest-hook", "endpoint": "http://127.0.0.1:9/none"},
        }
    )
    fhir.drop_next_notifications(3)
    for n in range(3):
        fhir.put({"resourceType": "Encounter", "id": f"e{n}", "status": "finished", "class": {"code": "AMB"}})
    body = {"resourceType": "Parameters", "parameter": [{"name": "eventsSinceNumber", "valueInteger": 2}]}
    async with FhirClient(fhir.base_url) as client:
        response = await client.request(
            "POST", "Subscription/s1/$events", json=body, headers={"Content-Type": "application/fhir+json"}
        )
    focus = [entry["resource"]["id"] for entry in response.json()["entry"][1:]]
    assert focus == ["e1", "e2"]
    assert fhir.deliveries == []
