"""`GET /v1/patients`: find a person by name, birth date, identifier, phone or email, one item per person
(a merged-away record answers as its person), in name order, paged by cursor, with only the fields that
tell patients apart, for every role that reads patients."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.test_audit import audit, key_for

ITEM_FIELDS = {"id", "name", "given", "family", "birth_date", "gender"}


def patient(
    patient_id: str,
    given: str,
    family: str,
    birth_date: str,
    *,
    phone: str | None = None,
    email: str | None = None,
    identifier: tuple[str, str] | None = None,
) -> dict[str, Any]:
    telecom = [{"system": "phone", "value": phone}] if phone else []
    telecom += [{"system": "email", "value": email}] if email else []
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": patient_id,
        "name": [{"use": "official", "given": given.split(), "family": family}],
        "gender": "female",
        "birthDate": birth_date,
        "telecom": telecom,
    }
    if identifier:
        resource["identifier"] = [{"system": identifier[0], "value": identifier[1]}]
    return resource


PATIENTS = [
    patient("p-ana", "Ana María", "Ortiz-López", "1980-01-02", phone="617-555-0101"),
    patient("p-anne", "Anne", "Smith", "1975-05-05", email="anne@example.org", identifier=("urn:mrn", "A-1")),
    patient("p-bob", "Bob", "Anders", "1980-01-02"),
    patient("p-anna", "Anna", "Smith", "1990-09-09", identifier=("urn:mrn", "A-2")),
    patient("p-smyth", "Anne", "Smyth", "1975-05-06", identifier=("urn:other", "X-9")),
]


@pytest.fixture
async def people(api: httpx.AsyncClient) -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": p} for p in PATIENTS]}
    imported = await api.post("/v1/fhir/import", json=bundle, params={"triggers": "false"})
    assert imported.json()["imported"] == {"Patient": len(PATIENTS)}, imported.text
    merged = await api.post("/v1/patients/p-anne/merge", json={"with": "p-smyth", "reason": "same person"})
    assert merged.status_code == 201, merged.text


async def found(api: httpx.AsyncClient, **query: Any) -> list[str]:
    answer = await api.get("/v1/patients", params=query)
    assert answer.status_code == 200, answer.text
    return [item["id"] for item in answer.json()["items"]]


@pytest.mark.usefixtures("people")
async def test_every_word_of_a_name_starts_a_word_of_the_name_whatever_the_case(
    api: httpx.AsyncClient,
) -> None:
    assert await found(api, name="smi ann") == ["p-anna", "p-anne"]  # Smith, Anna before Smith, Anne
    assert await found(api, name="ANNE") == ["p-anne"]
    assert await found(api, name="lópez") == ["p-ana"]  # a part of a double-barrelled name
    assert await found(api, name="mith") == []  # not the middle of a word
    assert await found(api, name="%") == []
    assert await found(api, name="_nne") == []


@pytest.mark.usefixtures("people")
async def test_birth_date_identifier_phone_and_email_find_the_patient(api: httpx.AsyncClient) -> None:
    assert await found(api, birthdate="1980-01-02") == ["p-bob", "p-ana"]  # Anders before Ortiz-López
    assert await found(api, birthdate="1980-01-02", name="ana") == ["p-ana"]
    assert await found(api, identifier="urn:mrn|A-1") == ["p-anne"]
    assert await found(api, identifier="A-2") == ["p-anna"]
    assert await found(api, identifier="urn:other|A-1") == []
    assert await found(api, phone="(617) 555-0101") == ["p-ana"]
    assert await found(api, phone="+1 617 555 0101") == ["p-ana"]
    assert await found(api, email="ANNE@Example.org") == ["p-anne"]
    bad_date = await api.get("/v1/patients", params={"birthdate": "02/01/1980"})
    assert bad_date.status_code == 422


@pytest.mark.usefixtures("people")
async def test_a_merged_away_record_is_found_by_its_own_data_and_answers_as_its_person(
    api: httpx.AsyncClient,
) -> None:
    assert await found(api, identifier="urn:other|X-9") == ["p-anne"]
    assert await found(api, name="smyth") == ["p-anne"]
    assert "p-smyth" not in await found(api)


@pytest.mark.usefixtures("people")
async def test_the_list_pages_by_cursor_in_name_order(api: httpx.AsyncClient) -> None:
    everyone = await found(api)
    assert everyone == ["p-bob", "p-ana", "p-anna", "p-anne"]
    pages: list[list[str]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3} if cursor is None else {"limit": 3, "cursor": cursor}
        page = (await api.get("/v1/patients", params=params)).json()
        pages.append([item["id"] for item in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [everyone[:3], everyone[3:]]
    bad = await api.get("/v1/patients", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 422
    assert "cursor" in bad.json()["detail"]


@pytest.mark.usefixtures("people")
async def test_items_carry_only_what_tells_patients_apart_for_every_role_that_reads_patients(
    api: httpx.AsyncClient,
) -> None:
    [item] = (await api.get("/v1/patients", params={"name": "bob"})).json()["items"]
    assert item == {
        "id": "p-bob",
        "name": "Bob Anders",
        "given": "Bob",
        "family": "Anders",
        "birth_date": "1980-01-02",
        "gender": "female",
    }
    front_desk = {"X-API-Key": await key_for(api, "non_clinical")}
    assert (await api.get("/v1/patients", params={"name": "bob"}, headers=front_desk)).json()["items"] == [
        item
    ]
    marketing = {"X-API-Key": await key_for(api, "marketing")}
    assert (await api.get("/v1/patients", headers=marketing)).status_code == 403


@pytest.mark.usefixtures("people")
async def test_the_audit_trail_records_a_search_without_its_terms(api: httpx.AsyncClient) -> None:
    await api.get("/v1/patients", params={"name": "Ortiz", "birthdate": "1980-01-02"})
    [row] = await audit(api, resource_type="patient", action="search")
    assert row["resource_id"] is None
    assert "Ortiz" not in str(row)
    assert "1980" not in str(row)
