"""Every ready-made journey, installed in one call and run end to end on the time-skipping server, with
the real activities, the real FHIR ingest path (store, enter journeys, deliver `fhir.*` events) and
the real event path (`POST /v1/triggers` minus HTTP)."""

from __future__ import annotations

import asyncio
import base64
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar
from sqlalchemy import select
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle

from aftercare.enrollment.event_triggers import deliver_event
from aftercare.enrollment.fhir_ingest import ingest_fhir_resources
from aftercare.enrollment.task_events import tell_enrollment
from aftercare.events.registrations import cancel_event, change_session, register
from aftercare.facilities.calendar import add_business_days, is_business_day
from aftercare.facilities.patient_calendar import patient_calendar
from aftercare.settings import get_settings
from aftercare.store.attributes import attributes_of
from aftercare.store.enrollments import get_enrollment
from aftercare.store.tasks import complete_task, list_tasks
from aftercare.store.tcm_episodes import progress_of
from journeys.catalogue import LIBRARY, install, library, library_entry, load_library
from models.event_api import RegistrationIn, SessionChange
from models.event_tables import EventSession
from models.risk_tables import TcmEpisode
from models.tables import Enrollment, Task, Template
from tests.conftest import ABDUL_PATIENT_ID, synthea_bundle
from tests.helpers import ingest_patient, load_synthea_patient, with_email
from tests.workflows.fixtures import JourneyHarness, reach_step
from tests.workflows.test_event_invite import an_event
from workflows.enrollment import EnrollmentWorkflow

pytestmark = pytest.mark.usefixtures("empty_database")

SPANISH_SPEAKER = "Antonio_Castellanos_6d2eba67-5b4a-403f-a29f-e6da3f1ea963.json"


class Library:
    """Installs a ready-made journey and drives it the way the API would."""

    def __init__(self, journeys: JourneyHarness) -> None:
        self.journeys = journeys

    async def install(self, key: str) -> None:
        entry = library_entry(key)
        assert entry is not None
        async with self.journeys.sessions.begin() as session:
            await install(session, entry)

    async def ingest(self, *resources: dict[str, Any]) -> int:
        ingested = await ingest_fhir_resources(
            self.journeys.sessions,
            self.journeys.starter,
            self.journeys.env.client,
            list(resources),
            source="test",
            phone_region="US",
        )
        return ingested.triggered

    async def event(
        self, event_type: str, patient_id: str = ABDUL_PATIENT_ID, event_id: str | None = None, **data: Any
    ) -> list[str]:
        delivery = await deliver_event(
            self.journeys.sessions,
            self.journeys.env.client,
            self.journeys.starter,
            event_type=event_type,
            patient_id=patient_id,
            data=data,
            event_id=event_id,
        )
        return delivery.delivered_to + delivery.started

    async def enrollment(self, journey_key: str) -> tuple[WorkflowHandle[Any, Any], str]:
        async with self.journeys.sessions() as session:
            [row] = (
                await session.scalars(select(Enrollment).where(Enrollment.journey_key == journey_key))
            ).all()
        return self.journeys.env.client.get_workflow_handle_for(
            EnrollmentWorkflow.run, row.workflow_id
        ), row.id

    async def advance(self, duration: timedelta) -> None:
        await self.journeys.env.sleep(duration)

    async def now(self) -> datetime:
        return await self.journeys.env.get_current_time()

    async def tasks(self, queue: str) -> list[Task]:
        async with self.journeys.sessions() as session:
            return list(await list_tasks(session, queue=queue))

    async def bodies(self, enrollment_id: str) -> list[str]:
        return [message.body or "" for message in await self.journeys.messages(enrollment_id)]


@pytest.fixture
def lib(journeys: JourneyHarness) -> Library:
    return Library(journeys)


def patient_reference(patient_id: str = ABDUL_PATIENT_ID) -> dict[str, str]:
    return {"reference": f"Patient/{patient_id}"}


def test_the_library_has_the_journeys_of_the_brief_of_events_voice_surveys_and_transitional_care() -> None:
    assert [entry.key for entry in library()] == [
        "abnormal-lab-follow-up",
        "appointment-reminder",
        "event-cancelled-invite",
        "event-changed-invite",
        "event-no-show-re-invite",
        "event-post-survey",
        "event-reminders",
        "event-rescheduled-reminders",
        "medication-adherence",
        "missed-appointment-re-engagement",
        "post-discharge-follow-up",
        "post-discharge-surveys",
        "post-discharge-voice-follow-up",
        "transitional-care",
        "vaccination-reminder",
    ]
    assert all(entry.templates and entry.description for entry in library())


