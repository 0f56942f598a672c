"""The variables an enrollment's expressions and templates see, loaded from the store by reference.

FHIRPath sees FHIR: `%patient` is the Patient resource, `%trigger` the triggering resource (or event),
`%event` the last event a `wait_for` received, `%context` the enrollment context, `%risk` the readmission
risk of the triggering (else the latest) discharge (`%risk.lace`, `%risk.band`) and `%tcm` its TCM
episode (`%tcm.contact_due`, `%tcm.visit_due`: ISO instants; `aftercare/tcm/variables.py`). Templates see the
patient profile as `patient` (name, given, family, ...), plus `trigger`, `event`, `context`,
`enrollment`, `risk` and `tcm`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.settings import get_settings
from aftercare.store.attributes import attributes_of
from aftercare.store.fetches import fetched_of
from aftercare.store.patients import get_patient
from aftercare.store.resources import load_current, load_version
from aftercare.tcm.variables import encounter_of, risk_variables, tcm_variables
from models.tables import Patient
from models.temporal import ExpressionScope, PatientEvent

PROFILE_FIELDS = (
    "id",
    "name",
    "given",
    "family",
    "birth_date",
    "gender",
    "phone",
    "email",
    "language",
    "timezone",
)


class PatientNotFoundError(LookupError):
    """The enrollment's patient is not in the store."""


@dataclass(frozen=True)
class JourneyVariables:
    """Everything an expression or a template may refer to."""

    profile: Patient
    patient_resource: dict[str, Any] | None
    trigger: dict[str, Any] | None
    event: dict[str, Any] | None
    context: dict[str, Any]
    enrollment: dict[str, Any]
    attributes: dict[str, Any] | None = None
    hospital_timezone: str = "UTC"
    fetched: dict[str, list[dict[str, Any]]] | None = None
    risk: dict[str, Any] | None = None
    tcm: dict[str, Any] | None = None
    step_variables: dict[str, Any] | None = None

    def fhirpath_root(self) -> dict[str, Any]:
        """The resource expressions start from: the triggering resource, else the patient."""
        if self.trigger is not None and "resourceType" in self.trigger:
            return self.trigger
        return self.patient_resource or {}

    def fhirpath_variables(self) -> dict[str, Any]:
        """`%patient`, `%trigger`, `%event`, `%context`, `%attributes`, `%fetched`, `%risk`, `%tcm`."""
        return {
            "patient": self.patient_resource,
            "trigger": self.trigger,
            "event": self.event,
            "context": self.context,
            "attributes": self.attributes or {},
            "fetched": self.fetched or {},
            "risk": self.risk or {},
            "tcm": self.tcm or {},
        }

    def template_variables(self) -> dict[str, Any]:
        """`patient`, `trigger`, `event`, `context`, `enrollment`, `fetched`, `risk`, `tcm` (and what the
        step adds, such as an `invite` step's `invite`; never in place of these)."""
        return {
            **(self.step_variables or {}),
            "timezone": self.profile.timezone or self.hospital_timezone,
            "patient": {**profile_view(self.profile), "attributes": self.attributes or {}},
            "trigger": self.trigger,
            "event": self.event,
            "context": self.context,
            "enrollment": self.enrollment,
            "fetched": self.fetched or {},
            "risk": self.risk or {},
            "tcm": self.tcm or {},
        }


def profile_view(profile: Patient) -> dict[str, Any]:
    """The profile as plain values."""
    view = {name: getattr(profile, name) for name in PROFILE_FIELDS}
    if isinstance(view["birth_date"], date):
        view["birth_date"] = view["birth_date"].isoformat()
    return view


def event_view(event: PatientEvent | None) -> dict[str, Any] | None:
    """An event as JSON-like values."""
    if event is None:
        return None
    occurred = event.occurred_at.isoformat() if isinstance(event.occurred_at, datetime) else None
    return {"id": event.id, "type": event.type, "data": event.data, "occurred_at": occurred}


async def load_journey_variables(
    session: AsyncSession,
    scope: ExpressionScope,
    *,
    journey_key: str | None = None,
    step_id: str | None = None,
    with_patient_resource: bool = True,
    with_attributes: bool = True,
    with_fetched: bool = True,
    with_trigger: bool = True,
    with_risk: bool = True,
    with_tcm: bool = True,
    hospital_timezone: str = "UTC",
    profile: Patient | None = None,
) -> JourneyVariables:
    """Load the patient, the trigger and the rest for one enrollment.

    Templates see the profile only; `with_patient_resource` loads the FHIR `Patient` for FHIRPath.
    `with_attributes` loads the patient's attributes (`update` steps), `with_fetched` what the
    enrollment's `fetch` steps read. `with_trigger`, `with_risk` and `with_tcm` False leave out what a
    send's texts do not name (`trigger`, `risk`, `tcm`: each a read the send need not make). Templates
    also get `timezone`: the patient's, or the hospital's when it is not known. `profile` is the
    patient's, when the caller read it already.
    """
    profile = profile or await get_patient(session, scope.patient_id)
    resource = await load_current(session, "Patient", scope.patient_id) if with_patient_resource else None
    if profile is None or (with_patient_resource and resource is None):
        raise PatientNotFoundError(f"patient {scope.patient_id} is not in the patient store")
    trigger: dict[str, Any] | None = None
    if scope.trigger.kind == "fhir" and scope.trigger.resource is not None:
        # the risk and the TCM episode are those of the triggering encounter
        if with_trigger or with_risk or with_tcm:
            trigger = await load_version(session, scope.trigger.resource)
    elif scope.trigger.kind == "event":
        trigger = event_view(scope.trigger.event)
    return JourneyVariables(
        profile=profile,
        patient_resource=resource,
        trigger=trigger if with_trigger else None,
        event=event_view(scope.event),
        context=dict(scope.context),
        enrollment={"id": scope.enrollment_id, "journey_key": journey_key, "step_id": step_id},
        attributes=await attributes_of(session, scope.patient_id) if with_attributes else None,
        hospital_timezone=hospital_timezone,
        fetched=await fetched_of(session, scope.enrollment_id) if with_fetched else None,
        risk=await risk_variables(session, scope.patient_id, encounter_of(trigger), get_settings().bands)
        if with_risk
        else None,
        tcm=await tcm_variables(session, scope.patient_id, encounter_of(trigger)) if with_tcm else None,
        step_variables=dict(scope.variables),
    )


async def with_attributes(session: AsyncSession, variables: JourneyVariables) -> JourneyVariables:
    """The same variables, with the patient's attributes loaded."""
    if variables.attributes is not None:
        return variables
    return replace(variables, attributes=await attributes_of(session, variables.profile.id))


async def with_fetched(session: AsyncSession, variables: JourneyVariables) -> JourneyVariables:
    """The same variables, with what the enrollment's `fetch` steps read."""
    if variables.fetched is not None:
        return variables
    return replace(variables, fetched=await fetched_of(session, str(variables.enrollment["id"])))
