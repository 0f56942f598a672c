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
    return load_library(LIBRARY)


def load_library(directory: Path) -> tuple[LibraryEntry, ...]:
    """The entries of a library directory (one YAML file each). A template is written in one file only;
    another entry that sends it lists a reference to it (`ValueError` otherwise)."""
    documents = [yaml.safe_load(path.read_text()) for path in sorted(directory.glob("*.yaml"))]
    journeys = [parse_journey(document["journey"]) for document in documents]
    written = {
        journey.key: tuple(
            parse_template(template) for template in document["templates"] if "from" not in template
        )
        for journey, document in zip(journeys, documents, strict=True)
    }
    _written_once(written)
    return tuple(
        LibraryEntry(
            key=journey.key,
            name=document["name"],
            description=" ".join(document["description"].split()),
            journey=journey,
            templates=_templates(journey.key, document["templates"], written),
            questionnaires=tuple(
                json.loads((QUESTIONNAIRES / name).read_text()) for name in document.get("questionnaires", [])
            ),
        )
        for journey, document in zip(journeys, documents, strict=True)
    )


def _written_once(written: dict[str, tuple[TemplateDefinition, ...]]) -> None:
    writers: dict[tuple[str, str, str], str] = {}
    for key, templates in written.items():
        for template in templates:
            variant = (template.key, template.channel, template.locale)
            if variant in writers:
                raise ValueError(
                    f"{key}: template {template.key!r} ({template.channel}, {template.locale}) is written in "
                    f"{writers[variant]!r} too; list it as {{from: {writers[variant]}, key: {template.key}}}"
                )
            writers[variant] = key


def _templates(
    key: str, listed: list[dict[str, Any]], written: dict[str, tuple[TemplateDefinition, ...]]
) -> tuple[TemplateDefinition, ...]:
    """An entry's templates in the order listed: the ones written in its file, and for a reference
    `{from: <entry>, key: <template key>}` every locale and channel of that template as the named entry
    writes it (so two journeys that send the same message share one text)."""
    own = iter(written[key])
    templates: list[TemplateDefinition] = []
    for item in listed:
        if "from" not in item:
            templates.append(next(own))
            continue
        if set(item) != {"from", "key"}:
            raise ValueError(f"{key}: a template reference has `from` and `key` only, not {sorted(item)}")
        shared = [template for template in written.get(item["from"], ()) if template.key == item["key"]]
        if not shared:
            raise ValueError(f"{key}: {item['from']!r} writes no template {item['key']!r}")
        templates.extend(shared)
    return tuple(templates)


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
