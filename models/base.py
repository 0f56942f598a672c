"""Base classes shared by every pydantic contract."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class TemporalModel(BaseModel):
    """A workflow or activity input/result: frozen, and tolerant of fields a newer worker added."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class DefinitionModel(BaseModel):
    """Part of a user-authored definition: frozen, and strict about unknown fields so typos are caught."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


# The facility a definition (template, journey, segment, campaign) belongs to: those of its subtree use
# it, and so do facilities below; none means the whole group.
OwnerFacility = Annotated[
    str | None,
    Field(
        pattern=r"^[a-z0-9][a-z0-9-]{0,63}$",
        description="the facility it belongs to (its subtree uses it); none: the whole group",
    ),
]
