"""The activity that refreshes dynamic segments and drives the journeys they enter patients in."""

from __future__ import annotations

from temporalio import activity

from aftercare.segments.dynamic import SegmentDriver
from models.segment_runs import RefreshSegmentsInput, RefreshSegmentsResult


class SegmentActivities:
    """Segment refreshes, through the same driver the API uses."""

    def __init__(self, driver: SegmentDriver) -> None:
        self._driver = driver

    @activity.defn(name="refresh_segments")
    async def refresh_segments(self, request: RefreshSegmentsInput) -> RefreshSegmentsResult:
        """Refresh one segment (or every one due): record entries and exits, enroll, signal exits,
        heartbeating as it goes."""
        summaries = await self._driver.refresh(
            request.key, request.as_of, patient_id=request.patient_id, progress=activity.heartbeat
        )
        return RefreshSegmentsResult(segments=summaries)
