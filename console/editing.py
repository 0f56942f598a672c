"""The console's definition editors (journeys, template variants, segments) in one shape: a page with
the YAML, published with the API's own validation in one transaction; the posted YAML read safely
(without aliases, as the API reads it) and each problem shown at its line; nothing is published while
there is one. Each kind declares a `DefinitionEditor`: what it opens on, and how it publishes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.definitions import DefinitionInvalidError, DefinitionProblem
from aftercare.security.principal import Principal
from api.bodies import parse_yaml
from api.deps import get_services
from console.auth import ConsoleUser
from console.forms import read_form
from console.rendering import render
from console.yaml_lines import line_of, yaml_error_line

MAX_YAML = 200_000


@dataclass(frozen=True)
class EditorError:
    """A problem to show: its line (None: the whole text), where in the definition, what."""

    line: int | None
    where: str
    message: str


class EditorRefused(Exception):
    """The text is not a document at all: the errors to show."""

    def __init__(self, errors: list[EditorError]) -> None:
        super().__init__("; ".join(error.message for error in errors))
        self.errors = errors


def located(text: str, problems: list[DefinitionProblem]) -> list[EditorError]:
    """The validator's problems, each at the line of the YAML it points to."""
    return [
        EditorError(line_of(text, problem.loc), ".".join(str(part) for part in problem.loc), problem.msg)
        for problem in problems
    ]


def next_version_yaml(definition: BaseModel | None) -> str | None:
    """The YAML a versioned definition's editor opens on: the definition with its version raised by
    one (None when there is none yet)."""
    if definition is None:
        return None
    document = definition.model_dump(mode="json", exclude_none=True, by_alias=True)
    document["version"] = int(document.get("version", 0)) + 1
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def read_yaml(text: str) -> Any:
    """The YAML document, or `EditorRefused` with the syntax error at its line."""
    if len(text) > MAX_YAML:
        raise EditorRefused([EditorError(None, "", f"the definition is longer than {MAX_YAML} characters")])
    try:
        yaml.compose(text, Loader=yaml.SafeLoader)
        return parse_yaml(text.encode())
    except yaml.YAMLError as error:
        raise EditorRefused([EditorError(yaml_error_line(error), "", f"YAML: {error}")]) from error
    except HTTPException as error:  # aliases, too deep, not UTF-8
        detail = error.detail[0]["msg"] if isinstance(error.detail, list) else error.detail
        raise EditorRefused([EditorError(None, "", str(detail))]) from error


Opening = Callable[[AsyncSession, str, Mapping[str, str]], Awaitable[str | None]]
Publishing = Callable[[AsyncSession, Any, Principal], Awaitable[str]]


@dataclass(frozen=True)
class DefinitionEditor:
    """One kind of definition's editor at `{prefix}/{key}/editor`: `opening` gives the YAML it opens on
    (None: the `starter`, formatted with the key), `publishing` checks and publishes a parsed YAML
    document in one transaction and answers where to go next; it raises `DefinitionInvalidError`, or
    one of `conflicts` (a version already taken, shown at `version`)."""

    prefix: str
    title: str
    label: str
    submit: str
    starter: str
    opening: Opening
    publishing: Publishing
    conflicts: tuple[type[Exception], ...] = ()
    extra: Mapping[str, object] = field(default_factory=dict)

    def context(self, key: str, text: str, errors: list[EditorError]) -> dict[str, object]:
        """The context of `definition_editor.html`."""
        return {
            "title": self.title,
            "action": f"{self.prefix}/{key}/editor",
            "text": text,
            "errors": errors,
            "label": self.label,
            "submit": self.submit,
            **self.extra,
        }

    async def publish(
        self, request: Request, text: str, user: Principal
    ) -> tuple[str | None, list[EditorError]]:
        """Publish the YAML as `user`; where to go next, or the errors at their lines (nothing published).
        A definition outside the user's facilities is refused at its `facility`."""
        try:
            document = read_yaml(text)
            async with get_services(request).sessions() as session, session.begin():
                return await self.publishing(session, document, user), []
        except EditorRefused as error:
            return None, error.errors
        except DefinitionInvalidError as error:
            return None, located(text, error.problems)
        except HTTPException as refused:  # the caller's facilities: whose definition it would be
            return None, [EditorError(line_of(text, ("facility",)), "facility", str(refused.detail))]
        except self.conflicts as error:
            return None, [EditorError(line_of(text, ("version",)), "version", str(error))]


def add_editor(router: APIRouter, editor: DefinitionEditor) -> None:
    """The editor's two routes on `router` (whose prefix is the editor's): the page, and its post."""

    @router.get("/{key}/editor", response_class=HTMLResponse)
    async def open_editor(request: Request, key: str, user: ConsoleUser) -> HTMLResponse:
        async with get_services(request).sessions() as session:
            text = await editor.opening(session, key, request.query_params)
        context = editor.context(key, text or editor.starter.format(key=key), [])
        return render(request, "definition_editor.html", context)

    @router.post("/{key}/editor", response_class=HTMLResponse)
    async def publish(request: Request, key: str, user: ConsoleUser) -> Response:
        text = (await read_form(request)).get("definition", "").replace("\r\n", "\n")
        published, errors = await editor.publish(request, text, user)
        if published is None:
            context = editor.context(key, text, errors)
            return render(request, "definition_editor.html", context, status_code=422)
        return RedirectResponse(published, status_code=303)

    open_editor.__doc__ = f"The {editor.title.lower()} page, on the definition's next version or a starter."
    publish.__doc__ = "Publish the edited YAML, or show the editor again with the errors at their lines."
