"""Small builders shared by tests: load a Synthea patient into the store, publish definitions."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Hashable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.messaging.providers import BatchingProvider, MessageProvider, OutgoingMessage, ProviderOutcome
from aftercare.definitions import check_journey, parse_journey, parse_template
from aftercare.fhir.bundles import entries_of
from aftercare.settings import Settings
from aftercare.store.journeys import publish_journey
from aftercare.store.resources import store_resources
from aftercare.store.templates import publish_template
from models.journey import JourneyDefinition, SendSpec
from models.temporal import EnrollmentTrigger, ExpressionScope, SendMessageInput, StepCall
from tests.conftest import ABDUL_PATIENT_ID, REPO, synthea_bundle


async def load_synthea_patient(
    sessions: async_sessionmaker[AsyncSession], name: str | None = None
) -> dict[str, Any]:
    """Store a Synthea bundle without firing triggers; returns its Patient resource."""
    bundle = synthea_bundle(name) if name else synthea_bundle()
    resources = [entry.resource for entry in entries_of(bundle)]
    async with sessions.begin() as session:
        await store_resources(session, resources, source="test", phone_region="US", fire_triggers=False)
    return next(resource for resource in resources if resource["resourceType"] == "Patient")


async def publish(sessions: async_sessionmaker[AsyncSession], journey: dict[str, Any]) -> JourneyDefinition:
    """Validate and publish a journey, as the API does."""
    definition = parse_journey(journey)
    async with sessions.begin() as session:
        await check_journey(session, definition)
        await publish_journey(session, definition)
    return definition


async def publish_templates(sessions: async_sessionmaker[AsyncSession], *templates: dict[str, Any]) -> None:
    """Validate and publish template variants."""
    async with sessions.begin() as session:
        for template in templates:
            await publish_template(session, parse_template(template))


def with_email(patient: dict[str, Any], email: str, *, preferred: bool = False) -> dict[str, Any]:
    """The Patient resource with an email contact point added (ranked first when `preferred`): what a
    registration system sends when the patient gives an address. Synthea patients have none."""
    updated = {**patient, "telecom": [dict(point) for point in patient.get("telecom") or []]}
    point: dict[str, Any] = {"system": "email", "value": email, "use": "home"}
    if preferred:
        point["rank"] = 1
        for other in updated["telecom"]:
            other["rank"] = 2
    updated["telecom"].append(point)
    return updated


async def ingest_patient(sessions: async_sessionmaker[AsyncSession], patient: dict[str, Any]) -> None:
    """Store an updated Patient through the product's ingestion path (what `POST /v1/fhir/import` runs)."""
    async with sessions.begin() as session:
        await store_resources(session, [patient], source="test", phone_region="US", fire_triggers=False)


def send_request(
    send: SendSpec,
    *,
    step: str = "notify",
    visit: int = 1,
    enrollment_id: str = "enr-1",
    patient_id: str = ABDUL_PATIENT_ID,
    journey_key: str = "j",
) -> SendMessageInput:
    """The send activity's input for one visit of a journey's send step."""
    return SendMessageInput(
        call=StepCall(
            journey_key=journey_key,
            journey_version=1,
            step_id=step,
            visit=visit,
            scope=ExpressionScope(
                enrollment_id=enrollment_id, patient_id=patient_id, trigger=EnrollmentTrigger(kind="manual")
            ),
        ),
        send=send,
    )


TWILIO_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2


def with_twilio(
    settings: Settings, task_queue: str, base_url: str | None, auth_token: str = "token", **more: Any
) -> Settings:
    """Settings for an API and worker that text through Twilio (at `base_url`: Prism serving Twilio's
    spec), on a task queue of the test's own."""
    return settings.model_copy(
        update={
            "temporal_task_queue": task_queue,
            "twilio_account_sid": TWILIO_ACCOUNT_SID,
            "twilio_auth_token": SecretStr(auth_token),
            "twilio_from_number": "+15005550006",
            "twilio_base_url": base_url,
            **more,
        }
    )


def busiest_second(stamps: list[datetime]) -> int:
    """The most of these moments that fall within any one second."""
    ordered = sorted(stamps)
    most, start = 0, 0
    for end, stamp in enumerate(ordered):
        while (stamp - ordered[start]).total_seconds() >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


class RecordingProvider:
    """A real provider, noting which calls it got (to prove what was and was not sent)."""

    def __init__(self, provider: MessageProvider) -> None:
        self.provider = provider
        self.name = provider.name
        self.external = provider.external
        self.calls: list[str] = []

    async def send(self, message: OutgoingMessage) -> ProviderOutcome:
        self.calls.append("send")
        return await self.provider.send(message)

    async def find_sent(self, message: OutgoingMessage) -> ProviderOutcome | None:
        self.calls.append("find_sent")
        return await self.provider.find_sent(message)


class BatchRecordingProvider(RecordingProvider):
    """A real batching provider (SendGrid), noting its calls and how many messages each request took."""

    def __init__(self, provider: BatchingProvider) -> None:
        super().__init__(provider)
        self.batching = provider
        self.max_batch = provider.max_batch
        self.sizes: list[int] = []

    def batch_key(self, message: OutgoingMessage) -> Hashable | None:
        return self.batching.batch_key(message)

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[ProviderOutcome]:
        self.calls.append("send_batch")
        self.sizes.append(len(messages))
        return await self.batching.send_batch(messages)


def run_aftercare(
    cwd: Path, *arguments: str, unset: Iterable[str] = (), **variables: str
) -> subprocess.CompletedProcess[str]:
    """Run an `aftercare` command in `cwd` as a developer would, with the suite's environment less the
    variables in `unset`, plus `variables`; its output collected."""
    environment = {key: value for key, value in os.environ.items() if key not in set(unset)}
    environment.update(variables, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "aftercare", *arguments],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
