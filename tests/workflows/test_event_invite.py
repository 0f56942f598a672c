"""A journey's `invite: {event: KEY}` step, end to end on the real Temporal dev server: the patient gets
a message with their own self-service link to the published event; the link opens that event's page
for that patient, who registers through it (source `self_service`), and the registration's
`event.registered` moves the journey on. An event that is not open fails the step, saying why; an
unknown event is refused when the journey is published."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any

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
from tests.workflows.fixtures import JourneyHarness, reach_step
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


async def the_invitation(journeys: JourneyHarness, enrollment_id: str) -> tuple[Any, re.Match[str]]:
    """The enrollment's invitation once sent, and its self-service link (the path in group 1)."""
    async with asyncio.timeout(30):
        while not await journeys.messages(enrollment_id):
            await asyncio.sleep(0.1)
    [invitation] = await journeys.messages(enrollment_id)
    found = re.search(rf"{re.escape(PUBLIC)}(/e/[A-Za-z0-9_=-]+)", invitation.body or "")
    assert found is not None, invitation.body
    return invitation, found


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
        invitation, found = await the_invitation(journeys, enrollment_id)
        assert invitation.body is not None
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


INVITED_TO_THE_END = journey(
    {"id": "invite", "invite": {"event": "diabetes-class", "channel": "sms", "valid_days": 7}},
    {"id": "await-waitlist", "wait_for": {"event": "event.waitlisted", "timeout": "P14D"}},
    {"id": "await-offer", "wait_for": {"event": "event.offered", "timeout": "P14D"}},
    {"id": "await-seat", "wait_for": {"event": "event.registered", "timeout": "P14D"}},
    {"id": "confirm", "send": {"channel": "sms", "body": "You have a place on {{ event.data.start }}"}},
    {"id": "await-check-in", "wait_for": {"event": "event.checked_in", "timeout": "P14D"}},
    {"id": "thanks", "send": {"channel": "sms", "body": "Thank you for coming"}},
    key="wf-event-to-the-end",  # its own key: parsed definitions are kept per key and version
)


async def test_invited_by_a_journey_waitlisted_on_the_public_page_promoted_checked_in_by_qr_and_thanked(
    journeys: JourneyHarness,
    sessions: async_sessionmaker[AsyncSession],
    linked: Settings,
    dev_server: WorkflowEnvironment,
) -> None:
    """The issue's "done when" on the real stack: a one-seat class set up and published through the API;
    another patient takes the seat; the journey invites Abdul, who registers through his link on the
    public page and is waitlisted; the seat frees, he is offered it and takes it; staff check him in
    by his QR code's value; the journey, which followed each step, thanks him."""
    from activities.registry import build_activities
    from api.app import create_app
    from models.tables import Patient

    async with sessions.begin() as session:
        session.add(Patient(id="p-first", version_id="1", given="First"))
    activities = build_activities(sessions, linked, dev_server.client)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=10)
    async with (
        serve(create_app(linked, temporal=dev_server.client), AUTH_HEADERS) as api,
        journeys.make_worker(activities=activities),
    ):
        event = {
            "key": "diabetes-class",
            "title": "Living well with diabetes",
            "timezone": "America/New_York",
            "sessions": [
                {"id": "morning", "start": start.isoformat(), "end": (start + timedelta(hours=2)).isoformat()}
                | {"capacity": 1}
            ],
        }
        assert (await api.post("/v1/events", json=event)).status_code == 201
        assert (await api.post("/v1/events/diabetes-class/publish")).status_code == 200
        first = await api.post(
            "/v1/events/diabetes-class/registrations", json={"patient_id": "p-first", "session_id": "morning"}
        )
        assert first.json()["status"] == "registered"

        handle, enrollment_id, _ = await journeys.enroll(INVITED_TO_THE_END)
        _invitation, found = await the_invitation(journeys, enrollment_id)
        await reach_step(handle, "await-waitlist")  # each action once the journey waits for it
        waitlisted = await api.post(
            f"{found.group(1)}/register",
            content="session_id=morning",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert waitlisted.status_code == 303
        listed = (await api.get("/v1/events/diabetes-class/registrations")).json()["items"]
        [mine] = [r for r in listed if r["patient_id"] == ABDUL_PATIENT_ID]
        assert (mine["status"], mine["source"]) == ("waitlisted", "self_service")
        await reach_step(handle, "await-offer")

        freed = await api.post(
            f"/v1/events/diabetes-class/registrations/{first.json()['registration_id']}/cancel"
        )
        assert freed.status_code == 200
        url = f"/v1/events/diabetes-class/registrations/{mine['registration_id']}"
        assert (await api.get(url)).json()["status"] == "offered"
        await reach_step(handle, "await-seat")
        assert (await api.post(f"{url}/accept")).json()["status"] == "registered"
        await reach_step(handle, "await-check-in")
        code = (await api.get(url)).json()["check_in_code"]
        checked = await api.post("/v1/events/diabetes-class/check-in", json={"code": code})
        assert checked.json()["status"] == "attended"
        await asyncio.wait_for(handle.result(), 30)
        seats = (await api.get("/v1/events/diabetes-class")).json()["sessions"][0]

    assert (seats["registered"], seats["waitlisted"], seats["capacity"]) == (1, 0, 1)
    assert await journeys.history(enrollment_id) == [
        ("invite", "sent"),
        ("await-waitlist", "event"),
        ("await-offer", "event"),
        ("await-seat", "event"),
        ("confirm", "sent"),
        ("await-check-in", "event"),
        ("thanks", "sent"),
    ]
    bodies = [message.body or "" for message in await journeys.messages(enrollment_id)]
    assert bodies[1].startswith("You have a place on ")
    assert bodies[2] == "Thank you for coming"
