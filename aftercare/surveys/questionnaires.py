"""Stored FHIR R4 Questionnaires: validated (fhir.resources, then the item types surveys support),
versioned by canonical url and version, listed, and looked up for a survey step."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.fhir.resources import validation_problems
from aftercare.surveys.form import options_of
from models.survey_tables import QuestionnaireVersion

SUPPORTED_TYPES = frozenset(
    {"group", "display", "string", "text", "boolean", "choice", "integer", "decimal", "date"}
)
MAX_ITEMS = 200


class QuestionnaireError(Exception):
    """A Questionnaire that cannot be stored or used: `problems` as (element path, message); `status`
    is the HTTP status it answers."""

    def __init__(self, problems: list[tuple[str, str]], status: int = 422) -> None:
        super().__init__("; ".join(f"{path}: {message}" for path, message in problems))
        self.problems = problems
        self.status = status


@dataclass(frozen=True)
class Saved:
    """The version stored, and whether it is new."""

    row: QuestionnaireVersion
    created: bool


def walk_items(
    items: Sequence[dict[str, Any]], path: str = "Questionnaire"
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every item, depth first, with its element path."""
    for position, item in enumerate(items):
        where = f"{path}.item[{position}]"
        yield where, item
        yield from walk_items(item.get("item") or [], where)


def survey_problems(resource: dict[str, Any]) -> list[tuple[str, str]]:
    """What keeps a valid Questionnaire from being a survey: no url, an unsupported item type, a
    duplicate linkId, a choice without options, an enableWhen on an unknown question."""
    problems: list[tuple[str, str]] = []
    if not resource.get("url"):
        problems.append(("Questionnaire.url", "a survey Questionnaire needs a canonical url"))
    items = list(walk_items(resource.get("item") or []))
    if not items:
        problems.append(("Questionnaire.item", "a survey needs at least one item"))
    if len(items) > MAX_ITEMS:
        problems.append(("Questionnaire.item", f"at most {MAX_ITEMS} items"))
    seen: set[str] = set()
    for path, item in items:
        link_id, kind = item.get("linkId"), item.get("type")
        if link_id in seen:
            problems.append((f"{path}.linkId", f"linkId {link_id!r} is used twice"))
        seen.add(str(link_id))
        if kind not in SUPPORTED_TYPES:
            problems.append((f"{path}.type", f"item type {kind!r} is not supported in surveys"))
        if kind == "choice" and not options_of(resource, item):
            problems.append((path, "a choice item needs answerOption or a contained answerValueSet"))
    for path, item in items:
        for position, condition in enumerate(item.get("enableWhen") or []):
            if condition.get("question") not in seen:
                problems.append(
                    (
                        f"{path}.enableWhen[{position}].question",
                        f"no item with linkId {condition.get('question')!r}",
                    )
                )
    return problems


def _hash(resource: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(resource, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


async def save_questionnaire(session: AsyncSession, resource: Any) -> Saved:
    """Validate and store a Questionnaire version; the same content again is a no-op, other content
    under a stored url and version is refused (409). With no `version`, the next number is given."""
    problems = validation_problems(resource)
    if not problems and resource.get("resourceType") != "Questionnaire":
        problems = [("resourceType", "expected a Questionnaire")]
    if problems:
        raise QuestionnaireError(problems)
    problems = survey_problems(resource)
    if problems:
        raise QuestionnaireError(problems)
    url = str(resource["url"])
    versions = await versions_of(session, url)
    digest = _hash({key: value for key, value in resource.items() if key not in ("id", "meta", "version")})
    version = resource.get("version")
    if version is None:
        same = next((row for row in versions if row.content_hash == digest), None)
        if same is not None:
            return Saved(same, False)
        version = str(1 + max((int(row.version) for row in versions if row.version.isdigit()), default=0))
    existing = next((row for row in versions if row.version == version), None)
    if existing is not None:
        if existing.content_hash == digest:
            return Saved(existing, False)
        raise QuestionnaireError(
            [("Questionnaire.version", f"version {version!r} of {url} is stored with other content")], 409
        )
    stored = {**resource, "version": version}
    row = QuestionnaireVersion(
        url=url,
        version=version,
        status=str(resource.get("status")),
        title=resource.get("title"),
        resource=stored,
        content_hash=digest,
    )
    session.add(row)
    await session.flush()
    return Saved(row, True)


async def versions_of(session: AsyncSession, url: str) -> list[QuestionnaireVersion]:
    """Every stored version of a url, newest first."""
    rows = await session.scalars(
        select(QuestionnaireVersion)
        .where(QuestionnaireVersion.url == url)
        .order_by(QuestionnaireVersion.created_at.desc())
    )
    return list(rows)


async def list_questionnaires(
    session: AsyncSession, *, all_versions: bool = False
) -> list[QuestionnaireVersion]:
    """Stored Questionnaires: the newest version of each url (or every version), by url."""
    rows = await session.scalars(
        select(QuestionnaireVersion).order_by(
            QuestionnaireVersion.url, QuestionnaireVersion.created_at.desc()
        )
    )
    if all_versions:
        return list(rows)
    newest: dict[str, QuestionnaireVersion] = {}
    for row in rows:
        newest.setdefault(row.url, row)
    return list(newest.values())


async def usable_questionnaire(
    session: AsyncSession, url: str, version: str | None = None
) -> QuestionnaireVersion:
    """The version a survey sends: the one named, else the newest; refused when unknown or retired."""
    versions = await versions_of(session, url)
    chosen = next((row for row in versions if row.version == version), None) if version else None
    if version is None and versions:
        chosen = versions[0]
    if chosen is None:
        named = f"version {version!r} of " if version else ""
        raise QuestionnaireError([("questionnaire", f"no Questionnaire {named}{url}")], 404)
    if chosen.status == "retired":
        raise QuestionnaireError(
            [("questionnaire", f"Questionnaire {url} version {chosen.version} is retired")], 409
        )
    return chosen
