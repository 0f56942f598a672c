"""Reading and searching a real FHIR server (the local test server over HTTP) with FhirClient."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from aftercare.fhir_client.client import FhirClient, SearchEntry
from aftercare.fhir_client.errors import FhirClientError, FhirNotFound, FhirNotSupported
from tests.conftest import ABDUL_PATIENT_ID
from tests.fhir_server import FhirTestServer

ALEXIA = "2d95f315-808c-4b67-836b-e56bdba9dd21"
LATEST_HBA1C = "c7262e2f-ed33-4e69-804f-5373d25a0bb2"  # 2020-10-02, 5.92 %


async def test_capabilities_list_the_types_held_and_the_operations(shared_fhir: FhirTestServer) -> None:
    async with FhirClient(shared_fhir.base_url) as client:
        statement = await client.capabilities()
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert {"Patient", "Observation", "Encounter", "Subscription"} <= set(resources)
    assert {"name": "patient", "type": "reference"} in resources["Observation"]["searchParam"]
    assert [op["name"] for op in resources["Patient"]["operation"]] == ["everything", "export"]


async def test_read_returns_the_current_version_and_vread_an_older_one(fhir: FhirTestServer) -> None:
    first = fhir.put({"resourceType": "Patient", "id": "p1", "gender": "female"})
    fhir.put({"resourceType": "Patient", "id": "p1", "gender": "male"})
    async with FhirClient(fhir.base_url) as client:
        current = await client.read("Patient", "p1")
        old = await client.vread("Patient", "p1", 1)
    assert (current["gender"], current["meta"]["versionId"]) == ("male", "2")
    assert current["meta"]["lastUpdated"] > first["meta"]["lastUpdated"]
    assert (old["gender"], old["meta"]["versionId"]) == ("female", "1")


async def test_a_missing_resource_is_fhir_not_found_with_the_outcome_issues(
    shared_fhir: FhirTestServer,
) -> None:
    async with FhirClient(shared_fhir.base_url) as client:
        with pytest.raises(FhirNotFound) as raised:
            await client.read("Patient", "nobody")
    assert raised.value.status == 404
    assert raised.value.issues == ["Patient/nobody is not known"]
    assert "Patient/nobody is not known" in str(raised.value)


async def test_a_deleted_resource_is_fhir_not_found_410(fhir: FhirTestServer) -> None:
    fhir.put({"resourceType": "Patient", "id": "gone"})
    fhir.delete("Patient", "gone")
    async with FhirClient(fhir.base_url) as client:
        with pytest.raises(FhirNotFound) as raised:
            await client.read("Patient", "gone")
    assert raised.value.status == 410


async def test_an_unknown_search_parameter_is_a_400_naming_it(shared_fhir: FhirTestServer) -> None:
    async with FhirClient(shared_fhir.base_url) as client:
        with pytest.raises(FhirClientError) as raised:
            [r async for r in client.search("Observation", {"colour": "blue"})]
    assert raised.value.status == 400
    assert "unknown search parameter 'colour'" in str(raised.value)


async def test_an_unknown_type_is_fhir_not_found(shared_fhir: FhirTestServer) -> None:
    async with FhirClient(shared_fhir.base_url) as client:
        with pytest.raises(FhirNotFound, match="unknown resource type"):
            await client.read("Spaceship", "1")


async def test_search_follows_next_links_across_pages_and_collects_every_match(
    shared_fhir: FhirTestServer,
) -> None:
    expected = {
        r["id"]
        for r in shared_fhir.store.of_type("Encounter")
        if r["subject"]["reference"] == f"Patient/{ALEXIA}"
    }
    async with FhirClient(shared_fhir.base_url) as client:
        pages = [page async for page in client.search_pages("Encounter", {"patient": ALEXIA, "_count": 5})]
        found = [r["id"] async for r in client.search("Encounter", {"patient": ALEXIA, "_count": 5})]
    assert len(expected) == 15
    assert len(pages) == 3
    assert all(page["total"] == 15 for page in pages)
    assert [len(page["entry"]) for page in pages] == [5, 5, 5]
    assert sorted(found) == sorted(expected)


async def test_last_updated_ge_finds_only_what_changed_since(shared_fhir: FhirTestServer) -> None:
    async with FhirClient(shared_fhir.base_url) as client:
        before = datetime.now(UTC).isoformat()
        changed = await client.update({**await client.read("Patient", ALEXIA), "gender": "female"})
        found = [r async for r in client.search("Patient", {"_lastUpdated": f"ge{before}"})]
        none_after = [
            r async for r in client.search("Patient", {"_lastUpdated": f"gt{changed['meta']['lastUpdated']}"})
        ]
    assert [(r["id"], r["meta"]["versionId"]) for r in found] == [(ALEXIA, changed["meta"]["versionId"])]
    assert none_after == []


async def test_include_brings_the_referenced_patient_once_as_an_include(shared_fhir: FhirTestServer) -> None:
    async with FhirClient(shared_fhir.base_url) as client:
        entries = [
            e
            async for e in client.search_entries(
                "Encounter", {"patient": ALEXIA, "_include": "Encounter:patient", "_count": 100}
            )
        ]
    matches = [e for e in entries if e.mode == "match"]
    includes = [e for e in entries if e.mode == "include"]
    assert len(matches) == 15
    assert all(e.resource["resourceType"] == "Encounter" for e in matches)
    assert [(e.resource["resourceType"], e.resource["id"]) for e in includes] == [("Patient", ALEXIA)]


async def test_revinclude_brings_the_patients_observations_as_includes(shared_fhir: FhirTestServer) -> None:
    async with FhirClient(shared_fhir.base_url) as client:
        entries = [
            e
            async for e in client.search_entries(
                "Patient", {"_id": ALEXIA, "_revinclude": "Observation:patient"}
            )
        ]
    assert entries[0] == SearchEntry(shared_fhir.store.of_type("Patient")[-1], "match")
    assert entries[0].resource["id"] == ALEXIA
    assert {e.mode for e in entries[1:]} == {"include"}
    assert len(entries) == 1 + 185


async def test_search_query_with_sort_and_limit_returns_the_latest_hba1c(shared_fhir: FhirTestServer) -> None:
    query = f"Observation?patient={ALEXIA}&code=http://loinc.org|4548-4&_sort=-date&_count=1"
    async with FhirClient(shared_fhir.base_url) as client:
        latest = [r async for r in client.search_query(query, limit=1)]
        all_of_them = [r async for r in client.search_query(query)]
    assert [(r["id"], r["effectiveDateTime"]) for r in latest] == [
        (LATEST_HBA1C, "2020-10-02T16:13:53+00:00")
    ]
    assert latest[0]["valueQuantity"]["unit"] == "%"
    assert len(all_of_them) == 10
    dates = [r["effectiveDateTime"] for r in all_of_them]
    assert dates == sorted(dates, reverse=True)
    # limit stops the paging: one page for one resource
    assert sum(1 for method, path, query_string in shared_fhir.requests if "_getpages" in query_string) >= 9


async def test_search_query_keeps_a_plus_in_a_timezone(shared_fhir: FhirTestServer) -> None:
    query = f"Observation?patient={ALEXIA}&code=4548-4&date=ge2020-01-01T00:00:00+00:00"
    async with FhirClient(shared_fhir.base_url) as client:
        found = [r["id"] async for r in client.search_query(query)]
    assert found == [LATEST_HBA1C]


async def test_date_prefixes_and_summary_count(shared_fhir: FhirTestServer) -> None:
    async with FhirClient(shared_fhir.base_url) as client:
        counts = {}
        for prefix in ("lt", "ge"):
            response = await client.request(
                "GET",
                "Observation",
                params={"patient": ALEXIA, "code": "4548-4", "date": f"{prefix}2019", "_summary": "count"},
            )
            counts[prefix] = response.json()["total"]
            assert "entry" not in response.json()
    assert counts["lt"] + counts["ge"] == 10
    assert counts["ge"] == 2


async def test_post_search_takes_the_parameters_from_the_form(shared_fhir: FhirTestServer) -> None:
    async with FhirClient(shared_fhir.base_url) as client:
        response = await client.request(
            "POST",
            "Observation/_search",
            content=f"patient={ALEXIA}&code=http://loinc.org|4548-4",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert response.json()["total"] == 10


async def test_everything_pages_through_the_patients_record(shared_fhir: FhirTestServer) -> None:
    async with FhirClient(shared_fhir.base_url) as client:
        record = [r async for r in client.everything(ABDUL_PATIENT_ID, {"_count": 50})]
    assert record[0]["resourceType"] == "Patient"
    types = {r["resourceType"] for r in record}
    assert {"Encounter", "Observation", "Condition", "Claim"} <= types
    assert len(record) == len(shared_fhir.store.about_patient(ABDUL_PATIENT_ID))
    assert len({(r["resourceType"], r["id"]) for r in record}) == len(record)


@pytest.mark.parametrize("status", [404, 501])
async def test_everything_is_not_supported_when_the_server_lacks_it(
    fhir: FhirTestServer, status: int
) -> None:
    fhir.put({"resourceType": "Patient", "id": "p1"})
    fhir.everything_enabled = False
    fhir.everything_missing_status = status
    async with FhirClient(fhir.base_url) as client:
        with pytest.raises(FhirNotSupported) as raised:
            [r async for r in client.everything("p1")]
    assert raised.value.status == status


async def test_everything_for_an_unknown_patient_is_fhir_not_found(shared_fhir: FhirTestServer) -> None:
    async with FhirClient(shared_fhir.base_url) as client:
        with pytest.raises(FhirNotFound):
            [r async for r in client.everything("nobody")]


async def test_create_and_update_return_the_stored_resource(fhir: FhirTestServer) -> None:
    async with FhirClient(fhir.base_url) as client:
        created = await client.create({"resourceType": "Patient", "gender": "female"})
        updated = await client.update({**created, "gender": "male"})
    assert created["meta"]["versionId"] == "1"
    assert (updated["id"], updated["meta"]["versionId"], updated["gender"]) == (created["id"], "2", "male")
    assert fhir.get("Patient", created["id"]) == updated
