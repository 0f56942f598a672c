"""Activities that touch the Aftercare store: enrollment projections and expressions over patient data."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from aftercare.fhir.fhirpath import FhirPathError, is_true
from aftercare.journey_variables import PatientNotFoundError, load_journey_variables
from aftercare.store.enrollments import record_progress
from aftercare.store.patients import get_patient
from models.temporal import (
    EvaluateConditionsInput,
    EvaluateConditionsResult,
    NextLocalTimeInput,
    NextLocalTimeResult,
    ProgressUpdate,
)


class StoreActivities:
    """Enrollment projections and expression evaluation, over one session factory."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], default_timezone: str) -> None:
        self._sessions = sessions
        self._default_timezone = default_timezone

    @activity.defn(name="record_progress")
    async def record_progress(self, progress: ProgressUpdate) -> None:
        """Mirror an enrollment's transition into its projection (idempotent)."""
        async with self._sessions.begin() as session:
            await record_progress(session, progress)

    @activity.defn(name="evaluate_conditions")
    async def evaluate_conditions(self, request: EvaluateConditionsInput) -> EvaluateConditionsResult:
        """Index of the first FHIRPath condition that holds over the enrollment's variables."""
        async with self._sessions() as session:
            try:
                variables = await load_journey_variables(session, request.scope)
            except PatientNotFoundError as error:
                raise ApplicationError(str(error), type="PatientNotFound", non_retryable=True) from error
        root, names = variables.fhirpath_root(), variables.fhirpath_variables()
        for position, condition in enumerate(request.conditions):
            try:
                if is_true(condition, root, names):
                    return EvaluateConditionsResult(first_true=position)
            except FhirPathError as error:
                raise ApplicationError(
                    f"condition {position + 1} ({condition!r}) could not be evaluated: {error}",
                    type="ExpressionError",
                    non_retryable=True,
                ) from error
        return EvaluateConditionsResult(first_true=None)

    @activity.defn(name="next_local_time")
    async def next_local_time(self, request: NextLocalTimeInput) -> NextLocalTimeResult:
        """The next moment after `after` when the patient's clock shows `time` (hospital zone if unknown)."""
        async with self._sessions() as session:
            patient = await get_patient(session, request.patient_id)
        zone_name = (patient.timezone if patient is not None else None) or self._default_timezone
        return NextLocalTimeResult(
            at=next_local_time(request.after, request.time, zone_name), timezone=zone_name
        )


def next_local_time(after: datetime, clock: str, zone_name: str) -> datetime:
    """The first instant strictly after `after` at local time `clock` (HH:MM) in the zone, in UTC.

    On a spring-forward day a time inside the gap is taken as the same wall-clock offset past the gap
    (02:30 becomes 03:30); on a fall-back day the first of the two instants is used.
    """
    zone = ZoneInfo(zone_name)
    target = time.fromisoformat(clock)
    local_after = after.astimezone(zone)
    for days_ahead in range(0, 3):
        day = (local_after + timedelta(days=days_ahead)).date()
        candidate = datetime.combine(day, target, tzinfo=zone).astimezone(UTC)
        if candidate > after:
            return candidate
    raise AssertionError("a local time recurs within three days")
