"""Parsing a campaign definition with every problem located, and checking what it refers to: the
segment, the templates (with a variant on the campaign's channel), and that a template's purpose does
not contradict the campaign's (consent is per purpose)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.definitions import DefinitionInvalidError, DefinitionProblem, template_problem
from aftercare.store.segments import get_segment
from aftercare.store.templates import load_template_book
from models.campaign import CampaignDefinition
from models.event_tables import Event


def parse_campaign(document: Any) -> CampaignDefinition:
    """The campaign, or `DefinitionInvalidError` naming each problem's path."""
    try:
        return CampaignDefinition.model_validate(document)
    except ValidationError as error:
        problems = [
            DefinitionProblem(
                tuple(part for part in item["loc"] if not str(part).startswith("function-")),
                item["msg"].removeprefix("Value error, "),
                item["type"],
            )
            for item in error.errors(include_url=False)
        ]
        raise DefinitionInvalidError(problems) from error


async def check_campaign(session: AsyncSession, campaign: CampaignDefinition) -> None:
    """Refuse a campaign whose segment, templates or invited event do not exist or do not fit it."""
    problems: list[DefinitionProblem] = []
    if await get_segment(session, campaign.segment) is None:
        problems.append(
            DefinitionProblem(
                ("segment",),
                f"segment {campaign.segment!r} does not exist; publish it first",
                "unknown_segment",
            )
        )
    if campaign.invite is not None and await session.get(Event, campaign.invite.event) is None:
        problems.append(
            DefinitionProblem(("invite", "event"), f"no event {campaign.invite.event!r}", "unknown_event")
        )
    book = await load_template_book(session, campaign.templates())
    channels_of = {key: book.channels(key) for key in campaign.templates() if book.channels(key)}
    for position, variant in enumerate(campaign.variant_list()):
        where: tuple[str | int, ...] = ("template",) if campaign.variants is None else ("variants", position)
        problem = template_problem(campaign.send_spec(variant), channels_of)
        if problem is not None:
            field, message, kind = problem
            location = where if field == ("template",) and campaign.variants is None else (*where, *field)
            problems.append(DefinitionProblem(location, message, kind))
            continue
        purposes = {
            stored.definition.purpose
            for (key, _, _), stored in book.variants.items()
            if key == variant.template and stored.definition.purpose is not None
        }
        if campaign.purpose is not None and purposes - {campaign.purpose}:
            problems.append(
                DefinitionProblem(
                    ("purpose",),
                    f"template {variant.template!r} is for {', '.join(sorted(purposes))}, "
                    f"but the campaign says {campaign.purpose}",
                    "purpose_conflict",
                )
            )
    if problems:
        raise DefinitionInvalidError(problems)
