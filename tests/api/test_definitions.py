"""Publishing templates and journeys: JSON or YAML, versions, and errors that name the step and field."""

from __future__ import annotations

import httpx
import yaml

from tests.models.test_journey import CONTRACT_EXAMPLE

YAML = {"content-type": "application/yaml"}
TEMPLATE = {"key": "hba1c-high", "channel": "sms", "locale": "en", "body": "Hi {{ patient.given }}"}


async def test_a_template_in_yaml_is_stored_and_new_content_is_a_new_version(api: httpx.AsyncClient) -> None:
    first = await api.post("/v1/templates", content=yaml.safe_dump(TEMPLATE), headers=YAML)
    same = await api.post("/v1/templates", json=TEMPLATE)
    changed = await api.post("/v1/templates", json={**TEMPLATE, "body": "Hello {{ patient.given }}"})
    assert first.status_code == 201
    assert first.json() == {
        "key": "hba1c-high",
        "channel": "sms",
        "locale": "en",
        "version": 1,
        "created": True,
    }
    assert same.json()["version"] == 1
    assert same.json()["created"] is False
    assert changed.json()["version"] == 2


async def test_template_errors_name_the_field(api: httpx.AsyncClient) -> None:
    email = await api.post("/v1/templates", json={"key": "e", "channel": "email", "body": "x"})
    syntax = await api.post("/v1/templates", json={**TEMPLATE, "body": "Hi {{ patient.given"})
    assert email.status_code == 422
    assert "subject" in email.json()["detail"][0]["msg"]
    assert syntax.status_code == 422
    assert syntax.json()["detail"][0]["loc"] == ["body", "body"]


async def test_a_journey_in_yaml_is_published_and_read_back(api: httpx.AsyncClient) -> None:
    await api.post("/v1/templates", json=TEMPLATE)
    created = await api.post("/v1/journeys", content=yaml.safe_dump(CONTRACT_EXAMPLE), headers=YAML)
    assert created.status_code == 201
    assert created.json() == {"key": "hba1c-followup", "version": 1}
    again = await api.post("/v1/journeys", json=CONTRACT_EXAMPLE)
    assert again.status_code == 200

    listed = (await api.get("/v1/journeys")).json()["items"]
    assert [(item["key"], item["version"]) for item in listed] == [
        ("discharge-callback", 1),
        ("hba1c-followup", 1),
    ]
    read = (await api.get("/v1/journeys/hba1c-followup", params={"version": 1})).json()
    assert read["steps"][1]["wait_for"]["timeout"] == "P2D"


async def test_the_same_version_with_other_content_is_a_conflict(api: httpx.AsyncClient) -> None:
    await api.post("/v1/templates", json=TEMPLATE)
    await api.post("/v1/journeys", json=CONTRACT_EXAMPLE)
    response = await api.post("/v1/journeys", json={**CONTRACT_EXAMPLE, "name": "Renamed"})
    assert response.status_code == 409
    version_two = await api.post("/v1/journeys", json={**CONTRACT_EXAMPLE, "name": "Renamed", "version": 2})
    assert version_two.status_code == 201
    latest = (await api.get("/v1/journeys/hba1c-followup")).json()
    assert (latest["version"], latest["name"]) == (2, "Renamed")


async def test_an_unknown_template_is_refused_at_its_step(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/journeys", json=CONTRACT_EXAMPLE)
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert (problem["step"], problem["field"], problem["type"]) == (
        "notify",
        "send.template",
        "unknown_template",
    )


async def test_a_goto_to_a_missing_step_is_refused_at_its_step(api: httpx.AsyncClient) -> None:
    document = {
        **CONTRACT_EXAMPLE,
        "steps": [*CONTRACT_EXAMPLE["steps"][:-1], {"id": "done", "goto": "gone", "end": {}}],
    }
    response = await api.post("/v1/journeys", json=document)
    assert response.status_code == 422
    problem = response.json()["detail"][0]
    assert (problem["step"], problem["field"]) == ("done", "goto")


async def test_fhirpath_syntax_errors_are_refused_at_their_place(api: httpx.AsyncClient) -> None:
    await api.post("/v1/templates", json=TEMPLATE)
    document = {
        **CONTRACT_EXAMPLE,
        "entry": {"fhir": {"resource": "Observation", "criteria": "Observation.code.where("}},
    }
    response = await api.post("/v1/journeys", json=document)
    assert response.status_code == 422
    problem = response.json()["detail"][0]
    assert problem["loc"] == ["body", "entry", "fhir", "criteria"]
    assert problem["type"] == "fhirpath_syntax"


async def test_malformed_json_and_yaml_are_422_with_a_location(api: httpx.AsyncClient) -> None:
    bad_json = await api.post(
        "/v1/journeys", content=b'{"key": ', headers={"content-type": "application/json"}
    )
    bad_yaml = await api.post("/v1/journeys", content=b"key: [unclosed", headers=YAML)
    alias = await api.post("/v1/journeys", content=b"a: &x [1]\nb: *x\n", headers=YAML)
    assert bad_json.status_code == 422
    assert bad_json.json()["detail"][0]["type"] == "json_invalid"
    assert bad_yaml.json()["detail"][0]["type"] == "yaml_invalid"
    assert alias.status_code == 422


async def test_an_unsupported_media_type_is_415(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/journeys", content=b"key: x", headers={"content-type": "text/plain"})
    assert response.status_code == 415


async def test_an_unknown_journey_is_404(api: httpx.AsyncClient) -> None:
    assert (await api.get("/v1/journeys/nope")).status_code == 404
