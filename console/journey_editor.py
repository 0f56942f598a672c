"""The journey editor: the YAML of a journey (the latest version with its number raised, or a starter),
published as a new version with the API's own validation; each error is shown at the line it points to,
and nothing is published while there is one."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from aftercare.definitions import DefinitionInvalidError, check_journey, parse_journey
from aftercare.security.principal import Principal
from aftercare.store.journeys import JourneyVersionConflict, get_journey, publish_journey
from api.definition_owner import owned
from api.deps import get_services
from console.auth import ConsoleUser
from console.editing import EditorError, EditorRefused, editor_page, located, next_version_yaml, read_yaml
from console.forms import read_form
from console.rendering import render
from console.yaml_lines import line_of
from models.tables import Journey

router = APIRouter(prefix="/console/journeys", include_in_schema=False)

STARTER = """key: {key}
version: 1
name: New journey
steps:
  - id: welcome
    send: {{channel: sms, body: "Hi {{{{ patient.given }}}}, welcome home from the hospital."}}
  - id: done
    end: {{outcome: completed}}
"""


async def validate_and_publish(
    request: Request, text: str, user: Principal
) -> tuple[str | None, list[EditorError]]:
    """Publish the YAML as a journey version; its key, or the errors with their lines."""
    try:
        document = read_yaml(text)
    except EditorRefused as error:
        return None, error.errors
    try:
        journey = parse_journey(document)
        async with get_services(request).sessions() as session, session.begin():
            journey = await owned(session, user, Journey, journey, what="journey")
            await check_journey(session, journey)
            await publish_journey(session, journey)
    except DefinitionInvalidError as error:
        return None, located(text, error.problems)
    except HTTPException as refused:  # the caller's facilities: whose journey it would be
        return None, [EditorError(line_of(text, ("facility",)), "facility", str(refused.detail))]
    except JourneyVersionConflict as error:
        return None, [EditorError(line_of(text, ("version",)), "version", str(error))]
    return journey.key, []


def _context(key: str, text: str, errors: list[EditorError]) -> dict[str, object]:
    return editor_page(
        f"/console/journeys/{key}/editor",
        text,
        errors,
        title="Edit journey",
        label="Definition (YAML)",
        submit="Publish as a new version",
    )


@router.get("/{key}/editor", response_class=HTMLResponse)
async def editor(request: Request, key: str, user: ConsoleUser) -> HTMLResponse:
    """The editor, on the next version of the journey (or a starter for a new key)."""
    async with get_services(request).sessions() as session:
        journey = await get_journey(session, key)
    text = next_version_yaml(journey, STARTER.format(key=key))
    return render(request, "definition_editor.html", _context(key, text, []))


@router.post("/{key}/editor", response_class=HTMLResponse)
async def publish(request: Request, key: str, user: ConsoleUser) -> Response:
    """Publish the edited YAML as a new version, or show the editor again with the errors."""
    text = (await read_form(request)).get("definition", "").replace("\r\n", "\n")
    published, errors = await validate_and_publish(request, text, user)
    if published is None:
        return render(request, "definition_editor.html", _context(key, text, errors), status_code=422)
    return RedirectResponse(f"/console/journeys/{published}?published=1", status_code=303)
