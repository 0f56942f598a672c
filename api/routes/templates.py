"""Message templates (contract §4)."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from aftercare.definitions import parse_template
from aftercare.store.templates import publish_template
from api.bodies import definition_body, read_definition
from api.deps import SessionDep
from models.api import TemplateCreated

router = APIRouter(prefix="/v1/templates", tags=["templates"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TemplateCreated,
    openapi_extra=definition_body("TemplateDefinition"),
)
async def create_template(request: Request, session: SessionDep) -> TemplateCreated:
    """Publish a template variant (JSON or YAML); new content becomes a new version."""
    template = parse_template(await read_definition(request))
    async with session.begin():
        version, created = await publish_template(session, template)
    return TemplateCreated(
        key=template.key, channel=template.channel, locale=template.locale, version=version, created=created
    )
