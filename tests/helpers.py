"""Small builders shared by tests: load a Synthea patient into the store, publish definitions."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aftercare.definitions import check_journey, parse_journey, parse_template
from aftercare.fhir.bundles import entries_of
from aftercare.store.journeys import publish_journey
from aftercare.store.resources import store_resources
from aftercare.store.templates import publish_template
from models.journey import JourneyDefinition
from tests.conftest import synthea_bundle


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
