"""Message templates (contract §4)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status

from aftercare.definitions import parse_template
from aftercare.store.templates import PublishedVariant, latest_variants, publish_template
from api.bodies import definition_body, read_definition
from api.definition_owner import owned
from api.deps import SessionDep
from api.security import CurrentPrincipal
from models.api import TemplateCreated
from models.journey import Channel
from models.lookup_api import TemplateList, TemplateVariantView, TemplateView
from models.tables import Template
from models.template import Locale, normalise_locale

router = APIRouter(prefix="/v1/templates", tags=["templates"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TemplateCreated,
    openapi_extra=definition_body("TemplateDefinition"),
)
async def create_template(
    request: Request, session: SessionDep, principal: CurrentPrincipal
) -> TemplateCreated:
    """Publish a template variant (JSON or YAML) for the group or a `facility`; new content becomes a
    new version."""
    template = parse_template(await read_definition(request))
    async with session.begin():
        template = await owned(session, principal, Template, template, what="template")
        version, created = await publish_template(session, template)
    return TemplateCreated(
        key=template.key, channel=template.channel, locale=template.locale, version=version, created=created
    )


def _variant_view(variant: PublishedVariant) -> TemplateVariantView:
    return TemplateVariantView(
        **variant.definition.model_dump(), version=variant.version, created_at=variant.created_at
    )


@router.get("", response_model=TemplateList, response_model_exclude_none=True)
async def list_templates(
    session: SessionDep,
    key: Annotated[str | None, Query(max_length=64)] = None,
    channel: Channel | None = None,
    locale: Locale | None = None,
) -> TemplateList:
    """The newest version of every template variant, by key, channel and locale (each filter narrows)."""
    variants = await latest_variants(
        session, key=key, channel=channel, locale=normalise_locale(locale) if locale else None
    )
    return TemplateList(items=[_variant_view(variant) for variant in variants])


@router.get("/{key}", response_model=TemplateView, response_model_exclude_none=True)
async def read_template(key: str, session: SessionDep) -> TemplateView:
    """A template's variants per channel and locale, each in its newest version."""
    variants = [_variant_view(variant) for variant in await latest_variants(session, key=key)]
    if not variants:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no template {key!r}")
    return TemplateView(
        key=key,
        channels=sorted({variant.channel for variant in variants}),
        locales=sorted({variant.locale for variant in variants}),
        variants=variants,
    )
