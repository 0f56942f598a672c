"""A full run through the guardrails (sent, non-PHI variant, suppressed, capped) through the API and a
real worker: the application logs, formatted as in production, carry no patient name, number or email."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from temporalio.worker import Worker

from aftercare.guardrails import FrequencyCap
from aftercare.logs import JsonFormatter
from aftercare.settings import Settings
from tests.conftest import ABDUL_PATIENT_ID, patient_of, synthea_bundle
from tests.helpers import with_email
from tests.integration.test_observation_to_sms import eventually

EMAIL = "abdul.koepp@example.org"

JOURNEY = {
    "key": "guarded",
    "version": 1,
    "name": "Guarded",
    "over_cap": "drop",
    "steps": [
        {"id": "lab", "send": {"template": "lab-result"}},
        {
            "id": "offer",
            "send": {"channel": "email", "subject": "Offer", "body": "Hi", "purpose": "marketing"},
        },
        {
            "id": "check-in",
            "send": {"channel": "email", "subject": "Hello {{ patient.given }}", "body": "Hi"},
        },
        {"id": "again", "send": {"channel": "sms", "body": "Hi again {{ patient.given }}"}},
    ],
}
TEMPLATE = {
    "key": "lab-result",
    "channel": "sms",
    "phi": True,
    "body": "{{ patient.given }}, your HbA1c is high",
    "non_phi_body": "{{ patient.given }}, please call us",
}


class Collected(logging.Handler):
    """Every record, formatted as the production JSON formatter writes it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def collected() -> Iterator[Collected]:
    handler = Collected()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
def api_settings(settings: Settings) -> Settings:
    """Guardrails on: two messages a day at most."""
    return settings.model_copy(
        update={
            "temporal_task_queue": f"guardrail-logs-{uuid.uuid4().hex[:8]}",
            "frequency_caps": [FrequencyCap(per_day=2)],
        }
    )


async def test_the_logs_of_a_guarded_run_carry_no_patient_data(
    api: httpx.AsyncClient, worker: Worker, collected: Collected
) -> None:
    patient = with_email(patient_of(synthea_bundle()), EMAIL)
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": patient}],
    }
    assert (
        await api.post("/v1/fhir/import", json=synthea_bundle(), params={"triggers": "false"})
    ).status_code == 200
    assert (await api.post("/v1/fhir/import", json=bundle, params={"triggers": "false"})).status_code == 200
    assert (await api.post("/v1/templates", json=TEMPLATE)).status_code == 201
    assert (await api.post("/v1/journeys", json=JOURNEY)).status_code == 201
    started = await api.post("/v1/journeys/guarded/enrollments", json={"patient_id": ABDUL_PATIENT_ID})
    enrollment_id = started.json()["enrollment_id"]

    async def finished() -> dict[str, Any] | None:
        body: dict[str, Any] = (await api.get(f"/v1/enrollments/{enrollment_id}")).json()
        return body if body["status"] == "completed" else None

    await eventually(finished, timeout=60)
    decisions = (await api.get(f"/v1/patients/{ABDUL_PATIENT_ID}/decisions")).json()["items"]
    assert [(d["step_id"], d["decision"], d["rule"]) for d in reversed(decisions)] == [
        ("lab", "sent", "phi"),
        ("offer", "suppressed", "consent"),
        ("check-in", "sent", "allowed"),
        ("again", "skipped", "frequency_cap"),
    ]
    logs = "\n".join(collected.lines)
    assert "send skipped by rule frequency_cap" in logs
    for secret in (
        patient["name"][0]["given"][0],
        patient["name"][0]["family"],
        "555-978-4581",
        "+15559784581",
        EMAIL,
    ):
        assert secret not in logs, "the application logged patient data"