def test_the_rescheduled_reminders_send_the_very_templates_event_reminders_writes() -> None:
    reminders, rescheduled = library_entry("event-reminders"), library_entry("event-rescheduled-reminders")
    assert reminders is not None
    assert rescheduled is not None
    shared = ("event-week-before", "event-day-before", "event-thanks")
    assert [template.key for template in rescheduled.templates] == list(shared)
    assert rescheduled.templates == tuple(t for t in reminders.templates if t.key in shared)
    assert rescheduled.journey.version == 2
    variants = [(t.key, t.channel, t.locale) for entry in library() for t in entry.templates]
    written_twice = {v for v in variants if variants.count(v) > 1}
    assert written_twice == {(key, "sms", "en") for key in shared}  # listed twice, written once


def test_a_template_written_in_two_library_files_or_a_reference_to_nothing_is_refused(
    tmp_path: Path,
) -> None:
    for name in ("event-reminders.yaml", "event-rescheduled-reminders.yaml"):
        shutil.copy(LIBRARY / name, tmp_path / name)
    assert len(load_library(tmp_path)) == 2
    rescheduled = tmp_path / "event-rescheduled-reminders.yaml"
    text = rescheduled.read_text()
    copy = '  - {key: event-thanks, channel: sms, locale: en, purpose: health_education, body: "Thanks!"}\n'
    rescheduled.write_text(text.replace("  - {from: event-reminders, key: event-thanks}\n", copy))
    with pytest.raises(ValueError, match=r"'event-thanks' .* is written in 'event-reminders' too"):
        load_library(tmp_path)
    rescheduled.write_text(text.replace("key: event-thanks}", "key: event-goodbye}"))
    with pytest.raises(ValueError, match="'event-reminders' writes no template 'event-goodbye'"):
        load_library(tmp_path)
    rescheduled.write_text(text.replace("from: event-reminders, key: event-thanks", "from: nowhere, key: x"))
    with pytest.raises(ValueError, match="'nowhere' writes no template 'x'"):
        load_library(tmp_path)


async def test_installing_the_rescheduled_reminders_alone_publishes_the_templates_it_sends(
    lib: Library, journeys: JourneyHarness
) -> None:
    await lib.install("event-rescheduled-reminders")

    async with journeys.sessions() as session:
        published = (await session.execute(select(Template.key, Template.channel, Template.locale))).all()
    assert sorted(published) == [
        ("event-day-before", "sms", "en"),
        ("event-thanks", "sms", "en"),
        ("event-week-before", "sms", "en"),
    ]


async def test_post_discharge_follow_up_with_a_patient_who_is_not_well(
    lib: Library, journeys: JourneyHarness
) -> None:
    await load_synthea_patient(journeys.sessions)
    await lib.install("post-discharge-follow-up")
    discharged = (await lib.now()).replace(microsecond=0)
    encounter = {
        "resourceType": "Encounter",
        "id": "stay-1",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "subject": patient_reference(),
        "period": {"start": (discharged - timedelta(days=4)).isoformat(), "end": discharged.isoformat()},
    }
    async with journeys.make_worker():
        assert await lib.ingest(encounter) == 1
        handle, enrollment_id = await lib.enrollment("post-discharge-follow-up")
        await reach_step(handle, "wait-48h")
        await lib.advance(timedelta(days=2, minutes=1))
        await reach_step(handle, "await-check-in")
        await lib.event("sms.reply", body="2")
        await reach_step(handle, "until-day-7")
        [task] = await lib.tasks("care-coordinators")
        result = await journeys.finish(handle)

    assert (result.status, result.outcome) == ("completed", "completed")
    assert (task.title, task.priority, task.description) == (
        "Abdul Koepp is not feeling well after discharge",
        "urgent",
        "Answer to the 48-hour check-in: 2",
    )
    bodies = await lib.bodies(enrollment_id)
    assert [body.split(",")[0] for body in bodies] == ["Welcome home", "Hi Abdul", "Hi Abdul", "Hi Abdul"]
    assert "a week since your discharge" in bodies[2]
    assert "a month after your discharge" in bodies[3]
    history = dict(await journeys.history(enrollment_id))
    assert history["until-day-30"] == "waited"


