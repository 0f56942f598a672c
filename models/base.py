"""Base classes shared by every pydantic contract."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class TemporalModel(BaseModel):
    """A workflow or activity input/result: frozen, and tolerant of fields a newer worker added."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class DefinitionModel(BaseModel):
    """Part of a user-authored definition: frozen, and strict about unknown fields so typos are caught."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)
