"""A journey's `invite: {event: KEY}` step, end to end on the real Temporal dev server: the patient gets
a message with their own self-service link to the published event; the link opens that event's page
for that patient, who registers through it (source `self_service`), and the registration's
`event.registered` moves the journey on. An event that is not open fails the step, saying why; an
unknown event is refused when the journey is published."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from aftercare.analytics.attendance import invitations
from aftercare.definitions import DefinitionInvalidError, check_journey
from aftercare.events.links import read_link_token
from aftercare.events.store import create_event, publish_event
from aftercare.settings import Settings, event_link_secret
from aftercare.store.enrollments import enrollment_history
from models.event_api import EventIn, SessionIn
from models.journey import JourneyDefinition
from tests.conftest import ABDUL_PATIENT_ID, AUTH_HEADERS, serve
from tests.workflows.fixtures import JourneyHarness
from tests.workflows.test_enrollment import journey

pytestmark = pytest.mark.usefixtures("empty_database")
PUBLIC = "https://outreach.hospital.example"


@pytest.fixture
def time_skipping_env(dev_server: WorkflowEnvironment) -> WorkflowEnvironment:
    """The journeys of this module run on the real dev server, not the time-skipping one."""
    return dev_server


@pytest.fixture
def linked(settings: Settings, task_queue: str) -> Settings:
    return settings.model_copy(update={"public_base_url": PUBLIC, "temporal_task_queue": task_queue})


async def an_event(sessions: async_sessionmaker[AsyncSession], *, publish: bool = True) -> None:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=10)
    async with sessions.begin() as session:
        await create_event(
            session,
            EventIn(
                key="diabetes-class",
                title="Living well with diabetes",
                timezone="America/New_York",
                sessions=[SessionIn(id="morning", start=start, end=start + timedelta(hours=2), capacity=5)],
            ),
        )
        if publish:
            await publish_event(session, "diabetes-class")


INVITE_AND_WAIT = journey(
    {"id": "invite", "invite": {"event": "diabetes-class", "channel": "sms", "valid_days": 7}},
    {"id": "await-registration", "wait_for": {"event": "event.registered", "timeout": "P14D"}},
    {"id": "confirm", "send": {"channel": "sms", "body": "See you on {{ event.data.start }}"}},
)


async def test_an_invite_step_sends_the_patients_own_link_and_registering_through_it_moves_the_journey_on(
    journeys: JourneyHarness,
    sessions: async_sessionmaker[AsyncSession],
    linked: Settings,
    dev_server: WorkflowEnvironment,
) -> None:
    from activities.registry import build_activities
    from api.app import create_app

    await an_event(sessions)
    activities = build_activities(sessions, linked, dev_server.client)
    async with journeys.make_worker(activities=activities):
        handle, enrollment_id, _ = await journeys.enroll(INVITE_AND_WAIT)
        async with asyncio.timeout(30):
            while not await journeys.messages(enrollment_id):
                await asyncio.sleep(0.1)
        [invitation] = await journeys.messages(enrollment_id)
        assert invitation.body is not None
        found = re.search(rf"{re.escape(PUBLIC)}(/e/[A-Za-z0-9_=-]+)", invitation.body)
        assert found is not None, invitation.body
        assert invitation.body.startswith("Hi Abdul")
        assert "you are invited to Living well with diabetes" in invitation.body
        claims = read_link_token(event_link_secret(linked), found.group(1).removeprefix("/e/"))
        assert (claims.event_key, claims.patient_id) == ("diabetes-class", ABDUL_PATIENT_ID)
        assert timedelta(days=6) < claims.expires_at - datetime.now(UTC) <= timedelta(days=7)

        # The patient follows the link and registers on the public page.
        async with serve(create_app(linked, temporal=dev_server.client), AUTH_HEADERS) as api:
            registered = await api.post(
                f"{found.group(1)}/register",
                content="session_id=morning",
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
            assert registered.status_code == 303
            await asyncio.wait_for(handle.result(), 30)
            registrations = (await api.get("/v1/events/diabetes-class/registrations")).json()["items"]

    assert [(r["patient_id"], r["status"], r["source"]) for r in registrations] == [
        (ABDUL_PATIENT_ID, "registered", "self_service")
    ]
    async with sessions() as session:  # the analytics count the invitation that went out
        assert await invitations(session, "diabetes-class") == {"diabetes-class": 1}
        assert await invitations(session) == {"diabetes-class": 1}
    assert await journeys.history(enrollment_id) == [
        ("invite", "sent"),
        ("await-registration", "event"),
        ("confirm", "sent"),
    ]


async def test_an_invite_to_an_event_not_open_for_registration_fails_the_step_saying_why(
    journeys: JourneyHarness,
    sessions: async_sessionmaker[AsyncSession],
    linked: Settings,
    dev_server: WorkflowEnvironment,
) -> None:
    from activities.registry import build_activities

    await an_event(sessions, publish=False)
    async with journeys.make_worker(activities=build_activities(sessions, linked, dev_server.client)):
        handle, enrollment_id, _ = await journeys.enroll(INVITE_AND_WAIT)
        with pytest.raises(WorkflowFailureError):
            await asyncio.wait_for(handle.result(), 30)
    assert await journeys.messages(enrollment_id) == []
    async with sessions() as session:
        [failed] = await enrollment_history(session, enrollment_id)
    assert (failed.step, failed.result) == ("<failed>", "error")
    assert failed.detail == "invite: the event 'diabetes-class' is draft: nobody can be invited to it"


async def test_a_journey_inviting_to_an_unknown_event_is_refused_at_publishing(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    definition = JourneyDefinition.model_validate(INVITE_AND_WAIT | {"steps": INVITE_AND_WAIT["steps"][:1]})
    async with sessions() as session:
        with pytest.raises(DefinitionInvalidError) as refused:
            await check_journey(session, definition)
    [problem] = refused.value.problems
    assert problem.loc == ("steps", 0, "invite", "event")
    assert "no event 'diabetes-class'" in problem.msg