async def test_post_discharge_surveys_route_a_high_pain_score_to_an_urgent_call(
    lib: Library, journeys: JourneyHarness
) -> None:
    await load_synthea_patient(journeys.sessions)
    await lib.install("post-discharge-surveys")
    discharged = (await lib.now()).replace(microsecond=0)
    encounter = {
        "resourceType": "Encounter",
        "id": "stay-2",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "subject": patient_reference(),
        "period": {"start": (discharged - timedelta(days=3)).isoformat(), "end": discharged.isoformat()},
    }
    async with journeys.make_worker():
        assert await lib.ingest(encounter) == 1
        handle, enrollment_id = await lib.enrollment("post-discharge-surveys")
        await reach_step(handle, "wait-48h")
        await lib.advance(timedelta(days=2, minutes=1))
        await reach_step(handle, "check-in")
        async with journeys.sessions() as session:
            survey = await the_only_survey(session)
        answers = {"overall": ["same"], "pain-score": [8], "warning-signs": ["none"]}
        await lib.event("survey.completed", survey_id=survey.id, answers=answers)
        await reach_step(handle, "wait-4-weeks")
        [task] = await lib.tasks("care-coordinators")
        result = await journeys.finish(handle)

    assert (result.status, result.outcome) == ("completed", "completed")
    assert (task.title, task.priority) == ("Abdul Koepp: call about the 48-hour check-in", "urgent")
    assert survey.questionnaire_url == "https://aftercare.example/fhir/Questionnaire/post-discharge-48h"
    bodies = await lib.bodies(enrollment_id)
    assert bodies[0].startswith("Welcome home, Abdul")
    assert [("/s/" in body) for body in bodies] == [
        False,
        True,
        True,
    ]  # the patient-experience survey expired
    history = dict(await journeys.history(enrollment_id))
    assert history["experience"] == "timeout"


async def the_only_survey(session: Any) -> Any:
    from models.survey_tables import Survey

    [survey] = (await session.scalars(select(Survey))).all()
    return survey


async def test_post_discharge_follow_up_ends_when_the_patient_is_readmitted(
    lib: Library, journeys: JourneyHarness
) -> None:
    await load_synthea_patient(journeys.sessions)
    await lib.install("post-discharge-follow-up")
    now = (await lib.now()).replace(microsecond=0)
    stay = {
        "resourceType": "Encounter",
        "id": "stay-2",
        "status": "finished",
        "class": {"code": "IMP"},
        "subject": patient_reference(),
        "period": {"end": now.isoformat()},
    }
    async with journeys.make_worker():
        await lib.ingest(stay)
        handle, enrollment_id = await lib.enrollment("post-discharge-follow-up")
        await reach_step(handle, "wait-48h")
        readmission = {
            "resourceType": "Encounter",
            "id": "stay-3",
            "status": "in-progress",
            "class": {"code": "IMP"},
            "subject": patient_reference(),
            "period": {"start": now.isoformat()},
        }
        await lib.ingest(readmission)
        result = await journeys.finish(handle)

    assert (result.status, result.outcome) == ("exited", "readmitted")
    assert len(await lib.bodies(enrollment_id)) == 1


async def test_medication_adherence_without_an_answer_asks_a_pharmacist(
    lib: Library, journeys: JourneyHarness
) -> None:
    await load_synthea_patient(journeys.sessions)
    await lib.install("medication-adherence")
    prescription = {
        "resourceType": "MedicationRequest",
        "id": "rx-1",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"text": "Metformin 500 mg"},
        "subject": patient_reference(),
    }
    async with journeys.make_worker():
        assert await lib.ingest(prescription) == 1
        handle, enrollment_id = await lib.enrollment("medication-adherence")
        result = await journeys.finish(handle)

    assert result.status == "completed"
    bodies = await lib.bodies(enrollment_id)
    assert [body.split(" ")[3] for body in bodies] == ["care", "you", "to"]  # start, check, refill
    assert all("Metformin" not in body for body in bodies), "minimum necessary: no drug names by SMS"
    [task] = await lib.tasks("pharmacists")
    assert task.title == "Adherence call for Abdul Koepp"
    async with journeys.sessions() as session:
        assert (await attributes_of(session, ABDUL_PATIENT_ID))["adherence_followup"] == "pharmacist call"


