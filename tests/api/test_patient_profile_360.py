"""`GET /v1/patients/{id}`: the profile with its clinical summary, identity and timeline; the identity
routes merge, reverse and list candidates."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aftercare.fhir.bundles import entries_of
from models.tables import Enrollment, Message
from tests.conftest import SYNTHEA_BUNDLES
from tests.helpers import ingest_patient, load_synthea_patient

REYNA = "Reyna_Ziemann_08f8bfce-34cf-4b5a-a398-8e49650c6e3c.json"


async def test_the_profile_shows_the_clinical_summary_and_a_timeline_with_messages_and_journeys(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    resources = [entry.resource for entry in entries_of(json.loads((SYNTHEA_BUNDLES / REYNA).read_text()))]
    patient = await load_synthea_patient(sessions, REYNA)
    active = {
        r["id"]
        for r in resources
        if r["resourceType"] == "Condition"
        and r["clinicalStatus"]["coding"][0]["code"] == "active"
        and "abatementDateTime" not in r
    }
    hba1c = max(
        (
            r
            for r in resources
            if r["resourceType"] == "Observation" and any(c["code"] == "4548-4" for c in r["code"]["coding"])
        ),
        key=lambda r: r["effectiveDateTime"],
    )
    now = datetime.now(UTC)
    async with sessions.begin() as session:
        session.add(
            Enrollment(
                id="enr-360",
                journey_key="discharge-followup",
                journey_version=1,
                patient_id=patient["id"],
                status="completed",
                outcome="done",
                trigger={},
                context={},
                exclusive=False,
                once_only=False,
                workflow_id="wf-enr-360",
                started_at=now,
                ended_at=now,
            )
        )
        session.add(
            Message(
                id="msg-360",
                idempotency_key="k-360",
                patient_id=patient["id"],
                enrollment_id="enr-360",
                channel="sms",
                status="delivered",
                created_at=now,
                sent_at=now,
                delivered_at=now,
            )
        )

    response = await api.get(
        f"/v1/patients/{patient['id']}", params={"timeline_limit": 10, "observation_codes": 500}
    )
    assert response.status_code == 200
    profile = response.json()
    assert profile["name"]
    assert profile["birth_date"] == patient["birthDate"]
    clinical = profile["clinical"]
    assert {item["resource_id"] for item in clinical["active_conditions"]} == active
    (latest,) = [o for o in clinical["latest_observations"] if "http://loinc.org|4548-4" in o["codes"]]
    assert (latest["resource_id"], latest["value_number"]) == (hba1c["id"], hba1c["valueQuantity"]["value"])
    assert clinical["recent_encounters"][0]["start_at"] is not None
    kinds = [item["kind"] for item in profile["timeline"]]
    assert len(kinds) == 10
    assert {"message", "enrollment.started", "enrollment.finished"} <= set(kinds[:3])
    assert profile["identity"]["person_id"] == patient["id"]
    assert profile["resolved_from"] is None


async def test_merge_reverse_and_candidates_through_the_api(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    abdul = await load_synthea_patient(sessions)
    twin = copy.deepcopy(abdul)
    twin["id"], twin["identifier"] = "clinic-b-7", [{"system": "urn:clinic-b:mrn", "value": "B-7"}]
    await ingest_patient(sessions, twin)  # same phone and birth date: a candidate for review

    candidates = (await api.get("/v1/identity/candidates")).json()["items"]
    assert [(c["record_id"], c["other_id"]) for c in candidates] == [("clinic-b-7", abdul["id"])]

    assert (await api.post(f"/v1/patients/{abdul['id']}/merge", json={"with": "nobody"})).status_code == 404
    assert (await api.post("/v1/patients/nobody/merge", json={"with": "clinic-b-7"})).status_code == 404
    assert (await api.post(f"/v1/patients/{abdul['id']}/merge", json={"other": "x"})).status_code == 422
    merged = await api.post(
        f"/v1/patients/{abdul['id']}/merge", json={"with": "clinic-b-7", "reason": "same"}
    )
    assert merged.status_code == 201
    merge = merged.json()
    assert (merge["person_id"], merge["record_id"], merge["rule"]) == (abdul["id"], "clinic-b-7", "manual")
    again = await api.post(f"/v1/patients/{abdul['id']}/merge", json={"with": "clinic-b-7"})
    assert again.status_code == 409
    assert (await api.get("/v1/identity/candidates")).json()["items"] == []

    resolved = (await api.get("/v1/patients/clinic-b-7")).json()
    assert (resolved["id"], resolved["resolved_from"]) == (abdul["id"], "clinic-b-7")
    identity = (await api.get("/v1/patients/clinic-b-7/identity")).json()
    assert [r["record_id"] for r in identity["records"]] == [abdul["id"], "clinic-b-7"]
    assert {i["system"] for i in identity["identifiers"]} >= {"urn:clinic-b:mrn"}

    reverse = f"/v1/identity/merges/{merge['id']}/reverse"
    assert (await api.post(reverse, json={})).status_code == 422
    undone = await api.post(reverse, json={"reason": "different people"})
    assert undone.status_code == 200
    assert undone.json()["reversal_reason"] == "different people"
    assert (await api.post(reverse, json={"reason": "again"})).status_code == 409
    assert (await api.post("/v1/identity/merges/999999/reverse", json={"reason": "x"})).status_code == 404
    assert (await api.get("/v1/patients/clinic-b-7")).json()["id"] == "clinic-b-7"
