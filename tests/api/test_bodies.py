"""Bodies the API cannot read: nested past the depth limit (a 422, or a 400 `OperationOutcome` on FHIR
endpoints, never a `RecursionError`), or in a media type the route does not take (a 415 naming the ones
it does)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from aftercare.nesting import MAX_DEPTH

DEFINITION_ROUTES = ["/v1/journeys", "/v1/templates", "/v1/segments", "/v1/campaigns"]
TOO_DEEP = f"the document nests deeper than {MAX_DEPTH} levels"


def nested_yaml(depth: int) -> str:
    return "key: deep\nsteps: " + "[" * depth + "]" * depth + "\n"


def nested_json(depth: int) -> str:
    return '{"key": "deep", "steps": ' + "[" * depth + "]" * depth + "}"


def deep_extension(depth: int) -> dict[str, Any]:
    extension: dict[str, Any] = {"url": "http://example.org/leaf", "valueString": "x"}
    for _ in range(depth):
        extension = {"url": "http://example.org/branch", "extension": [extension]}
    return {"resourceType": "Patient", "id": "deep", "extension": [extension]}


@pytest.mark.parametrize("path", DEFINITION_ROUTES)
@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/yaml", nested_yaml(5000)),
        ("application/json", nested_json(5000)),
        ("application/json", nested_json(200)),
    ],
    ids=["yaml-5000", "json-5000", "json-200"],
)
async def test_a_definition_nested_too_deep_is_a_422_naming_the_limit(
    api: httpx.AsyncClient, path: str, content_type: str, body: str
) -> None:
    answer = await api.post(path, content=body, headers={"content-type": content_type})
    assert answer.status_code == 422
    [problem] = answer.json()["detail"]
    assert (problem["type"], problem["loc"], problem["msg"]) == ("too_deep", ["body"], TOO_DEEP)


async def test_a_typed_body_nested_too_deep_is_a_422(api: httpx.AsyncClient) -> None:
    data: Any = "leaf"
    for _ in range(200):
        data = {"more": data}
    answer = await api.post("/v1/triggers", json={"type": "x.y", "patient_id": "p", "data": data})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["msg"] == TOO_DEEP


@pytest.mark.parametrize("path", ["/v1/fhir/notifications", "/v1/fhir/import"])
@pytest.mark.parametrize("ndjson", [False, True], ids=["json", "ndjson"])
async def test_a_fhir_extension_nested_300_deep_is_a_400_operation_outcome(
    api: httpx.AsyncClient, path: str, ndjson: bool
) -> None:
    content_type = "application/fhir+ndjson" if ndjson else "application/fhir+json"
    answer = await api.post(
        path, content=json.dumps(deep_extension(300)), headers={"content-type": content_type}
    )
    assert answer.status_code == 400
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert TOO_DEEP in outcome["issue"][0]["diagnostics"]


@pytest.mark.parametrize("path", DEFINITION_ROUTES)
async def test_a_definition_as_plain_text_is_a_415_naming_json_and_yaml(
    api: httpx.AsyncClient, path: str
) -> None:
    answer = await api.post(path, content="key: x", headers={"content-type": "text/plain"})
    assert answer.status_code == 415
    detail = answer.json()["detail"]
    assert "'text/plain'" in detail
    assert "application/json" in detail
    assert "application/yaml" in detail


@pytest.mark.parametrize(
    "path",
    ["/v1/triggers", "/v1/api-keys", "/v1/journeys/any/enrollments", "/v1/journeys/any/enrollments/batch"],
)
async def test_a_json_body_sent_as_another_type_is_a_415_naming_json(
    api: httpx.AsyncClient, path: str
) -> None:
    answer = await api.post(path, content='{"type": "x"}', headers={"content-type": "text/plain"})
    assert answer.status_code == 415
    assert "application/json" in answer.json()["detail"]


@pytest.mark.parametrize("path", ["/v1/fhir/notifications", "/v1/fhir/import"])
async def test_a_fhir_body_as_plain_text_is_a_415_operation_outcome(
    api: httpx.AsyncClient, path: str
) -> None:
    answer = await api.post(path, content="{}", headers={"content-type": "text/plain"})
    assert answer.status_code == 415
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome"
    [issue] = outcome["issue"]
    assert issue["code"] == "not-supported"
    assert "application/fhir+json" in issue["diagnostics"]
