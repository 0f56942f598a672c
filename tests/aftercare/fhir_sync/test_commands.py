"""`aftercare subscribe`: the journeys' FHIR entries become Subscriptions on the source, idempotently."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aftercare.fhir_sync.commands import run_subscribe
from aftercare.settings import Settings
from tests.fhir_server import running_fhir_server
from tests.helpers import publish

pytestmark = pytest.mark.usefixtures("empty_database")

ENDPOINT = "https://aftercare.hospital.example/v1/fhir/notifications"
JOURNEY = {
    "key": "after-discharge",
    "version": 1,
    "name": "After discharge",
    "entry": {"fhir": {"resource": "Encounter", "interactions": ["create", "update"]}},
    "steps": [{"id": "hello", "send": {"channel": "sms", "body": "Hello"}}],
}


async def test_subscribe_registers_one_subscription_per_watched_type_once(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], capsys: pytest.CaptureFixture[str]
) -> None:
    await publish(sessions, JOURNEY)
    async with running_fhir_server() as fhir:
        configured = settings.model_copy(update={"fhir_base_url": fhir.base_url})
        options = {
            "source": "default",
            "endpoint": ENDPOINT,
            "style": "rest-hook",
            "topic": None,
            "types": None,
        }

        assert await run_subscribe(configured, content="full-resource", **options) == 0  # type: ignore[arg-type]
        assert await run_subscribe(configured, content="full-resource", **options) == 0  # type: ignore[arg-type]

        [subscription] = fhir.store.of_type("Subscription")
    assert subscription["criteria"] == "Encounter?"
    assert subscription["channel"]["endpoint"] == ENDPOINT
    first, second = capsys.readouterr().out.strip().splitlines()
    assert first.startswith("Encounter: Subscription/")
    assert first.endswith(f"created -> {ENDPOINT}")
    assert "updated" in second


async def test_subscribe_without_a_configured_server_says_so(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    unconfigured = settings.model_copy(update={"fhir_base_url": None})
    status = await run_subscribe(
        unconfigured,
        source="default",
        endpoint=ENDPOINT,
        style="rest-hook",
        content="full-resource",
        topic=None,
        types=["Encounter"],
    )
    assert status == 1
    assert "FHIR_BASE_URL" in capsys.readouterr().err
