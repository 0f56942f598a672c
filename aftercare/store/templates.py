"""Published message templates: versions per key and locale; the newest version is the one used."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.store.hashing import content_hash
from models.tables import Template
from models.template import TemplateDefinition


@dataclass(frozen=True)
class StoredTemplate:
    """A template variant with its version."""

    definition: TemplateDefinition
    version: int


async def publish_template(session: AsyncSession, definition: TemplateDefinition) -> tuple[int, bool]:
    """Store a variant; returns (version, created). Identical content keeps the current version."""
    document = definition.model_dump(mode="json", exclude_none=True)
    digest = content_hash(document)
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"template:{definition.key}"))))
    latest = (
        await session.execute(
            select(Template.version, Template.content_hash)
            .where(Template.key == definition.key, Template.locale == definition.locale)
            .order_by(Template.version.desc())
            .limit(1)
        )
    ).first()
    if latest is not None and latest.content_hash == digest:
        return latest.version, False
    version = (latest.version + 1) if latest is not None else 1
    session.add(
        Template(
            key=definition.key,
            locale=definition.locale,
            version=version,
            channel=definition.channel,
            definition=document,
            content_hash=digest,
        )
    )
    await session.flush()
    return version, True


async def find_template(session: AsyncSession, key: str, locales: list[str]) -> StoredTemplate | None:
    """The newest version of the first locale in `locales` that the template has."""
    rows = (
        await session.execute(
            select(Template.locale, Template.version, Template.definition)
            .where(Template.key == key, Template.locale.in_(locales))
            .order_by(Template.locale, Template.version.desc())
        )
    ).all()
    newest: dict[str, StoredTemplate] = {}
    for locale, version, document in rows:
        newest.setdefault(locale, StoredTemplate(TemplateDefinition.model_validate(document), version))
    for locale in locales:
        if locale in newest:
            return newest[locale]
    return None


async def existing_template_keys(session: AsyncSession, keys: Iterable[str]) -> set[str]:
    """Which of these template keys have at least one variant."""
    wanted = set(keys)
    if not wanted:
        return set()
    return set(await session.scalars(select(Template.key).where(Template.key.in_(wanted)).distinct()))