async def test_an_abnormal_lab_result_in_spanish_with_a_yes_gets_a_nurse_call(
    lib: Library, journeys: JourneyHarness
) -> None:
    patient = await load_synthea_patient(journeys.sessions, SPANISH_SPEAKER)
    await lib.install("abnormal-lab-follow-up")
    result_high = {
        "resourceType": "Observation",
        "id": "k-1",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3", "display": "Potassium"}]},
        "subject": patient_reference(patient["id"]),
        "valueQuantity": {"value": 6.4, "unit": "mmol/L"},
        "interpretation": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                        "code": "HH",
                    }
                ]
            }
        ],
    }
    normal = {**result_high, "id": "k-2", "interpretation": [{"coding": [{"code": "N"}]}]}
    async with journeys.make_worker():
        assert await lib.ingest(normal) == 0
        assert await lib.ingest(result_high) == 1
        handle, enrollment_id = await lib.enrollment("abnormal-lab-follow-up")
        await reach_step(handle, "await-reply")
        await lib.event("sms.reply", patient["id"], body=" yes ")
        result = await journeys.finish(handle)

    assert result.status == "completed"
    [message] = await lib.bodies(enrollment_id)
    assert message.startswith("Hola Antonio")
    [task] = await lib.tasks("nurses")
    assert (task.priority, task.step_id) == ("high", "call")


async def test_an_appointment_reminder_is_confirmed_by_reply(lib: Library, journeys: JourneyHarness) -> None:
    await load_synthea_patient(journeys.sessions)
    await lib.install("appointment-reminder")
    start = (await lib.now()).replace(microsecond=0, second=0, minute=0) + timedelta(days=5)
    appointment = {
        "resourceType": "Appointment",
        "id": "visit-1",
        "status": "booked",
        "start": start.isoformat(),
        "participant": [{"actor": patient_reference(), "status": "accepted"}],
    }
    async with journeys.make_worker():
        assert await lib.ingest(appointment) == 1
        handle, enrollment_id = await lib.enrollment("appointment-reminder")
        await reach_step(handle, "until-2-days-before")
        await lib.advance(timedelta(days=3, minutes=1))
        await reach_step(handle, "await-answer")
        await lib.event("sms.reply", body="c")
        result = await journeys.finish(handle)

    assert result.status == "completed"
    reminder, confirmed = await lib.bodies(enrollment_id)
    local = start.astimezone(ZoneInfo("America/New_York"))
    assert local.strftime("%A %d %B at %H:%M") in reminder
    assert confirmed == "Thank you, Abdul, your appointment is confirmed."
    async with journeys.sessions() as session:
        assert (await attributes_of(session, ABDUL_PATIENT_ID))["last_appointment_confirmed"] == "visit-1"


async def test_cancelling_the_appointment_ends_its_reminders(lib: Library, journeys: JourneyHarness) -> None:
    await load_synthea_patient(journeys.sessions)
    await lib.install("appointment-reminder")
    start = (await lib.now()).replace(microsecond=0) + timedelta(days=9)
    appointment = {
        "resourceType": "Appointment",
        "id": "visit-2",
        "status": "booked",
        "start": start.isoformat(),
        "participant": [{"actor": patient_reference(), "status": "accepted"}],
    }
    async with journeys.make_worker():
        await lib.ingest(appointment)
        handle, enrollment_id = await lib.enrollment("appointment-reminder")
        await reach_step(handle, "until-2-days-before")
        await lib.ingest({**appointment, "status": "cancelled"})
        result = await journeys.finish(handle)

    assert (result.status, result.outcome) == ("exited", "cancelled")
    assert await lib.bodies(enrollment_id) == []


async def test_a_missed_appointment_is_followed_until_the_patient_rebooks(
    lib: Library, journeys: JourneyHarness
) -> None:
    await load_synthea_patient(journeys.sessions)
    await lib.install("missed-appointment-re-engagement")
    start = (await lib.now()).replace(microsecond=0) - timedelta(hours=2)
    booked = {
        "resourceType": "Appointment",
        "id": "visit-3",
        "status": "booked",
        "start": start.isoformat(),
        "participant": [{"actor": patient_reference(), "status": "accepted"}],
    }
    async with journeys.make_worker():
        assert await lib.ingest(booked) == 0
        assert await lib.ingest({**booked, "status": "noshow"}) == 1
        handle, enrollment_id = await lib.enrollment("missed-appointment-re-engagement")
        await reach_step(handle, "await-reply")
        await lib.advance(timedelta(days=7, hours=1))
        await reach_step(handle, "until-rebooked")
        await lib.event("appointment.booked")
        result = await journeys.finish(handle)

    assert (result.status, result.outcome) == ("exited", "rebooked")
    assert len(await lib.bodies(enrollment_id)) == 2
    [task] = await lib.tasks("scheduling")
    assert task.title == "Call Abdul Koepp to rebook a missed appointment"


