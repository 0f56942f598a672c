"""Parsing a segment definition with every problem located by its path (`criteria.all.1.age`), and
checking the segments it refers to."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.definitions import DefinitionInvalidError, DefinitionProblem
from aftercare.segments.compiler import CompileContext, SegmentReferenceError, segment_condition
from aftercare.store.segments import referenced_definitions
from models.segment import CRITERION_KINDS, SegmentDefinition

_CODE_TAGS = frozenset({"coding", "codings", "value_set"})


def clean_loc(loc: tuple[Any, ...]) -> tuple[str | int, ...]:
    """Drop the union tags pydantic adds (`all.all.0.age.age` → `all.0.age`, `code.coding.code` →
    `code.code`)."""
    cleaned: list[str | int] = []
    for position, part in enumerate(loc):
        following = loc[position + 1] if position + 1 < len(loc) else None
        if part in CRITERION_KINDS and following == part:
            continue
        if part in ("coding", "codings") and position > 0 and loc[position - 1] == "code":
            continue
        if isinstance(part, str) and part.startswith("function-after["):
            continue
        cleaned.append(part)
    return tuple(cleaned)


def parse_segment(document: Any) -> SegmentDefinition:
    """The segment, or `DefinitionInvalidError` naming each problem's path."""
    try:
        return SegmentDefinition.model_validate(document)
    except ValidationError as error:
        problems = [
            DefinitionProblem(
                clean_loc(tuple(item["loc"])), item["msg"].removeprefix("Value error, "), item["type"]
            )
            for item in error.errors(include_url=False)
        ]
        raise DefinitionInvalidError(problems) from error


async def check_segment(session: AsyncSession, definition: SegmentDefinition) -> None:
    """Refuse a segment whose `segment` criteria name missing segments or make a cycle."""
    context = CompileContext(
        as_of=datetime.now(UTC), segments=await referenced_definitions(session, definition)
    )
    try:
        segment_condition(definition, context)
    except SegmentReferenceError as error:
        raise DefinitionInvalidError(
            [DefinitionProblem(("criteria",), str(error), "segment_reference")]
        ) from error
