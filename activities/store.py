"""Activities that touch the Aftercare store: enrollment projections and expressions over patient data."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.variables import load_variables, render_or_fail
from aftercare.facilities.patient_calendar import patient_calendar
from aftercare.fhir.fhirpath import FhirPathError, evaluate, is_true
from aftercare.journey_variables import JourneyVariables
from aftercare.store.attributes import set_attributes
from aftercare.store.enrollments import record_progress
from aftercare.store.patients import get_patient
from models.temporal import (
    EvaluateConditionsInput,
    EvaluateConditionsResult,
    FacilityCalendarInput,
    FacilityCalendarResult,
    NextLocalTimeInput,
    NextLocalTimeResult,
    ProgressUpdate,
    ResolveMomentInput,
    ResolveMomentResult,
    UpdateAttributesInput,
    UpdateAttributesResult,
)
from models.zones import zone_info


def first_true_condition(conditions: Sequence[str], variables: JourneyVariables) -> int | None:
    """The index of the first FHIRPath condition that holds over an enrollment's variables (a `branch`),
    or None; a condition that cannot be evaluated is a permanent `ExpressionError`."""
    root, names = variables.fhirpath_root(), variables.fhirpath_variables()
    for position, condition in enumerate(conditions):
        try:
            if is_true(condition, root, names):
                return position
        except FhirPathError as error:
            raise ApplicationError(
                f"condition {position + 1} ({condition!r}) could not be evaluated: {error}",
                type="ExpressionError",
                non_retryable=True,
            ) from error
    return None


log = logging.getLogger(__name__)


class StoreActivities:
    """Enrollment projections and expression evaluation, over one session factory."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], default_timezone: str) -> None:
        self._sessions = sessions
        self._default_timezone = default_timezone

    @activity.defn(name="record_progress")
    async def record_progress(self, progress: ProgressUpdate) -> None:
        """Mirror an enrollment's transition into its projection (idempotent)."""
        async with self._sessions.begin() as session:
            found = await record_progress(session, progress)
        if not found:
            log.warning("no enrollment row to project to", extra={"enrollment_id": progress.enrollment_id})

    @activity.defn(name="evaluate_conditions")
    async def evaluate_conditions(self, request: EvaluateConditionsInput) -> EvaluateConditionsResult:
        """Index of the first FHIRPath condition that holds over the enrollment's variables."""
        async with self._sessions() as session:
            variables = await load_variables(session, request.scope)
        return EvaluateConditionsResult(first_true=first_true_condition(request.conditions, variables))

    @activity.defn(name="update_attributes")
    async def update_attributes(self, request: UpdateAttributesInput) -> UpdateAttributesResult:
        """Set patient attributes, rendering string values with the enrollment's variables."""
        call = request.call
        async with self._sessions.begin() as session:
            variables = await load_variables(
                session,
                call.scope,
                journey_key=call.journey_key,
                step_id=call.step_id,
                hospital_timezone=self._default_timezone,
            )
            names = variables.template_variables()
            values: dict[str, Any] = {
                name: render_or_fail(value, names, f"attribute {name!r}") if isinstance(value, str) else value
                for name, value in request.update.set.items()
            }
            source = f"journey {call.journey_key} v{call.journey_version}, step {call.step_id}"
            await set_attributes(session, call.scope.patient_id, values, source)
        return UpdateAttributesResult(values=values)

    @activity.defn(name="resolve_moment")
    async def resolve_moment(self, request: ResolveMomentInput) -> ResolveMomentResult:
        """A moment from the data: the FHIRPath dateTime plus the offset, in UTC."""
        async with self._sessions() as session:
            variables = await load_variables(session, request.scope)
        try:
            values = evaluate(request.expression, variables.fhirpath_root(), variables.fhirpath_variables())
        except FhirPathError as error:
            raise ApplicationError(
                f"{request.expression!r} could not be evaluated: {error}",
                type="ExpressionError",
                non_retryable=True,
            ) from error
        if not values:
            return ResolveMomentResult(reason=f"{request.expression} has no value")
        zone = zone_info(variables.profile.timezone or self._default_timezone)
        moment = parse_moment(str(values[0]), zone)
        if moment is None:
            return ResolveMomentResult(reason=f"{values[0]!r} is not a date or dateTime")
        return ResolveMomentResult(at=moment + timedelta(seconds=request.offset_seconds))

    @activity.defn(name="facility_calendar")
    async def facility_calendar(self, request: FacilityCalendarInput) -> FacilityCalendarResult:
        """The calendar of the patient's facility: its zone (the patient's own first) and holidays."""
        async with self._sessions() as session:
            return await patient_calendar(session, request.patient_id, self._default_timezone)

    @activity.defn(name="next_local_time")
    async def next_local_time(self, request: NextLocalTimeInput) -> NextLocalTimeResult:
        """The next moment after `after` when the patient's clock shows `time` (hospital zone if unknown)."""
        async with self._sessions() as session:
            patient = await get_patient(session, request.patient_id)
        zone_name = (patient.timezone if patient is not None else None) or self._default_timezone
        return NextLocalTimeResult(
            at=next_local_time(request.after, request.time, zone_name), timezone=zone_name
        )


def parse_moment(text: str, zone: ZoneInfo) -> datetime | None:
    """A FHIR date or dateTime as a UTC instant; a date (or a dateTime without an offset) is read in
    `zone`, a date as the start of that day."""
    text = text.strip().removeprefix("@")
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0), tzinfo=zone).astimezone(UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def next_local_time(after: datetime, clock: str, zone_name: str) -> datetime:
    """The first instant strictly after `after` at local time `clock` (HH:MM) in the zone, in UTC.

    On a spring-forward day a time inside the gap is taken as the same wall-clock offset past the gap
    (02:30 becomes 03:30); on a fall-back day the first of the two instants is used.
    """
    zone = zone_info(zone_name)
    target = time.fromisoformat(clock)
    local_after = after.astimezone(zone)
    for days_ahead in range(0, 3):
        day = (local_after + timedelta(days=days_ahead)).date()
        candidate = datetime.combine(day, target, tzinfo=zone).astimezone(UTC)
        if candidate > after:
            return candidate
    raise AssertionError("a local time recurs within three days")