async def test_a_vaccination_reminder_stops_when_the_immunization_is_recorded(
    lib: Library, journeys: JourneyHarness
) -> None:
    await load_synthea_patient(journeys.sessions)
    await lib.install("vaccination-reminder")
    async with journeys.make_worker():
        assert await lib.event("vaccination.due") == [], "entry criteria need the vaccine"
        [enrollment_id] = await lib.event("vaccination.due", vaccine="influenza")
        handle, _ = await lib.enrollment("vaccination-reminder")
        await reach_step(handle, "wait-7d")
        await lib.advance(timedelta(days=7, minutes=1))
        await reach_step(handle, "wait-14d")
        await lib.ingest(
            {
                "resourceType": "Immunization",
                "id": "flu-1",
                "status": "completed",
                "vaccineCode": {"text": "Influenza"},
                "patient": patient_reference(),
                "occurrenceDateTime": (await lib.now()).isoformat(),
            }
        )
        result = await journeys.finish(handle)

    assert (result.status, result.outcome) == ("exited", "vaccinated")
    first, second = await lib.bodies(enrollment_id)
    assert "due for your influenza vaccination" in first
    assert "still due" in second


async def test_event_reminders_confirm_remind_a_week_and_a_day_before_and_thank_after_check_in(
    lib: Library, journeys: JourneyHarness
) -> None:
    await load_synthea_patient(journeys.sessions)
    await lib.install("event-reminders")
    start = (await lib.now()).replace(microsecond=0) + timedelta(days=10)
    registration = {"event_key": "diabetes-class", "session_id": "am", "registration_id": "reg_1"}
    async with journeys.make_worker():
        [enrollment_id] = await lib.event("event.registered", **registration, start=start.isoformat())
        handle, _ = await lib.enrollment("event-reminders")
        await reach_step(handle, "until-week-before")
        await lib.advance(timedelta(days=3, minutes=1))
        await reach_step(handle, "until-day-before")
        await lib.advance(timedelta(days=6))
        await reach_step(handle, "await-check-in")
        assert await lib.event("event.checked_in", **{**registration, "registration_id": "reg_2"}) == [
            enrollment_id
        ]
        await lib.event("event.checked_in", **registration)
        result = await journeys.finish(handle)

    assert (result.status, result.outcome) == ("completed", "attended")
    bodies = await lib.bodies(enrollment_id)
    assert len(bodies) == 4
    assert bodies[0].startswith("Hi Abdul, you are registered for ")
    assert bodies[3] == "Thank you for coming, Abdul. We hope it helped."


async def test_a_registration_three_days_ahead_gets_no_in_a_week_reminder(
    lib: Library, journeys: JourneyHarness
) -> None:
    await load_synthea_patient(journeys.sessions)
    await lib.install("event-reminders")
    start = (await lib.now()).replace(microsecond=0) + timedelta(days=3)
    registration = {"event_key": "diabetes-class", "session_id": "am", "registration_id": "reg_late"}
    async with journeys.make_worker():
        [enrollment_id] = await lib.event("event.registered", **registration, start=start.isoformat())
        handle, _ = await lib.enrollment("event-reminders")
        await reach_step(handle, "until-day-before")
        await lib.advance(timedelta(days=2, minutes=1))
        await reach_step(handle, "await-check-in")
        await lib.event("event.checked_in", **registration)
        result = await journeys.finish(handle)

    assert (result.status, result.outcome) == ("completed", "attended")
    bodies = await lib.bodies(enrollment_id)
    assert len(bodies) == 3
    assert not any("in a week" in body for body in bodies)
    assert bodies[1].startswith("Hi Abdul, see you tomorrow at ")


