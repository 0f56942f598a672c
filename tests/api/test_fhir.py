"""`/v1/fhir/import` and `/v1/fhir/notifications`: Bundles and NDJSON in, `OperationOutcome` on error,
nothing half-written."""

from __future__ import annotations

import copy
import json

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.tables import FhirResourceVersion, Patient
from tests.conftest import ABDUL_PATIENT_ID, SYNTHEA_BULK, synthea_bundle

FHIR_JSON = {"content-type": "application/fhir+json"}


async def count(sessions: async_sessionmaker[AsyncSession], table: type) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def test_a_synthea_transaction_bundle_is_imported_by_type(api: httpx.AsyncClient) -> None:
    bundle = synthea_bundle()
    response = await api.post("/v1/fhir/import", json=bundle, params={"triggers": "false"})
    assert response.status_code == 200
    body = response.json()
    assert body["imported"]["Patient"] == 1
    assert sum(body["imported"].values()) == len(bundle["entry"])
    assert body["triggered"] == 0

    profile = (await api.get(f"/v1/patients/{ABDUL_PATIENT_ID}")).json()
    assert (profile["given"], profile["phone"], profile["language"]) == ("Abdul", "+15559784581", "en-US")


async def test_importing_the_same_bundle_again_changes_nothing(api: httpx.AsyncClient) -> None:
    bundle = synthea_bundle()
    await api.post("/v1/fhir/import", json=bundle)
    again = (await api.post("/v1/fhir/import", json=bundle)).json()
    assert again["imported"] == {}
    assert sum(again["unchanged"].values()) == len(bundle["entry"])


async def test_ndjson_from_a_bulk_export_is_imported(api: httpx.AsyncClient) -> None:
    content = (SYNTHEA_BULK / "Patient.000.ndjson").read_bytes()
    response = await api.post(
        "/v1/fhir/import", content=content, headers={"content-type": "application/fhir+ndjson"}
    )
    assert response.status_code == 200
    assert response.json()["imported"]["Patient"] == len(content.splitlines())


async def test_an_invalid_resource_is_named_and_nothing_from_the_request_is_written(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    bundle = synthea_bundle()
    broken = copy.deepcopy(bundle)
    observation = next(e for e in broken["entry"] if e["resource"]["resourceType"] == "Observation")
    del observation["resource"]["status"]
    response = await api.post("/v1/fhir/import", json=broken)

    assert response.status_code == 422
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    [issue] = outcome["issue"]
    assert issue["severity"] == "error"
    assert f"Observation/{observation['resource']['id']}" in issue["diagnostics"]
    assert issue["expression"] == ["Observation.status"]
    assert response.headers["content-type"].startswith("application/fhir+json")
    assert await count(sessions, FhirResourceVersion) == 0
    assert await count(sessions, Patient) == 0


async def test_malformed_json_is_a_400_operation_outcome(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/fhir/import", content=b'{"resourceType": "Bundle",', headers=FHIR_JSON)
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"
    assert "not JSON" in response.json()["issue"][0]["diagnostics"]


async def test_an_empty_body_and_an_unsupported_bundle_type_are_explained(api: httpx.AsyncClient) -> None:
    empty = await api.post("/v1/fhir/import", content=b"", headers=FHIR_JSON)
    document = await api.post(
        "/v1/fhir/import", json={"resourceType": "Bundle", "type": "document", "entry": []}
    )
    assert (empty.status_code, document.status_code) == (400, 400)
    assert "Bundle.type" in document.json()["issue"][0]["diagnostics"]


async def test_a_notification_body_is_stored_and_answered_fast(api: httpx.AsyncClient) -> None:
    await api.post("/v1/fhir/import", json=synthea_bundle(), params={"triggers": "false"})
    observation = {
        "resourceType": "Observation",
        "id": "note-1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{ABDUL_PATIENT_ID}"},
        "valueQuantity": {"value": 72},
    }
    first = await api.post("/v1/fhir/notifications", content=json.dumps(observation), headers=FHIR_JSON)
    second = await api.post("/v1/fhir/notifications", json=observation)
    assert first.json()["received"] == {"Observation": 1}
    assert first.json()["unchanged"] == {}
    assert first.json()["triggered"] == 0
    assert first.json()["kind"] == "rest-hook"
    assert second.json()["unchanged"] == {"Observation": 1}


async def test_query_parameter_errors_on_fhir_endpoints_are_operation_outcomes(
    api: httpx.AsyncClient,
) -> None:
    response = await api.post("/v1/fhir/import", params={"triggers": "maybe"}, json=synthea_bundle())
    assert response.status_code == 422
    assert response.json()["resourceType"] == "OperationOutcome"


async def test_an_empty_notification_that_declares_a_fhir_body_is_a_400_saying_the_body_is_empty(
    api: httpx.AsyncClient,
) -> None:
    # What `curl -d @observation.json` sends when the file is not there.
    answers = [
        await api.post("/v1/fhir/notifications", content=b"", headers=FHIR_JSON),
        await api.post(
            "/v1/fhir/notifications", content=b"  \n", headers={"content-type": "application/json"}
        ),
        await api.put("/v1/fhir/notifications/Observation/hba1c-1", content=b"", headers=FHIR_JSON),
        await api.post("/v1/fhir/sources/default/notifications", content=b"", headers=FHIR_JSON),
    ]
    for answer in answers:
        assert answer.status_code == 400, answer.text
        assert answer.json()["resourceType"] == "OperationOutcome"
        [issue] = answer.json()["issue"]
        assert issue["code"] == "required"
        assert issue["diagnostics"].startswith("the body is empty")


async def test_an_unparsable_notification_body_is_a_400_saying_it_is_not_json(api: httpx.AsyncClient) -> None:
    answers = [
        await api.post("/v1/fhir/notifications", content=b"@observation.json", headers=FHIR_JSON),
        await api.post(
            "/v1/fhir/notifications", content=b'{"resourceType": "Observation",', headers=FHIR_JSON
        ),
        await api.put("/v1/fhir/notifications/Observation/hba1c-1", content=b"not json", headers=FHIR_JSON),
    ]
    for answer in answers:
        assert answer.status_code == 400, answer.text
        assert answer.json()["resourceType"] == "OperationOutcome"
        assert "the body is not JSON" in answer.json()["issue"][0]["diagnostics"]


async def test_json_that_is_not_an_object_is_a_400_operation_outcome(api: httpx.AsyncClient) -> None:
    for document in ([], "Observation", None, 7):
        answer = await api.post("/v1/fhir/notifications", content=json.dumps(document), headers=FHIR_JSON)
        assert answer.status_code == 400, (document, answer.text)
        assert answer.json()["issue"][0]["diagnostics"] == "the body is not a JSON object"


async def test_an_empty_ping_without_a_fhir_source_says_its_resources_cannot_be_read(
    api: httpx.AsyncClient,
) -> None:
    answer = await api.post("/v1/fhir/notifications", content=b"")
    assert answer.status_code == 422
    [issue] = answer.json()["issue"]
    assert issue["diagnostics"].startswith("this notification carries no resources (an empty ping")
    assert "FHIR_BASE_URL" in issue["diagnostics"]
