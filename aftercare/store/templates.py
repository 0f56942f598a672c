"""Published message templates: a key has variants per channel and locale, each with versions; the
newest version of a variant is the one used."""

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
            .where(
                Template.key == definition.key,
                Template.channel == definition.channel,
                Template.locale == definition.locale,
            )
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
            channel=definition.channel,
            locale=definition.locale,
            version=version,
            definition=document,
            content_hash=digest,
        )
    )
    await session.flush()
    return version, True


async def find_template(
    session: AsyncSession, key: str, channel: str, locales: list[str]
) -> StoredTemplate | None:
    """The newest version of the channel's variant in the first locale of `locales` that it has."""
    rows = (
        await session.execute(
            select(Template.locale, Template.version, Template.definition)
            .where(Template.key == key, Template.channel == channel, Template.locale.in_(locales))
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


async def template_channels(session: AsyncSession, keys: Iterable[str]) -> dict[str, set[str]]:
    """The channels each of these template keys has variants for (keys without any are left out)."""
    wanted = set(keys)
    if not wanted:
        return {}
    rows = await session.execute(
        select(Template.key, Template.channel).where(Template.key.in_(wanted)).distinct()
    )
    channels: dict[str, set[str]] = {}
    for key, channel in rows:
        channels.setdefault(key, set()).add(channel)
    return channels
