"""A confirmation email about a registration carries its calendar invite (RFC 5545, `METHOD:REQUEST`,
the registration's stable UID, the event's time zone) and its check-in QR code: a journey step
`send: {channel: email, attach: [event_invite, check_in_qr]}` after `event.registered`. The send goes
through the send decision like every message: without consent for email, nothing is sent."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from icalendar import Calendar

from aftercare.events.invites import check_in_code, check_in_qr_png
from aftercare.events.registrations import register
from aftercare.settings import Settings, event_link_secret
from aftercare.store.consents import record_consent
from models.event_api import RegistrationIn
from models.temporal import PatientEvent
from tests.conftest import ABDUL_PATIENT_ID, synthea_bundle
from tests.helpers import ingest_patient, with_email
from tests.workflows.fixtures import JourneyHarness, reach_step
from tests.workflows.test_enrollment import journey
from tests.workflows.test_event_invite import an_event
from workflows.enrollment import EnrollmentWorkflow

pytestmark = pytest.mark.usefixtures("empty_database")

CONFIRM = journey(
    {"id": "await-registration", "wait_for": {"event": "event.registered", "timeout": "P1D"}},
    {
        "id": "confirm",
        "send": {
            "channel": "email",
            "subject": "You are registered",
            "body": "See you on {{ event.data.start }}. Show the QR code at the door.",
            "attach": ["event_invite", "check_in_qr"],
        },
    },
)


async def registered(journeys: JourneyHarness) -> PatientEvent:
    """Abdul (with an email address now) registered for a published class; the event journeys hear."""
    patient = next(
        e["resource"] for e in synthea_bundle()["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    await ingest_patient(journeys.sessions, with_email(patient, "abdul@example.org"))
    await an_event(journeys.sessions)
    async with journeys.sessions.begin() as session:
        change = await register(
            session, "diabetes-class", RegistrationIn(patient_id=ABDUL_PATIENT_ID, session_id="morning")
        )
    [notice] = change.notices
    return PatientEvent(id=notice.id, type=notice.type, data=notice.data, occurred_at=datetime.now(UTC))


async def test_the_confirmation_carries_the_calendar_invite_and_the_check_in_qr_code(
    journeys: JourneyHarness, settings: Settings
) -> None:
    async with journeys.make_worker():
        handle, enrollment_id, _ = await journeys.enroll(CONFIRM)
        await reach_step(handle, "await-registration")
        event = await registered(journeys)
        await handle.signal(EnrollmentWorkflow.deliver_event, event)
        await journeys.finish(handle)

    [message] = await journeys.messages(enrollment_id)
    assert (message.channel, message.to, message.status) == ("email", "abdul@example.org", "sent")
    assert message.attachments is not None
    invite, qr = message.attachments
    assert (invite["filename"], invite["content_type"]) == (
        "diabetes-class.ics",
        "text/calendar; method=REQUEST",
    )
    calendar = Calendar.from_ical(base64.b64decode(invite["content"]))
    [vevent] = calendar.walk("VEVENT")
    registration_id = event.data["registration_id"]
    assert calendar["METHOD"] == "REQUEST"
    assert str(vevent["UID"]) == f"{registration_id}@events.aftercare"
    assert str(vevent["SUMMARY"]) == "Living well with diabetes"
    assert [str(zone["TZID"]) for zone in calendar.walk("VTIMEZONE")] == ["America/New_York"]
    assert (qr["filename"], qr["content_type"]) == ("check-in.png", "image/png")
    code = check_in_code(registration_id, event_link_secret(settings))
    assert base64.b64decode(qr["content"]) == check_in_qr_png(code)  # the code staff scan at the door


async def test_without_consent_for_email_the_confirmation_is_not_sent(journeys: JourneyHarness) -> None:
    async with journeys.make_worker():
        handle, enrollment_id, _ = await journeys.enroll(CONFIRM)
        await reach_step(handle, "await-registration")
        event = await registered(journeys)
        async with journeys.sessions.begin() as session:
            await record_consent(session, [ABDUL_PATIENT_ID], "email", "revoked", "front-desk")
        await handle.signal(EnrollmentWorkflow.deliver_event, event)
        await journeys.finish(handle)

    [message] = await journeys.messages(enrollment_id)
    assert message.status == "skipped"
    assert message.reason is not None
    assert "withdrew consent" in message.reason


def test_attachments_go_with_email_only() -> None:
    from pydantic import ValidationError

    from models.journey import JourneyDefinition

    sms = journey({"id": "confirm", "send": {"channel": "sms", "body": "Hi", "attach": ["event_invite"]}})
    with pytest.raises(ValidationError, match="`attach` goes with `channel: email`"):
        JourneyDefinition.model_validate(sms)
