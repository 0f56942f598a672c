"""Validation of journey and template definitions before they are published.

Structure is checked by the pydantic models; this module adds what needs more than the document
itself (FHIRPath syntax, Jinja2 syntax, templates that exist, FHIR resource types) and reports every
problem with its location, the step id and the field, so an author can fix it at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.fhir.fhirpath import FhirPathError, check_syntax
from aftercare.fhir.resources import is_resource_type
from aftercare.store.templates import template_channels
from aftercare.templating import TemplateRenderError, check_template_syntax
from models.event_tables import Event
from models.journey import STEP_KINDS, InviteStep, JourneyDefinition, SendSpec, SendStep
from models.template import TemplateDefinition

_UNION_TAGS = frozenset(STEP_KINDS) | {"when", "otherwise"}


@dataclass(frozen=True)
class DefinitionProblem:
    """One problem: where (`loc`), what (`msg`, `type`), and for steps, which step and field."""

    loc: tuple[str | int, ...]
    msg: str
    type: str
    step: str | None = None
    field: str | None = None

    def as_detail(self) -> dict[str, Any]:
        """FastAPI's validation error shape, with `step` and `field` added."""
        detail: dict[str, Any] = {"loc": ["body", *self.loc], "msg": self.msg, "type": self.type}
        if self.step is not None:
            detail["step"] = self.step
            detail["field"] = self.field
        return detail


class DefinitionInvalidError(ValueError):
    """A definition with problems."""

    def __init__(self, problems: list[DefinitionProblem]) -> None:
        super().__init__("; ".join(problem.msg for problem in problems))
        self.problems = problems


def _clean_loc(loc: tuple[Any, ...]) -> tuple[str | int, ...]:
    """Drop the union tags pydantic puts after list indexes (`steps.0.send.send` → `steps.0.send`)."""
    cleaned: list[str | int] = []
    for position, part in enumerate(loc):
        if position > 0 and isinstance(loc[position - 1], int) and part in _UNION_TAGS:
            continue
        cleaned.append(part)
    return tuple(cleaned)


def _locate(document: Any, loc: tuple[str | int, ...], msg: str, kind: str) -> DefinitionProblem:
    if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
        steps = document.get("steps") if isinstance(document, dict) else None
        step_id = None
        if isinstance(steps, list) and 0 <= loc[1] < len(steps) and isinstance(steps[loc[1]], dict):
            raw_id = steps[loc[1]].get("id")
            step_id = str(raw_id) if raw_id is not None else None
        field = ".".join(str(part) for part in loc[2:]) or None
        return DefinitionProblem(loc, msg, kind, step=step_id or f"steps[{loc[1]}]", field=field)
    return DefinitionProblem(loc, msg, kind)


def _problems_from(error: ValidationError, document: Any) -> list[DefinitionProblem]:
    problems = []
    for item in error.errors(include_url=False):
        loc = _clean_loc(tuple(item["loc"]))
        context = item.get("ctx") or {}
        if item["type"] == "journey_graph" and "loc" in context:
            loc = tuple(context["loc"])
        message = item["msg"].removeprefix("Value error, ")
        problems.append(_locate(document, loc, message, item["type"]))
    return problems


def parse_journey(document: Any) -> JourneyDefinition:
    """The journey, or `DefinitionInvalidError` with every structural problem."""
    try:
        return JourneyDefinition.model_validate(document)
    except ValidationError as error:
        raise DefinitionInvalidError(_problems_from(error, document)) from error


def parse_template(document: Any) -> TemplateDefinition:
    """The template, or `DefinitionInvalidError` with every problem, Jinja2 syntax included."""
    try:
        template = TemplateDefinition.model_validate(document)
    except ValidationError as error:
        raise DefinitionInvalidError(_problems_from(error, document)) from error
    problems = []
    for field in ("subject", "body", "html"):
        source = getattr(template, field)
        if source:
            try:
                check_template_syntax(source)
            except TemplateRenderError as error:
                problems.append(DefinitionProblem((field,), f"template syntax: {error}", "template_syntax"))
    if problems:
        raise DefinitionInvalidError(problems)
    return template


async def check_journey(session: AsyncSession, journey: JourneyDefinition) -> None:
    """Raise `DefinitionInvalidError` for problems the document alone cannot show."""
    document = journey.model_dump(mode="json", exclude_none=True)
    problems: list[DefinitionProblem] = []
    if journey.code:
        raise DefinitionInvalidError(
            [
                DefinitionProblem(
                    ("code",),
                    "code journeys are registered by the worker from Python, not published",
                    "code_journey",
                )
            ]
        )
    for loc, expression in journey.expressions():
        try:
            check_syntax(expression)
        except FhirPathError as error:
            problems.append(_locate(document, loc, f"FHIRPath syntax: {error}", "fhirpath_syntax"))
    if journey.entry and journey.entry.fhir and not is_resource_type(journey.entry.fhir.resource):
        problems.append(
            DefinitionProblem(
                ("entry", "fhir", "resource"),
                f"{journey.entry.fhir.resource!r} is not a FHIR resource type",
                "fhir_type",
            )
        )
    sends: list[tuple[int, str, SendSpec]] = [
        (position, step.kind, step.send if isinstance(step, SendStep) else step.invite)
        for position, step in enumerate(journey.steps)
        if isinstance(step, SendStep | InviteStep)
    ]
    channels_of = await template_channels(session, {spec.template for _, _, spec in sends if spec.template})
    for position, kind, spec in sends:
        problem = template_problem(spec, channels_of)
        if problem is not None:
            problems.append(_locate(document, ("steps", position, kind, *problem[0]), problem[1], problem[2]))
        for field in ("subject", "body"):
            source = getattr(spec, field)
            if source:
                try:
                    check_template_syntax(source)
                except TemplateRenderError as error:
                    problems.append(
                        _locate(
                            document,
                            ("steps", position, kind, field),
                            f"template syntax: {error}",
                            "template_syntax",
                        )
                    )
    problems += await _event_problems(session, document, journey)
    if problems:
        raise DefinitionInvalidError(problems)


async def _event_problems(
    session: AsyncSession, document: Any, journey: JourneyDefinition
) -> list[DefinitionProblem]:
    """An `invite` step names an event that exists (it must be published when the step runs)."""
    invites = [
        (position, step) for position, step in enumerate(journey.steps) if isinstance(step, InviteStep)
    ]
    if not invites:
        return []
    known = set(
        await session.scalars(select(Event.key).where(Event.key.in_({s.invite.event for _, s in invites})))
    )
    return [
        _locate(
            document,
            ("steps", position, "invite", "event"),
            f"no event {step.invite.event!r}",
            "unknown_event",
        )
        for position, step in invites
        if step.invite.event not in known
    ]


def template_problem(
    send: SendSpec, channels_of: dict[str, set[str]]
) -> tuple[tuple[str, ...], str, str] | None:
    """Where a send's template reference is wrong, why, and the error code; None when it is sound."""
    if send.template is None:
        return None
    channels = channels_of.get(send.template)
    if channels is None:
        return (
            ("template",),
            f"template {send.template!r} does not exist; publish it first",
            "unknown_template",
        )
    if send.channel not in (None, "best") and send.channel not in channels:
        return (
            ("channel",),
            f"template {send.template!r} has no {send.channel} variant "
            f"(it has {', '.join(sorted(channels))})",
            "unknown_template_channel",
        )
    if send.fallback is not None and not channels.intersection(send.fallback):
        return (
            ("fallback",),
            f"template {send.template!r} has no variant on any fallback channel "
            f"(it has {', '.join(sorted(channels))})",
            "unknown_template_channel",
        )
    return None
