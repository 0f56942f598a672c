"""The journey editor: the YAML of a journey (the latest version with its number raised, or a starter),
published as a new version with the API's own validation; each error is shown at the line it points to,
and nothing is published while there is one."""

from __future__ import annotations

from dataclasses import dataclass

import yaml
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from aftercare.definitions import DefinitionInvalidError, DefinitionProblem, check_journey, parse_journey
from aftercare.store.journeys import JourneyVersionConflict, get_journey, publish_journey
from api.bodies import parse_yaml
from api.deps import get_services
from console.auth import ConsoleUser
from console.forms import read_form
from console.rendering import render
from console.yaml_lines import line_of, yaml_error_line

router = APIRouter(prefix="/console/journeys", include_in_schema=False)

MAX_YAML = 200_000
STARTER = """key: {key}
version: 1
name: New journey
steps:
  - id: welcome
    send: {{channel: sms, body: "Hi {{{{ patient.given }}}}, welcome home from the hospital."}}
  - id: done
    end: {{outcome: completed}}
"""


@dataclass(frozen=True)
class EditorError:
    """A problem to show: its line (None: the whole text), where in the definition, what."""

    line: int | None
    where: str
    message: str


def _located(text: str, problems: list[DefinitionProblem]) -> list[EditorError]:
    return [
        EditorError(line_of(text, problem.loc), ".".join(str(part) for part in problem.loc), problem.msg)
        for problem in problems
    ]


async def validate_and_publish(request: Request, text: str) -> tuple[str | None, list[EditorError]]:
    """Publish the YAML as a journey version; its key, or the errors with their lines."""
    if len(text) > MAX_YAML:
        return None, [EditorError(None, "", f"the definition is longer than {MAX_YAML} characters")]
    try:
        yaml.compose(text, Loader=yaml.SafeLoader)
        document = parse_yaml(text.encode())
    except yaml.YAMLError as error:
        return None, [EditorError(yaml_error_line(error), "", f"YAML: {error}")]
    except HTTPException as error:
        return None, [
            EditorError(
                None, "", str(error.detail[0]["msg"] if isinstance(error.detail, list) else error.detail)
            )
        ]
    try:
        journey = parse_journey(document)
        async with get_services(request).sessions() as session, session.begin():
            await check_journey(session, journey)
            await publish_journey(session, journey)
    except DefinitionInvalidError as error:
        return None, _located(text, error.problems)
    except JourneyVersionConflict as error:
        return None, [EditorError(line_of(text, ("version",)), "version", str(error))]
    return journey.key, []


@router.get("/{key}/editor", response_class=HTMLResponse)
async def editor(request: Request, key: str, user: ConsoleUser) -> HTMLResponse:
    """The editor, on the next version of the journey (or a starter for a new key)."""
    async with get_services(request).sessions() as session:
        journey = await get_journey(session, key)
    if journey is None:
        text = STARTER.format(key=key)
    else:
        document = journey.model_dump(mode="json", exclude_none=True, by_alias=True)
        document["version"] = journey.version + 1
        text = yaml.safe_dump({"key": journey.key, **document}, sort_keys=False, allow_unicode=True)
    return render(request, "journey_editor.html", {"key": key, "text": text, "errors": []})


@router.post("/{key}/editor", response_class=HTMLResponse)
async def publish(request: Request, key: str, user: ConsoleUser) -> Response:
    """Publish the edited YAML as a new version, or show the editor again with the errors."""
    text = (await read_form(request)).get("definition", "").replace("\r\n", "\n")
    published, errors = await validate_and_publish(request, text)
    if published is None:
        context = {"key": key, "text": text, "errors": errors}
        return render(request, "journey_editor.html", context, status_code=422)
    return RedirectResponse(f"/console/journeys/{published}?published=1", status_code=303)
