"""FHIR sources: the servers Aftercare reads from. The "default" source comes from the `FHIR_*`
settings; more are registered through the API (`fhir_sources`), with secrets named, never stored."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.fhir_client.client import FhirClient
from aftercare.fhir_client.config import client_for_settings, client_for_source
from aftercare.settings import Settings
from models.tables import FhirSource

DEFAULT_SOURCE = "default"


class SourceMissingError(LookupError):
    """No FHIR source by that key (or no `FHIR_BASE_URL` for the default one)."""


@dataclass(frozen=True)
class SourcePlan:
    """What to keep in step with for one source: its resource types and how often to poll."""

    key: str
    base_url: str
    watched_types: tuple[str, ...]
    poll_seconds: int


async def open_client(session: AsyncSession, settings: Settings, key: str | None = None) -> FhirClient:
    """A client for the source (not yet entered: use `async with`)."""
    key = key or DEFAULT_SOURCE
    row = await session.get(FhirSource, key)
    if row is not None:
        return client_for_source(row)
    if key == DEFAULT_SOURCE:
        client = client_for_settings(settings)
        if client is not None:
            return client
        raise SourceMissingError("no FHIR server is configured: set FHIR_BASE_URL")
    raise SourceMissingError(f"no FHIR source {key!r}")


async def source_plans(session: AsyncSession, settings: Settings) -> list[SourcePlan]:
    """Every source with what it watches: the registered ones, and the default one from settings."""
    rows: Sequence[FhirSource] = (await session.scalars(select(FhirSource).order_by(FhirSource.key))).all()
    plans = [
        SourcePlan(row.key, row.base_url, tuple(row.watched_types), row.poll_seconds or 0) for row in rows
    ]
    if settings.fhir_base_url and all(plan.key != DEFAULT_SOURCE for plan in plans):
        plans.insert(
            0,
            SourcePlan(
                DEFAULT_SOURCE,
                settings.fhir_base_url,
                tuple(settings.fhir_watched_types),
                settings.fhir_poll_seconds,
            ),
        )
    return plans


async def source_plan(session: AsyncSession, settings: Settings, key: str) -> SourcePlan:
    """One source's plan; raises `SourceMissingError`."""
    for plan in await source_plans(session, settings):
        if plan.key == key:
            return plan
    if key == DEFAULT_SOURCE:
        raise SourceMissingError(
            f"no FHIR source {key!r}: set FHIR_BASE_URL, or register it with POST /v1/fhir/sources"
        )
    raise SourceMissingError(f"no FHIR source {key!r}")
