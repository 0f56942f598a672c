"""Loads the demo through the API, the way a hospital's systems would, and fires one trigger. Loading it
again changes nothing: the templates, journey and patients are published and imported as they were,
and the result is the same version, so no second enrollment starts and no second text goes out."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).parent
DEMO_OBSERVATION_ID = "demo-hba1c-1"
# Fixed, so the demo's result is the same version every time it is posted: loading the demo again (every
# `make dev` restart) stores nothing new and texts nobody twice.
DEMO_EFFECTIVE = "2026-01-15T08:30:00+00:00"


@dataclass(frozen=True)
class DemoSummary:
    """What the demo loaded and started."""

    patients: list[str]
    journey: str
    observation: str
    triggered: int


def demo_observation(patient_id: str, value: float = 9.6) -> dict[str, Any]:
    """A final HbA1c result for the patient, as a lab system would post it."""
    return {
        "resourceType": "Observation",
        "id": DEMO_OBSERVATION_ID,
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {
            "coding": [
                {
                    "system": "http://loinc.org",
                    "code": "4548-4",
                    "display": "Hemoglobin A1c/Hemoglobin.total in Blood",
                }
            ],
            "text": "Hemoglobin A1c",
        },
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": DEMO_EFFECTIVE,
        "valueQuantity": {"value": value, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
    }


def _patient_ids(bundle: dict[str, Any]) -> list[str]:
    return [
        entry["resource"]["id"]
        for entry in bundle.get("entry", [])
        if entry.get("resource", {}).get("resourceType") == "Patient"
    ]


def load_demo(api: str, *, api_key: str, timeout: float = 60.0) -> DemoSummary:
    """Publish the templates and journey, import the patients, post one high HbA1c result (as `api_key`)."""
    with httpx.Client(base_url=api, timeout=timeout, headers={"X-API-Key": api_key}) as client:
        for path in sorted((HERE / "definitions").glob("*.yaml")):
            if path.name.endswith(".journey.yaml"):
                continue
            client.post(
                "/v1/templates", content=path.read_bytes(), headers={"content-type": "application/yaml"}
            ).raise_for_status()
        journey = client.post(
            "/v1/journeys",
            content=(HERE / "definitions" / "hba1c-followup.journey.yaml").read_bytes(),
            headers={"content-type": "application/yaml"},
        )
        journey.raise_for_status()
        patients = []
        for path in sorted((HERE / "data").glob("*.json")):
            content = path.read_bytes()
            client.post(
                "/v1/fhir/import",
                params={"triggers": "false"},
                content=content,
                headers={"content-type": "application/fhir+json"},
            ).raise_for_status()
            patients.extend(_patient_ids(json.loads(content)))
        posted = client.post(
            "/v1/fhir/notifications",
            json=demo_observation(patients[0]),
            headers={"content-type": "application/fhir+json"},
        )
        posted.raise_for_status()
    return DemoSummary(
        patients=patients,
        journey=journey.json()["key"],
        observation=f"Observation/{DEMO_OBSERVATION_ID}",
        triggered=posted.json()["triggered"],
    )
