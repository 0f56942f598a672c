"""Published message templates: a key has variants per channel and locale, each with versions; the
newest version of a variant is the one used. A version never changes once stored, so a send that has
read which versions are the newest takes their parsed definitions from a cache."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, tuple_
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
            facility=definition.facility,
            definition=document,
            content_hash=digest,
        )
    )
    await session.flush()
    return version, True


@dataclass(frozen=True)
class PublishedVariant:
    """The newest version of a variant, and when it was stored."""

    definition: TemplateDefinition
    version: int
    created_at: datetime


async def latest_variants(
    session: AsyncSession, *, key: str | None = None, channel: str | None = None, locale: str | None = None
) -> list[PublishedVariant]:
    """The newest version of every variant, by key, channel and locale; each argument narrows the list."""
    filters = [
        column == value
        for column, value in ((Template.key, key), (Template.channel, channel), (Template.locale, locale))
        if value is not None
    ]
    rows = await session.execute(
        select(Template.definition, Template.version, Template.created_at)
        .where(*filters)
        .distinct(Template.key, Template.channel, Template.locale)
        .order_by(Template.key, Template.channel, Template.locale, Template.version.desc())
    )
    return [
        PublishedVariant(TemplateDefinition.model_validate(document), version, created_at)
        for document, version, created_at in rows
    ]


@dataclass(frozen=True)
class TemplateBook:
    """The newest version of every variant (channel and locale) of some template keys."""

    variants: Mapping[tuple[str, str, str], StoredTemplate]

    def channels(self, key: str) -> set[str]:
        """The channels the template has variants for (empty when it does not exist)."""
        return {channel for (name, channel, _) in self.variants if name == key}

    def find(self, key: str, channel: str, locales: Sequence[str]) -> StoredTemplate | None:
        """The channel's variant in the first of `locales` that it has."""
        for locale in locales:
            if (found := self.variants.get((key, channel, locale))) is not None:
                return found
        return None

    def texts(self, key: str) -> list[str]:
        """Every text of every variant of the template: what its renderings may refer to."""
        texts: list[str] = []
        for (name, _, _), stored in self.variants.items():
            if name == key:
                template = stored.definition
                texts += [template.body, *(t for t in (template.subject, template.html) if t)]
                texts += [t for t in (template.non_phi_subject, template.non_phi_body) if t]
                texts += [*(template.prompts or {}).values(), *(t for t in (template.voicemail,) if t)]
        return texts


async def load_template_book(session: AsyncSession, keys: Iterable[str]) -> TemplateBook:
    """The newest version of each variant of these templates (one query)."""
    wanted = sorted(set(keys))
    if not wanted:
        return TemplateBook({})
    rows = await session.execute(
        select(Template.key, Template.channel, Template.locale, Template.version, Template.definition)
        .where(Template.key.in_(wanted))
        .distinct(Template.key, Template.channel, Template.locale)
        .order_by(Template.key, Template.channel, Template.locale, Template.version.desc())
    )
    return TemplateBook(
        {
            (key, channel, locale): StoredTemplate(TemplateDefinition.model_validate(document), version)
            for key, channel, locale, version, document in rows
        }
    )


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


# The newest version of each variant of the template `:template` (none when it is NULL), as a JSON array
# of `[channel, locale, version, content_hash]`: a column for a statement a send runs anyway.
_NEWEST = (
    select(Template.channel, Template.locale, Template.version, Template.content_hash)
    .where(Template.key == bindparam("template"))
    .distinct(Template.channel, Template.locale)
    .order_by(Template.channel, Template.locale, Template.version.desc())
    .subquery()
)
NEWEST_VERSIONS = (
    select(
        func.jsonb_agg(
            func.jsonb_build_array(
                _NEWEST.c.channel, _NEWEST.c.locale, _NEWEST.c.version, _NEWEST.c.content_hash
            )
        )
    )
    .scalar_subquery()
    .label("template_versions")
)
_DEFINITIONS = select(
    Template.key,
    Template.channel,
    Template.locale,
    Template.version,
    Template.content_hash,
    Template.definition,
).where(
    tuple_(Template.key, Template.channel, Template.locale, Template.version).in_(
        bindparam("variants", expanding=True)
    )
)
_CACHED = 1024
# Parsed definitions by key, channel, locale, version and content hash: a stored version is never
# changed, and the hash guards against a database rebuilt with other content under the same numbers.
_cache: OrderedDict[tuple[str, str, str, int, str], TemplateDefinition] = OrderedDict()


async def book_of_versions(
    session: AsyncSession, key: str | None, versions: Sequence[Any] | None
) -> TemplateBook:
    """The book of template `key` from the newest versions a statement read with `NEWEST_VERSIONS`;
    definitions not cached yet are read (one query) and cached."""
    if key is None or not versions:
        return TemplateBook({})
    wanted = [(key, channel, locale, version, digest) for channel, locale, version, digest in versions]
    found = {entry: _cache[entry] for entry in wanted if entry in _cache}
    missing = [entry[:4] for entry in wanted if entry not in found]
    if missing:
        rows = await (await session.connection()).execute(_DEFINITIONS, {"variants": missing})
        for name, channel, locale, version, digest, document in rows:
            found[(name, channel, locale, version, digest)] = TemplateDefinition.model_validate(document)
    variants: dict[tuple[str, str, str], StoredTemplate] = {}
    for entry in wanted:
        _cache[entry] = found[entry]
        _cache.move_to_end(entry)
        variants[entry[:3]] = StoredTemplate(found[entry], entry[3])
    while len(_cache) > _CACHED:
        _cache.popitem(last=False)
    return TemplateBook(variants)
