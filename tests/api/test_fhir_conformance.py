"""Conformance on the FHIR endpoints: a code outside a required binding, a broken Quantity or a
reference to no entry is a 422 `OperationOutcome` naming the element; a transaction writes nothing,
a batch reports per entry; every HL7 R4 example resource is taken."""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aftercare.fhir.resources import validation_problems
from models.tables import FhirResourceVersion, ParkedItem
from tests.conftest import FHIR_EXAMPLES, synthea_bundle

NDJSON = {"content-type": "application/fhir+ndjson"}


async def stored_versions(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(FhirResourceVersion)) or 0)


def first(bundle: dict[str, Any], resource_type: str) -> dict[str, Any]:
    entry: dict[str, Any] = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type)
    return entry


async def test_every_hl7_r4_example_resource_is_imported(api: httpx.AsyncClient) -> None:
    resources = [
        json.loads(path.read_text())
        for path in sorted((FHIR_EXAMPLES / "r4").glob("*.json"))
        if not path.name.startswith("Bundle-")
    ]
    lines = "\n".join(json.dumps(resource) for resource in resources)
    answer = await api.post("/v1/fhir/import", content=lines, headers=NDJSON, params={"triggers": "false"})
    assert answer.status_code == 200, answer.text
    assert sum(answer.json()["imported"].values()) == len(resources)


async def test_a_notification_with_a_status_outside_its_value_set_is_a_422_naming_it(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    observation = json.loads((FHIR_EXAMPLES / "r4" / "Observation-example.json").read_text())
    observation["status"] = "done"
    answer = await api.post("/v1/fhir/notifications", json=observation)
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/fhir+json")
    [issue] = answer.json()["issue"]
    assert issue["expression"] == ["Observation.status"]
    assert "http://hl7.org/fhir/ValueSet/observation-status" in issue["diagnostics"]
    assert await stored_versions(sessions) == 0


async def test_one_bad_entry_of_a_transaction_writes_nothing(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    bundle = synthea_bundle()
    first(bundle, "Encounter")["resource"]["status"] = "discharged"
    first(bundle, "Patient")["resource"]["gender"] = "M"
    answer = await api.post("/v1/fhir/import", json=bundle)
    assert answer.status_code == 422
    assert sorted(issue["expression"][0] for issue in answer.json()["issue"]) == [
        "Encounter.status",
        "Patient.gender",
    ]
    assert await stored_versions(sessions) == 0


async def test_a_reference_to_no_entry_of_a_transaction_is_named(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    bundle = synthea_bundle()
    first(bundle, "Observation")["resource"]["subject"]["reference"] = "urn:uuid:0000-missing"
    answer = await api.post("/v1/fhir/import", json=bundle)
    assert answer.status_code == 422
    [issue] = answer.json()["issue"]
    assert issue["expression"] == ["Observation.subject.reference"]
    assert "no entry of the Bundle" in issue["diagnostics"]
    assert await stored_versions(sessions) == 0


async def test_a_bundle_type_outside_its_value_set_is_a_422_and_an_unsupported_one_a_400(
    api: httpx.AsyncClient,
) -> None:
    bad = await api.post("/v1/fhir/import", json={"resourceType": "Bundle", "type": "txn", "entry": []})
    assert bad.status_code == 422
    assert bad.json()["issue"][0]["expression"] == ["Bundle.type"]
    document = await api.post("/v1/fhir/import", json={"resourceType": "Bundle", "type": "document"})
    assert document.status_code == 400


async def test_a_batch_reports_its_bad_entries_and_imports_the_others(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    bundle = copy.deepcopy(synthea_bundle()) | {"type": "batch"}
    bad = first(bundle, "Observation")
    bad["resource"]["valueQuantity"].pop("code", None)
    bad["resource"]["valueQuantity"]["system"] = "http://unitsofmeasure.org"
    position = bundle["entry"].index(bad)
    answer = await api.post("/v1/fhir/import", json=bundle, params={"triggers": "false"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    [rejected] = body["rejected"]
    assert rejected["entry"] == f"Bundle.entry[{position}]"
    assert rejected["outcome"]["resourceType"] == "OperationOutcome"
    assert rejected["outcome"]["issue"][0]["expression"] == ["Observation.valueQuantity.code"]
    assert sum(body["imported"].values()) == len(bundle["entry"]) - 1
    assert await stored_versions(sessions) == len(bundle["entry"]) - 1


async def test_the_capability_statement_is_public_valid_r4_and_names_what_is_accepted(
    api: httpx.AsyncClient,
) -> None:
    request = api.build_request("GET", "/v1/fhir/metadata")
    del request.headers["X-API-Key"]
    answer = await api.send(request)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/fhir+json")
    statement = answer.json()
    assert validation_problems(statement) == []
    assert (statement["resourceType"], statement["fhirVersion"], statement["kind"]) == (
        "CapabilityStatement",
        "4.0.1",
        "instance",
    )
    server = next(rest for rest in statement["rest"] if rest["mode"] == "server")
    accepted = {resource["type"] for resource in server["resource"]}
    assert {"Patient", "Observation", "Encounter", "Appointment", "MedicationRequest", "Consent"} <= accepted
    assert {interaction["code"] for interaction in server["interaction"]} == {"transaction", "batch"}
    assert "application/fhir+json" in statement["format"]
    client = next(rest for rest in statement["rest"] if rest["mode"] == "client")
    written = {
        resource["type"]
        for resource in client["resource"]
        if {"create", "update"} <= {interaction["code"] for interaction in resource["interaction"]}
    }
    assert {"Communication", "Task"} <= written


async def test_a_topic_notification_parks_a_resource_with_a_bad_code_naming_the_element(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    path = (
        FHIR_EXAMPLES
        / "subscriptions-backport"
        / "sushi-generated"
        / "Bundle-r4-notification-full-resource.json"
    )
    bundle = json.loads(path.read_text())
    encounter = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Encounter")
    encounter["status"] = "done"
    answer = await api.post("/v1/fhir/notifications", json=bundle)
    assert answer.status_code == 200, answer.text
    assert answer.json()["parked"] == 1
    async with sessions() as session:
        [parked] = (await session.scalars(select(ParkedItem))).all()
    assert parked.reference == f"Encounter/{encounter['id']}"
    assert "Encounter.status" in parked.reason
    assert await stored_versions(sessions) == 0
