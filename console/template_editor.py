"""The template editor: one variant's YAML (the newest version of the variant chosen by `?channel=` and
`?locale=`, else the first; a starter for a new key), published with the API's own validation, Jinja2
syntax included (`console/editing.py`); new content is a new version."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml
from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.definitions import parse_template
from aftercare.security.principal import Principal
from aftercare.store.templates import latest_variants, publish_template
from api.definition_owner import owned
from console.editing import DefinitionEditor, add_editor
from models.tables import Template

router = APIRouter(prefix="/console/templates", include_in_schema=False)

STARTER = """key: {key}
channel: sms
locale: en
body: "Hi {{{{ patient.given }}}}, this is your care team. Reply STOP to opt out."
"""


async def _opening(session: AsyncSession, key: str, query: Mapping[str, str]) -> str | None:
    channel, locale = query.get("channel", ""), query.get("locale", "")
    for variant in await latest_variants(session, key=key):
        definition = variant.definition
        if (not channel or definition.channel == channel) and (not locale or definition.locale == locale):
            document = definition.model_dump(mode="json", exclude_none=True)
            return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    return None


async def _publishing(session: AsyncSession, document: Any, user: Principal) -> str:
    template = parse_template(document)
    template = await owned(session, user, Template, template, what="template")
    version, _ = await publish_template(session, template)
    return f"/console/templates/{template.key}?published={version}"


EDITOR = DefinitionEditor(
    prefix=router.prefix,
    title="Edit template",
    label="Template variant (YAML)",
    submit="Publish",
    starter=STARTER,
    opening=_opening,
    publishing=_publishing,
)
add_editor(router, EDITOR)
