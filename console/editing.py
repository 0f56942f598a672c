"""What the console's definition editors share: reading the posted YAML (safe, without aliases, as the
API reads it) and locating each problem at its line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from fastapi import HTTPException
from pydantic import BaseModel

from aftercare.definitions import DefinitionProblem
from api.bodies import parse_yaml
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


def next_version_yaml(definition: BaseModel | None, starter: str) -> str:
    """The YAML a definition's editor opens on: the definition with its version raised by one, or the
    starter when there is none yet."""
    if definition is None:
        return starter
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


def editor_page(
    action: str, text: str, errors: list[EditorError], *, title: str, label: str, submit: str
) -> dict[str, object]:
    """The context of `definition_editor.html`."""
    return {
        "title": title,
        "action": action,
        "text": text,
        "errors": errors,
        "label": label,
        "submit": submit,
    }
