"""What planning a FHIR notification reads about definitions, in one statement: the journeys its
resource types enter and the segments its `fhir.<type>` events refresh."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import union_all
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.store.journeys import entered_by_fhir_part, journey_of
from aftercare.store.segments import refreshed_by_part, segment_of
from models.journey import JourneyDefinition
from models.segment import SegmentDefinition

# Built once: every FHIR notification runs it.
_ENTERED_AND_REFRESHED = union_all(entered_by_fhir_part("journey"), refreshed_by_part("segment"))


async def entered_and_refreshed(
    session: AsyncSession, resource_types: Collection[str], event_types: Collection[str]
) -> tuple[list[JourneyDefinition], list[SegmentDefinition]]:
    """The latest journeys whose entry watches one of `resource_types` and the latest segments one of
    `event_types` refreshes (what `journeys_entered_by_fhir` and `segments_refreshed_by` read)."""
    parameters = {"resource_types": sorted(resource_types), "event_types": sorted(event_types)}
    journeys: list[JourneyDefinition] = []
    segments: list[SegmentDefinition] = []
    for kind, document in await (await session.connection()).execute(_ENTERED_AND_REFRESHED, parameters):
        if kind == "journey":
            journeys.append(journey_of(document))
        else:
            segments.append(segment_of(document))
    return journeys, segments
