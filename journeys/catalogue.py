"""The library of ready-made journeys: each a definition with its message templates, installed in one call."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.definitions import check_journey, parse_journey, parse_template
from aftercare.store.journeys import publish_journey
from aftercare.store.templates import publish_template
from aftercare.surveys.questionnaires import save_questionnaire
from models.journey import JourneyDefinition
from models.template import TemplateDefinition

LIBRARY = Path(__file__).parent / "library"
QUESTIONNAIRES = Path(__file__).parent / "questionnaires"


@dataclass(frozen=True)
class LibraryEntry:
    """A ready-made journey and the templates it sends."""

    key: str
    name: str
    description: str
    journey: JourneyDefinition
    templates: tuple[TemplateDefinition, ...]
    # The FHIR Questionnaires its `survey` steps send (from `journeys/questionnaires/`).
    questionnaires: tuple[dict[str, Any], ...] = ()


@cache
def library() -> tuple[LibraryEntry, ...]:
    """Every ready-made journey, validated as a published definition would be."""
    entries = []
    for path in sorted(LIBRARY.glob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        journey = parse_journey(document["journey"])
        entries.append(
            LibraryEntry(
                key=journey.key,
                name=document["name"],
                description=" ".join(document["description"].split()),
                journey=journey,
                templates=tuple(parse_template(template) for template in document["templates"]),
                questionnaires=tuple(
                    json.loads((QUESTIONNAIRES / name).read_text())
                    for name in document.get("questionnaires", [])
                ),
            )
        )
    return tuple(entries)


def _questionnaire(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((QUESTIONNAIRES / name).read_text())
    return loaded


def library_entry(key: str) -> LibraryEntry | None:
    """One ready-made journey by key."""
    return next((entry for entry in library() if entry.key == key), None)


async def install(session: AsyncSession, entry: LibraryEntry) -> str:
    """Publish the questionnaires and templates, then the journey; `created` or `unchanged` for the
    journey."""
    for questionnaire in entry.questionnaires:
        await save_questionnaire(session, questionnaire)
    for template in entry.templates:
        await publish_template(session, template)
    await check_journey(session, entry.journey)
    return await publish_journey(session, entry.journey)
