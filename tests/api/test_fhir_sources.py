"""FHIR sources through the API: registered with named secrets (never the secrets), listed with
their sync state, refused with a precise reason when wrong."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.usefixtures("empty_database")

SOURCE = {
    "key": "ehr-east",
    "base_url": "https://ehr-east.example.org/fhir",
    "auth": {"kind": "client_credentials", "client_id": "aftercare", "client_secret_env": "EHR_EAST_SECRET"},
    "watched_types": ["Encounter", "Observation"],
}


async def test_a_source_is_registered_with_its_secret_named_not_stored(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EHR_EAST_SECRET", "s3cret-value")

    created = await api.post("/v1/fhir/sources", json=SOURCE)
    assert created.status_code == 201, created.text
    assert created.json()["auth"] == SOURCE["auth"]
    assert "s3cret-value" not in created.text

    changed = await api.post("/v1/fhir/sources", json={**SOURCE, "watched_types": ["Encounter"]})
    assert changed.status_code == 200
    read = (await api.get("/v1/fhir/sources/ehr-east")).json()
    assert read["watched_types"] == ["Encounter"]
    assert read["cursors"] == []
    assert read["subscriptions"] == []
    assert read["pending_notifications"] == 0
    listed = (await api.get("/v1/fhir/sources")).json()["items"]
    assert [item["key"] for item in listed if item["key"] == "ehr-east"] == ["ehr-east"]


async def test_a_secret_sent_in_the_request_is_refused(api: httpx.AsyncClient) -> None:
    answer = await api.post(
        "/v1/fhir/sources",
        json={**SOURCE, "auth": {"kind": "bearer", "token": "abc", "token_env": "X"}},
    )
    assert answer.status_code == 422
    assert "must not hold" in answer.text
    assert "abc" not in answer.text


async def test_a_named_secret_that_is_not_set_is_refused_now_not_at_the_first_poll(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EHR_EAST_SECRET", raising=False)
    answer = await api.post("/v1/fhir/sources", json=SOURCE)
    assert answer.status_code == 422
    assert "EHR_EAST_SECRET" in answer.text


async def test_an_unknown_auth_kind_and_an_unknown_resource_type_are_refused(api: httpx.AsyncClient) -> None:
    assert (
        await api.post("/v1/fhir/sources", json={**SOURCE, "auth": {"kind": "kerberos"}})
    ).status_code == 422
    bad_type = await api.post("/v1/fhir/sources", json={**SOURCE, "watched_types": ["not a type"]})
    assert bad_type.status_code == 422


async def test_an_unknown_source_is_404(api: httpx.AsyncClient) -> None:
    assert (await api.get("/v1/fhir/sources/nowhere")).status_code == 404
    assert (await api.post("/v1/fhir/sources/nowhere/poll")).status_code == 404


async def test_a_source_whose_url_cannot_be_used_is_refused_with_the_reason(api: httpx.AsyncClient) -> None:
    # found by the fuzz run: an invalid host was a 500
    answer = await api.post(
        "/v1/fhir/sources",
        json={"key": "odd", "base_url": "http://\u00b3|\u00a3", "watched_types": ["Patient"]},
    )
    assert answer.status_code == 422
    assert "not a usable URL" in answer.text
