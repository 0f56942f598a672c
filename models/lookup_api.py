"""API views for finding things: the patient search and the published templates."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from models.api import PatientSummary
from models.template import TemplateDefinition


class PatientList(BaseModel):
    """One page of a patient search, in name order; `next_cursor` fetches the next (None on the last)."""

    items: list[PatientSummary]
    next_cursor: str | None = None


class TemplateVariantView(TemplateDefinition):
    """A template variant as published (its newest version), with that version and when it was stored."""

    version: int
    created_at: datetime


class TemplateList(BaseModel):
    """Template variants, by key, channel and locale."""

    items: list[TemplateVariantView]


class TemplateView(BaseModel):
    """One template: its variants per channel and locale (the newest version of each)."""

    key: str
    channels: list[str]
    locales: list[str]
    variants: list[TemplateVariantView]
