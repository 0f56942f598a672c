"""Registering the code journeys (and their templates) in the database, so they are listed, enrolled
and triggered like any definition. The API and every worker do it at start; it is idempotent."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import journeys.code  # noqa: F401 (each code journey registers itself on import)
from aftercare.store.journeys import JourneyVersionConflict, publish_journey
from aftercare.store.templates import publish_template
from workflows.code_journeys import registered

log = logging.getLogger(__name__)


async def sync_code_journeys(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    """Publish each code journey's registration and templates; returns the keys registered."""
    keys = []
    for journey in registered():
        definition = journey.definition
        try:
            async with sessions.begin() as session:
                for template in journey.templates:
                    await publish_template(session, template)
                await publish_journey(session, definition)
        except JourneyVersionConflict:
            log.error(
                "code journey registration changed without a new version; bump its version",
                extra={"journey_key": definition.key, "journey_version": definition.version},
            )
            continue
        keys.append(definition.key)
    return keys
