"""The journey editor: the YAML of a journey (the latest version with its number raised, or a starter),
published as a new version with the API's own validation (`console/editing.py`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.definitions import check_journey, parse_journey
from aftercare.security.principal import Principal
from aftercare.store.journeys import JourneyVersionConflict, get_journey, publish_journey
from api.definition_owner import owned
from console.editing import DefinitionEditor, add_editor, next_version_yaml
from models.tables import Journey

router = APIRouter(prefix="/console/journeys", include_in_schema=False)

STARTER = """key: {key}
version: 1
name: New journey
steps:
  - id: welcome
    send: {{channel: sms, body: "Hi {{{{ patient.given }}}}, welcome home from the hospital."}}
  - id: done
    end: {{outcome: completed}}
"""


async def _opening(session: AsyncSession, key: str, _: Mapping[str, str]) -> str | None:
    return next_version_yaml(await get_journey(session, key))


async def _publishing(session: AsyncSession, document: Any, user: Principal) -> str:
    journey = parse_journey(document)
    journey = await owned(session, user, Journey, journey, what="journey")
    await check_journey(session, journey)
    await publish_journey(session, journey)
    return f"/console/journeys/{journey.key}?published=1"


EDITOR = DefinitionEditor(
    prefix=router.prefix,
    title="Edit journey",
    label="Definition (YAML)",
    submit="Publish as a new version",
    starter=STARTER,
    opening=_opening,
    publishing=_publishing,
    conflicts=(JourneyVersionConflict,),
)
add_editor(router, EDITOR)
