"""The segment endpoints: publish (JSON or YAML, versioned), errors naming the criterion's path,
preview with each criterion explained, the predefined library, and a patient's segments."""

from __future__ import annotations

import httpx
import yaml
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.helpers import load_synthea_patient

YAML = {"content-type": "application/yaml"}
CONTRACT_EXAMPLE = """
key: diabetes-hba1c-high
name: Diabetes with HbA1c above 9
criteria:
  all:
    - condition: {code: {system: "http://snomed.info/sct", code: "44054006"}, clinical_status: active}
    - observation: {code: {system: "http://loinc.org", code: "4548-4"}, latest: true, value: {gt: 9}, within: P365D}
    - age: {gte: 18}
    - not: {encounter: {class: IMP, discharged_within: P30D}}
"""


async def test_a_segment_in_yaml_is_published_once_per_version(api: httpx.AsyncClient) -> None:
    first = await api.post("/v1/segments", content=CONTRACT_EXAMPLE, headers=YAML)
    same = await api.post("/v1/segments", content=CONTRACT_EXAMPLE, headers=YAML)
    document = yaml.safe_load(CONTRACT_EXAMPLE)
    other = await api.post("/v1/segments", json={**document, "name": "Other"})
    newer = await api.post("/v1/segments", json={**document, "name": "Other", "version": 2})
    assert (first.status_code, first.json()) == (201, {"key": "diabetes-hba1c-high", "version": 1})
    assert same.status_code == 200
    assert other.status_code == 409
    assert newer.status_code == 201
    read = (await api.get("/v1/segments/diabetes-hba1c-high?version=1")).json()
    assert read["criteria"]["all"][3] == {
        "not": {"encounter": {"class": ["IMP"], "discharged_within": "P30D"}}
    }
    listed = (await api.get("/v1/segments")).json()["items"]
    assert [(item["key"], item["version"], item["name"]) for item in listed] == [
        ("diabetes-hba1c-high", 2, "Other")
    ]


async def test_invalid_criteria_answer_422_naming_the_path(api: httpx.AsyncClient) -> None:
    document = yaml.safe_load(CONTRACT_EXAMPLE)
    document["criteria"]["all"][1]["observation"]["value"] = {"above": 9}
    document["criteria"]["all"][3]["not"] = {"diagnosis": "x"}
    document["criteria"]["all"].append({"condition": {"code": {"value_set": "gout"}}})
    response = await api.post("/v1/segments", json=document)
    assert response.status_code == 422
    problems = {tuple(item["loc"]): item["msg"] for item in response.json()["detail"]}
    assert set(problems) == {
        ("body", "criteria", "all", 1, "observation", "value", "above"),
        ("body", "criteria", "all", 3, "not"),
        ("body", "criteria", "all", 4, "condition", "code", "value_set"),
    }
    assert "exactly one of" in problems[("body", "criteria", "all", 3, "not")]
    assert (
        "unknown value set 'gout'"
        in problems[("body", "criteria", "all", 4, "condition", "code", "value_set")]
    )


async def test_a_reference_to_a_missing_segment_is_refused(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/segments", json={"key": "a", "name": "A", "criteria": {"segment": "b"}})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "criteria"]
    assert "no segment 'b'" in response.json()["detail"][0]["msg"]


async def test_preview_and_a_patients_segments(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    patient = await load_synthea_patient(sessions)
    gender = patient["gender"]
    segment = {
        "key": "same-gender-adults",
        "name": "Adults",
        "criteria": {"all": [{"gender": {"eq": gender}}, {"age": {"gte": 18}}]},
    }
    assert (await api.post("/v1/segments", json=segment)).status_code == 201
    as_of = f"{int(patient['birthDate'][:4]) + 10}-06-01T00:00:00Z"  # a child then, an adult now

    child = (await api.get("/v1/segments/same-gender-adults/preview", params={"as_of": as_of})).json()
    adult = (await api.get("/v1/segments/same-gender-adults/preview")).json()

    assert (child["count"], child["sample"]) == (0, [])
    assert [(c["path"], c["description"], c["count"]) for c in child["criteria"]] == [
        ("criteria", "all of 2 criteria", 0),
        ("criteria.all[0]", f"gender = {gender}", 1),
        ("criteria.all[1]", "age ≥ 18", 0),
    ]
    assert (adult["count"], adult["sample"]) == (1, [patient["id"]])
    segments = await api.get(f"/v1/patients/{patient['id']}/segments")
    assert segments.json()["segments"] == ["same-gender-adults"]
    then = await api.get(f"/v1/patients/{patient['id']}/segments", params={"as_of": as_of})
    assert then.json()["segments"] == []
    assert (await api.get("/v1/patients/nobody/segments")).status_code == 404

    refreshed = await api.post("/v1/segments/same-gender-adults/refresh", params={"as_of": as_of})
    assert (refreshed.json()["entered"], refreshed.json()["exited"]) == (0, 0)
    now = await api.post("/v1/segments/same-gender-adults/refresh")
    assert (now.json()["entered"], now.json()["exited"], now.json()["enrolled"]) == (1, 0, 0)
    members = await api.get("/v1/segments/same-gender-adults/members")
    assert members.json() == {
        "key": "same-gender-adults",
        "members": [patient["id"]],
        "count": 1,
        "count_shown": "1",
        "redacted": [],
    }
    assert (await api.get("/v1/segments/nothing/preview")).status_code == 404


async def test_predefined_segments_are_listed_and_installed(api: httpx.AsyncClient) -> None:
    library = (await api.get("/v1/segments/library")).json()["items"]
    assert len(library) == 7
    installed = await api.post("/v1/segments/library/discharged-last-7-days/install")
    again = await api.post("/v1/segments/library/discharged-last-7-days/install")
    assert (installed.status_code, again.status_code) == (201, 200)
    assert (await api.get("/v1/segments/discharged-last-7-days")).json()["criteria"] == {
        "encounter": {"class": ["IMP"], "discharged_within": "P7D"}
    }
    assert (await api.post("/v1/segments/library/nothing/install")).status_code == 404
