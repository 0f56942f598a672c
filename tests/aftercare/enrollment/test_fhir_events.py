"""A stored FHIR version becomes a `fhir.<type>` event for each running enrollment of its patient whose
journey listens for it, except the enrollment that version started."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from aftercare.enrollment.fhir_events import plan_fhir_events
from aftercare.store.enrollments import insert_enrollment
from aftercare.store.resources import StoredVersion, store_resources
from models.search_attributes import enrollment_workflow_id
from models.temporal import EnrollmentTrigger, FhirResourceRef
from tests.helpers import publish

PATIENT = {"resourceType": "Patient", "id": "events-1", "name": [{"given": ["Ada"], "family": "Events"}]}


def _journey(key: str, event: str) -> dict[str, Any]:
    return {
        "key": key,
        "version": 1,
        "name": key,
        "steps": [{"id": "wait", "wait_for": {"event": event, "timeout": "P1D"}}],
    }


def _version(version_id: str) -> StoredVersion:
    ref = FhirResourceRef(resource_type="Observation", resource_id="obs-1", version_id=version_id)
    content = {"resourceType": "Observation", "id": "obs-1", "subject": {"reference": "Patient/events-1"}}
    return StoredVersion(ref=ref, interaction="create", patient_id="events-1", content=content)


async def _enroll(
    session: AsyncSession, enrollment_id: str, journey_key: str, trigger: EnrollmentTrigger
) -> None:
    await insert_enrollment(
        session,
        {
            "id": enrollment_id,
            "journey_key": journey_key,
            "journey_version": 1,
            "patient_id": "events-1",
            "current_step": "wait",
            "trigger": trigger.model_dump(mode="json"),
            "trigger_key": None,
            "context": {},
            "exclusive": False,
            "once_only": False,
            "workflow_id": enrollment_workflow_id(enrollment_id),
        },
    )


async def test_versions_reach_the_running_enrollments_that_listen_but_not_the_one_they_started(
    empty_database: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await publish(sessions, _journey("listens-for-labs", "fhir.observation"))
    await publish(sessions, _journey("listens-for-replies", "sms.reply"))
    first = _version("v1")
    async with sessions.begin() as session:
        await store_resources(session, [PATIENT], source="test", phone_region="US")
        await _enroll(
            session, "started-by-v1", "listens-for-labs", EnrollmentTrigger(kind="fhir", resource=first.ref)
        )
        await _enroll(session, "by-hand", "listens-for-labs", EnrollmentTrigger(kind="manual"))
        await _enroll(session, "replies", "listens-for-replies", EnrollmentTrigger(kind="manual"))

    async with sessions() as session:
        for_first = await plan_fhir_events(session, [first])
        for_second = await plan_fhir_events(session, [_version("v2")])

    assert [delivery.workflow_id for delivery in for_first] == [enrollment_workflow_id("by-hand")]
    assert sorted(delivery.workflow_id for delivery in for_second) == sorted(
        enrollment_workflow_id(enrollment_id) for enrollment_id in ("started-by-v1", "by-hand")
    )
    assert {delivery.event.type for delivery in for_second} == {"fhir.observation"}
