"""The template editor: one variant's YAML (the newest version of the variant chosen by `?channel=` and
`?locale=`, else the first; a starter for a new key), published with the API's own validation (Jinja2
syntax included); each error is shown at its line and nothing is published while there is one."""

from __future__ import annotations

import yaml
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from aftercare.definitions import DefinitionInvalidError, parse_template
from aftercare.store.templates import latest_variants, publish_template
from api.definition_owner import owned
from api.deps import get_services
from console.auth import ConsoleUser
from console.editing import EditorError, EditorRefused, editor_page, located, read_yaml
from console.forms import read_form
from console.rendering import render
from console.yaml_lines import line_of
from models.tables import Template

router = APIRouter(prefix="/console/templates", include_in_schema=False)

STARTER = """key: {key}
channel: sms
locale: en
body: "Hi {{{{ patient.given }}}}, this is your care team. Reply STOP to opt out."
"""


def _context(key: str, text: str, errors: list[EditorError]) -> dict[str, object]:
    return editor_page(
        f"/console/templates/{key}/editor",
        text,
        errors,
        title="Edit template",
        label="Template variant (YAML)",
        submit="Publish",
    )


@router.get("/{key}/editor", response_class=HTMLResponse)
async def editor(
    request: Request, key: str, user: ConsoleUser, channel: str = "", locale: str = ""
) -> HTMLResponse:
    """The editor on a variant of the template (or a starter)."""
    async with get_services(request).sessions() as session:
        variants = await latest_variants(session, key=key)
    chosen = [
        variant
        for variant in variants
        if (not channel or variant.definition.channel == channel)
        and (not locale or variant.definition.locale == locale)
    ]
    if chosen:
        document = chosen[0].definition.model_dump(mode="json", exclude_none=True)
        text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    else:
        text = STARTER.format(key=key)
    return render(request, "definition_editor.html", _context(key, text, []))


@router.post("/{key}/editor", response_class=HTMLResponse)
async def publish(request: Request, key: str, user: ConsoleUser) -> Response:
    """Publish the variant (new content is a new version), or show the editor again with the errors."""
    text = (await read_form(request)).get("definition", "").replace("\r\n", "\n")
    try:
        template = parse_template(read_yaml(text))
    except EditorRefused as error:
        return render(request, "definition_editor.html", _context(key, text, error.errors), status_code=422)
    except DefinitionInvalidError as error:
        errors = located(text, error.problems)
        return render(request, "definition_editor.html", _context(key, text, errors), status_code=422)
    try:
        async with get_services(request).sessions() as session, session.begin():
            template = await owned(session, user, Template, template, what="template")
            version, _ = await publish_template(session, template)
    except HTTPException as refused:  # the caller's facilities: whose template it would be
        errors = [EditorError(line_of(text, ("facility",)), "facility", str(refused.detail))]
        return render(request, "definition_editor.html", _context(key, text, errors), status_code=422)
    return RedirectResponse(f"/console/templates/{template.key}?published={version}", status_code=303)
