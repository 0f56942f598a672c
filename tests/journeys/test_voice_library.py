"""The voice variant of the ready-made post-discharge follow-up, run end to end on the time-skipping
server with the real activities (calls go to the outbox here; Twilio's side is in
tests/integration/test_voice_journey.py): the check call asks in the patient's language and branches on
the keys pressed; calls nobody answers are placed again, then a letter goes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from models.tables import Message
from models.voice import RenderedCall
from models.voice_tables import VoiceCall
from tests.conftest import ABDUL_PATIENT_ID
from tests.helpers import load_synthea_patient
from tests.journeys.test_library import SPANISH_SPEAKER, Library, lib, patient_reference
from tests.workflows.fixtures import JourneyHarness, reach_step

pytestmark = pytest.mark.usefixtures("empty_database")
__all__ = ["lib"]  # the fixture, used by name below

KEY = "post-discharge-voice-follow-up"


async def discharged(lib: Library) -> dict[str, Any]:
    now = (await lib.now()).replace(microsecond=0)
    return {
        "resourceType": "Encounter",
        "id": "stay-voice",
        "status": "finished",
        "class": {"code": "IMP"},
        "subject": patient_reference(),
        "period": {"start": (now - timedelta(days=3)).isoformat(), "end": now.isoformat()},
    }


async def placed_calls(journeys: JourneyHarness) -> list[tuple[Message, RenderedCall]]:
    async with journeys.sessions() as session:
        rows = await session.execute(
            select(Message, VoiceCall)
            .join(VoiceCall, VoiceCall.message_id == Message.id)
            .order_by(Message.created_at)
        )
        return [(message, RenderedCall.model_validate(call.script)) for message, call in rows.tuples()]


async def test_a_patient_who_presses_2_on_the_check_call_gets_an_urgent_care_coordinator_task(
    lib: Library, journeys: JourneyHarness
) -> None:
    await load_synthea_patient(journeys.sessions)
    await lib.install(KEY)
    async with journeys.make_worker():
        assert await lib.ingest(await discharged(lib)) == 1
        handle, _ = await lib.enrollment(KEY)
        await reach_step(handle, "wait-48h")
        await lib.advance(timedelta(days=2, minutes=1))
        await reach_step(handle, "check-call")
        [(call, _)] = await placed_calls(journeys)
        answers = {"feeling": "2", "medicines": "1"}
        await lib.event(
            "voice.answered", ABDUL_PATIENT_ID, call_id=call.id, outcome="answered", answers=answers
        )
        await reach_step(handle, "until-day-7")
        [task] = await lib.tasks("care-coordinators")
        result = await journeys.finish(handle)

    assert (result.status, result.outcome) == ("completed", "completed")
    assert (task.title, task.priority) == (
        "Abdul Koepp is not feeling well after discharge (check call)",
        "urgent",
    )
    calls = await placed_calls(journeys)
    assert [message.step_id for message, _ in calls] == ["check-call", "day-7"]
    script = calls[0][1].script
    assert script.say == "Hello Abdul, this is your care team calling to check on you after your discharge."
    assert [question.prompt for question in script.gather] == [
        "Press 1 if you are feeling well, or 2 if you are not feeling well.",
        "Press 1 if you have all your medicines, or 2 if you need help with them.",
    ]
    assert script.voicemail == "This is your care team calling to check on you. Please call us back. Goodbye."
    assert (await lib.tasks("pharmacists")) == []


async def test_nobody_answering_gets_two_more_calls_then_a_letter(
    lib: Library, journeys: JourneyHarness
) -> None:
    await load_synthea_patient(journeys.sessions)
    await lib.install(KEY)
    async with journeys.make_worker():
        await lib.ingest(await discharged(lib))
        handle, enrollment_id = await lib.enrollment(KEY)
        result = await journeys.finish(handle)

    assert (result.status, result.outcome) == ("completed", "completed")
    sent = await journeys.messages(enrollment_id)
    assert [(message.step_id, message.channel) for message in sent] == [
        ("check-call", "voice"),
        ("check-call", "voice"),
        ("check-call", "voice"),
        ("letter", "letter"),
        ("day-7", "voice"),
    ]
    assert "we tried to call you" in (sent[3].body or "")


async def test_a_spanish_speaker_is_called_in_spanish(lib: Library, journeys: JourneyHarness) -> None:
    patient = await load_synthea_patient(journeys.sessions, SPANISH_SPEAKER)
    await lib.install(KEY)
    stay = {**await discharged(lib), "subject": patient_reference(patient["id"])}
    async with journeys.make_worker():
        await lib.ingest(stay)
        handle, _ = await lib.enrollment(KEY)
        await journeys.finish(handle)

    message, call = (await placed_calls(journeys))[0]
    assert message.locale == "es"
    assert call.language == "es"
    assert (call.script.say or "").startswith("Hola Antonio, le llama su equipo de atención")
    assert call.script.gather[0].prompt == "Marque 1 si se siente bien, o 2 si no se siente bien."
    assert (
        call.script.goodbye
        == "Gracias. Su equipo de atención se comunicará con usted si necesita algo. Adiós."
    )
