"""Resources arriving from a FHIR source (a poll, a notification, a read): validated, stored, and
handed to the trigger path. An invalid resource is parked with its reason; the rest go ahead."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from aftercare.enrollment.fhir_ingest import ingest_fhir_resources
from aftercare.enrollment.starter import EnrollmentStarter
from aftercare.fhir.resources import validation_problems
from aftercare.metrics import FHIR_RESOURCES
from aftercare.store.triggers import park


@dataclass(frozen=True)
class Received:
    """What a batch from a source did: new versions and unchanged ones by type, journeys started, and
    resources parked as invalid."""

    stored_by_type: dict[str, int]
    unchanged_by_type: dict[str, int]
    triggered: int
    parked: int

    @property
    def stored(self) -> int:
        """New versions stored."""
        return sum(self.stored_by_type.values())


@dataclass(frozen=True)
class Ingestion:
    """Where arriving resources go: the store and the trigger path, under one source label."""

    sessions: async_sessionmaker[AsyncSession]
    starter: EnrollmentStarter
    temporal: Client
    phone_region: str
    identity_rules: Sequence[str] | None = None
    write_back_queue: str | None = None

    async def receive(self, resources: list[dict[str, Any]], *, source: str) -> Received:
        """Validate, store and trigger; invalid resources are parked (by type and id, never content)."""
        valid: list[dict[str, Any]] = []
        invalid: list[tuple[str, str]] = []
        for resource in resources:
            problems = validation_problems(resource)
            if not problems and not resource.get("id"):
                problems = [(str(resource.get("resourceType")), "the resource has no id")]
            name = f"{resource.get('resourceType', 'resource')}/{resource.get('id', '?')}"
            if problems:
                invalid.append((name, "; ".join(f"{path}: {message}" for path, message in problems[:5])))
            else:
                valid.append(resource)
        if invalid:
            async with self.sessions.begin() as session:
                for name, reason in invalid:
                    await park(session, source, f"invalid resource: {reason}", reference=name)
        if not valid:
            return Received({}, {}, 0, len(invalid))
        ingested = await ingest_fhir_resources(
            self.sessions,
            self.starter,
            self.temporal,
            valid,
            source=source,
            phone_region=self.phone_region,
            fire_triggers=True,
            identity_rules=self.identity_rules,
            write_back_queue=self.write_back_queue,
        )
        for outcome, counts in (("new", ingested.stored.imported), ("unchanged", ingested.stored.unchanged)):
            for resource_type, count in counts.items():
                FHIR_RESOURCES.labels(source.split(":")[0], resource_type, outcome).inc(count)
        return Received(
            stored_by_type=dict(ingested.stored.imported),
            unchanged_by_type=dict(ingested.stored.unchanged),
            triggered=ingested.triggered,
            parked=len(invalid),
        )