async def closed(handle: WorkflowHandle[Any, Any]) -> None:
    """Wait until the workflow has closed, polling (a result would let the test server skip time)."""
    async with asyncio.timeout(15):
        while (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
            await asyncio.sleep(0.1)


async def test_a_moved_session_ends_the_old_reminders_and_reminds_at_the_new_time(
    lib: Library, journeys: JourneyHarness
) -> None:
    await load_synthea_patient(journeys.sessions)
    await lib.install("event-reminders")
    await lib.install("event-rescheduled-reminders")
    start = (await lib.now()).replace(microsecond=0) + timedelta(days=10)
    moved_to = start + timedelta(days=5)
    registration = {"event_key": "diabetes-class", "session_id": "am", "registration_id": "reg_1"}
    async with journeys.make_worker():
        [first] = await lib.event(
            "event.registered", **registration, status="registered", start=start.isoformat()
        )
        old, _ = await lib.enrollment("event-reminders")
        await reach_step(old, "until-week-before")
        # Only the room changed: the reminders stay; another registration's move is not this one's.
        unmoved = {"start": start.isoformat(), "previous_start": start.isoformat()}
        moved = {"start": moved_to.isoformat(), "previous_start": start.isoformat()}
        await lib.event("event.changed", **registration, status="registered", **unmoved, room="B")
        await lib.event("event.changed", **{**registration, "registration_id": "reg_2"}, **moved)
        await reach_step(old, "until-week-before")
        [ended, second] = await lib.event("event.changed", **registration, status="registered", **moved)
        await closed(old)  # without letting the server skip time: the new journey's timers wait
        new, _ = await lib.enrollment("event-rescheduled-reminders")
        await reach_step(new, "until-week-before")
        await lib.advance(timedelta(days=4))  # past the old week-before, not yet the new one
        assert await lib.bodies(second) == []
        await lib.advance(timedelta(days=4, minutes=1))
        await reach_step(new, "until-day-before")
        await lib.event("event.cancelled", **registration)
        rescheduled = await journeys.finish(new)
        result = await journeys.finish(old)

    assert ended == first
    assert (result.status, result.outcome) == ("exited", "rescheduled")
    assert len(await lib.bodies(first)) == 1  # the confirmation only: no reminder at the old time
    assert (rescheduled.status, rescheduled.outcome) == ("exited", "cancelled")
    [week_before] = await lib.bodies(second)
    assert week_before.startswith("Hi Abdul, a reminder: your session is in a week")


async def test_a_no_show_who_answers_yes_is_re_invited_by_the_event_planners(
    lib: Library, journeys: JourneyHarness
) -> None:
    await load_synthea_patient(journeys.sessions)
    await lib.install("event-no-show-re-invite")
    async with journeys.make_worker():
        [enrollment_id] = await lib.event("event.no_show", event_key="diabetes-class", registration_id="r1")
        handle, _ = await lib.enrollment("event-no-show-re-invite")
        await reach_step(handle, "await-answer")
        await lib.event("sms.reply", body="yes ")
        result = await journeys.finish(handle)

    assert (result.status, result.outcome) == ("completed", "completed")
    assert (await lib.bodies(enrollment_id))[0].startswith("Hi Abdul, we missed you at the session.")
    [task] = await lib.tasks("event-planners")
    assert task.title == "Invite Abdul Koepp to the next diabetes-class session"


async def test_a_patient_who_came_gets_the_feedback_survey_link_and_thanks_after_answering(
    lib: Library, journeys: JourneyHarness
) -> None:
    await load_synthea_patient(journeys.sessions)
    await lib.install("event-post-survey")
    async with journeys.make_worker():
        [enrollment_id] = await lib.event(
            "event.checked_in", event_key="diabetes-class", registration_id="r1"
        )
        handle, _ = await lib.enrollment("event-post-survey")
        await reach_step(handle, "after-the-session")
        assert await lib.bodies(enrollment_id) == []  # nothing during the session
        await lib.advance(timedelta(hours=3, minutes=1))
        await reach_step(handle, "feedback")
        async with journeys.sessions() as session:
            survey = await the_only_survey(session)
        await lib.event("survey.completed", survey_id=survey.id, answers={"useful": [9], "confident": [True]})
        result = await journeys.finish(handle)

    assert (result.status, result.outcome) == ("completed", "completed")
    assert survey.questionnaire_url == "https://aftercare.example/fhir/Questionnaire/event-feedback"
    link, thanks = await lib.bodies(enrollment_id)
    assert "/s/" in link
    assert thanks == "Thank you, Abdul. Your answers help us plan the next sessions."


async def test_a_moved_session_sends_the_updated_invite_and_a_cancelled_event_its_cancellation(
    lib: Library, journeys: JourneyHarness
) -> None:
    patient = next(
        e["resource"] for e in synthea_bundle()["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    await ingest_patient(journeys.sessions, with_email(patient, "abdul@example.org"))
    await an_event(journeys.sessions)
    await lib.install("event-changed-invite")
    await lib.install("event-cancelled-invite")
    async with journeys.sessions.begin() as session:
        change = await register(
            session, "diabetes-class", RegistrationIn(patient_id=ABDUL_PATIENT_ID, session_id="morning")
        )
        sitting = await session.scalar(select(EventSession).where(EventSession.id == "morning"))
        assert sitting is not None
        later = sitting.start_at + timedelta(days=1)
        [moved], _offers = await change_session(
            session, "diabetes-class", "morning", SessionChange(start=later, end=later + timedelta(hours=2))
        )
    async with journeys.make_worker():
        [changed] = await lib.event("event.changed", event_id=moved.id, **moved.data)
        await journeys.finish((await lib.enrollment("event-changed-invite"))[0])
        async with journeys.sessions.begin() as session:
            [cancelled] = await cancel_event(session, "diabetes-class")
        [ended] = await lib.event("event.cancelled", event_id=cancelled.id, **cancelled.data)
        await journeys.finish((await lib.enrollment("event-cancelled-invite"))[0])

    methods = []
    for enrollment_id in (changed, ended):
        [message] = await journeys.messages(enrollment_id)
        assert (message.channel, message.to, message.status) == ("email", "abdul@example.org", "sent")
        [invite] = message.attachments or []
        calendar = Calendar.from_ical(base64.b64decode(invite["content"]))
        [vevent] = calendar.walk("VEVENT")
        assert str(vevent["UID"]) == f"{change.registration.id}@events.aftercare"
        methods.append((str(calendar["METHOD"]), int(vevent["SEQUENCE"])))
    assert methods[0][0] == "REQUEST"
    assert methods[1][0] == "CANCEL"
    assert methods[0][1] >= 1  # the move bumped the invite's SEQUENCE
    first = (await journeys.messages(changed))[0].body or ""
    assert first.startswith("Hi Abdul, your session has changed: it is now on ")


def recent_stay(identifier: str, days: int, **more: Any) -> dict[str, Any]:
    """An inpatient stay of `days` that ended two hours ago by the database's clock (TCM episodes open
    for discharges of the last 30 days; the time-skipping server's clock may be ahead)."""
    discharged = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    return {
        "resourceType": "Encounter",
        "id": identifier,
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "subject": patient_reference(),
        "period": {"start": (discharged - timedelta(days=days)).isoformat(), "end": discharged.isoformat()},
        **more,
    }


async def complete(journeys: JourneyHarness, task: Task, outcome: str) -> None:
    """Complete a task as `POST /v1/tasks/{id}/complete` does, and tell its enrollment."""
    async with journeys.sessions.begin() as session:
        done = await complete_task(session, task.id, outcome=outcome, note=None, completed_by="nurse")
        assert done is not None
        enrollment = await get_enrollment(session, task.enrollment_id or "")
    await tell_enrollment(journeys.env.client, done, enrollment)


async def test_transitional_care_for_a_high_risk_discharge_two_calls_meet_the_contact_deadline(
    lib: Library, journeys: JourneyHarness
) -> None:
    """The TCM episode end to end: a high-risk discharge (LACE 10) opens an episode, the journey asks a
    nurse to call, a second attempt follows the first unanswered one, the reached patient is helped to
    book the visit; the episode counts both attempts and the contact."""
    await load_synthea_patient(journeys.sessions)
    await lib.install("transitional-care")
    encounter = recent_stay("tcm-stay", days=14, priority={"coding": [{"code": "EM"}]})
    async with journeys.make_worker():
        assert await lib.ingest(encounter) == 1
        handle, enrollment_id = await lib.enrollment("transitional-care")
        await reach_step(handle, "await-call")
        [first] = await lib.tasks("tcm-nurses")
        await complete(journeys, first, "no_answer")
        await reach_step(handle, "await-second-call")
        second = next(task for task in await lib.tasks("tcm-nurses") if task.id != first.id)
        await complete(journeys, second, "reached")
        result = await journeys.finish(handle)  # the visit help (after quiet hours, if need be), day 30

    async with journeys.sessions() as session:
        episode = await session.scalar(select(TcmEpisode).where(TcmEpisode.encounter_id == "tcm-stay"))
        assert episode is not None
        done = (await progress_of(session, [episode], datetime.now(UTC)))[episode.id]

    assert (result.status, result.outcome) == ("completed", "completed")
    assert first.title == "TCM call: Abdul Koepp (LACE 10, high risk)"
    assert first.description is not None
    assert first.description.startswith("Interactive contact due by ")
    # Due one business day after it was created, on the patient's calendar (over a weekend: Monday).
    assert first.due_at is not None
    async with journeys.sessions() as session:
        calendar = await patient_calendar(session, ABDUL_PATIENT_ID, get_settings().hospital_timezone)
    due = add_business_days(first.created_at, 1, calendar.timezone, calendar.holidays)
    assert abs((first.due_at - due).total_seconds()) < 60
    assert is_business_day(first.due_at.astimezone(ZoneInfo(calendar.timezone)).date(), calendar.holidays)
    assert second.title.startswith("TCM second attempt: Abdul Koepp before ")
    assert (episode.complexity, episode.risk_band) == ("high", "high")
    assert [attempt.outcome for attempt in done.attempts] == ["no_answer", "reached"]
    assert (done.contact_met_by, done.contacted_at is not None) == ("interactive", True)
    [visit_help] = await lib.bodies(enrollment_id)
    assert "within 7 days of your discharge" in visit_help


async def test_transitional_care_asks_for_the_second_attempt_when_the_first_call_falls_due(
    lib: Library, journeys: JourneyHarness
) -> None:
    """An unanswered first call is followed up when it falls due, one business day on the patient's
    calendar (a Friday discharge: on Monday), not a calendar day later."""
    await load_synthea_patient(journeys.sessions)
    await lib.install("transitional-care")
    encounter = recent_stay("tcm-stay", days=14, priority={"coding": [{"code": "EM"}]})
    now = await lib.now()
    await lib.advance(timedelta(days=(4 - now.weekday()) % 7 or 7))  # to a Friday
    async with journeys.make_worker():
        assert await lib.ingest(encounter) == 1
        handle, _ = await lib.enrollment("transitional-care")
        await reach_step(handle, "await-call")
        began = await lib.now()  # the workflow's clock (the test server's, ahead of the activities')
        [first] = await lib.tasks("tcm-nurses")
        async with journeys.sessions() as session:
            calendar = await patient_calendar(session, ABDUL_PATIENT_ID, get_settings().hospital_timezone)
        due = add_business_days(began, 1, calendar.timezone, calendar.holidays)
        assert due - began >= timedelta(days=3)  # Friday to Monday: a calendar day would be Saturday
        await lib.advance(due - began - timedelta(minutes=5))
        assert [task.id for task in await lib.tasks("tcm-nurses")] == [first.id]  # still waiting
        await lib.advance(timedelta(minutes=10))
        await reach_step(handle, "await-second-call")
        second = next(task for task in await lib.tasks("tcm-nurses") if task.id != first.id)
        await handle.terminate("the test has seen what it looks for")

    assert second.title.startswith("TCM second attempt: Abdul Koepp before ")


async def test_transitional_care_for_a_low_risk_discharge_checks_in_by_sms_and_escalates_silence(
    lib: Library, journeys: JourneyHarness
) -> None:
    await load_synthea_patient(journeys.sessions)
    await lib.install("transitional-care")
    encounter = recent_stay("tcm-short-stay", days=1)
    async with journeys.make_worker():
        assert await lib.ingest(encounter) == 1
        handle, enrollment_id = await lib.enrollment("transitional-care")
        result = await journeys.finish(handle)  # nobody answers the check-in within a day
    [task] = await lib.tasks("tcm-nurses")

    assert (result.status, result.outcome) == ("completed", "completed")
    assert task.title == "No answer to the TCM check-in: call Abdul Koepp"
    assert task.description is not None
    assert task.description.startswith("Contact due by ")
    bodies = await lib.bodies(enrollment_id)
    assert bodies[0].startswith("Hi Abdul, this is your care team checking in")
    assert "within 14 days of your discharge" in bodies[1]
