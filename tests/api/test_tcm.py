"""TCM through the API: a discharge opens an episode with business-day deadlines on the hospital's
calendar; call task outcomes and replies are attempts, an appointment is the visit, a new stay is a
readmission; the worklist puts the nearest contact deadline first; staff change the complexity; the
report counts it all, as JSON or CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aftercare.store.inbound import record_inbound
from aftercare.store.messages import record_intent
from aftercare.store.resources import store_resources
from aftercare.store.tasks import complete_task, create_task
from aftercare.tcm.deadlines import contact_due, visit_due
from aftercare.voice.calls import load_call, record_call
from aftercare.voice.outcomes import outcome_of, settle_call
from models.facility_tables import Facility, PatientFacility
from models.risk_tables import TcmEpisode
from models.voice import CallScript, RenderedCall

NOW = datetime.now(UTC).replace(microsecond=0)
EMERGENT = {"priority": {"coding": [{"code": "EM"}]}}


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def patient(identifier: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": identifier, "name": [{"family": identifier.title()}]}


def stay(
    patient_id: str, identifier: str, start: datetime, end: datetime | None, **more: Any
) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "id": identifier,
        "status": "finished" if end else "in-progress",
        "class": {"code": "IMP"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "period": {"start": iso(start), **({"end": iso(end)} if end else {})},
        **more,
    }


async def store(sessions: async_sessionmaker[AsyncSession], *resources: dict[str, Any]) -> None:
    async with sessions.begin() as session:
        await store_resources(session, list(resources), source="test", phone_region="US", fire_triggers=False)


async def call(sessions: async_sessionmaker[AsyncSession], patient_id: str, name: str, outcome: str) -> str:
    async with sessions.begin() as session:
        task_id = await create_task(
            session,
            {
                "id": f"task-{name}",
                "idempotency_key": f"tcm-test-{name}",
                "queue": "nurses",
                "title": "TCM call",
                "patient_id": patient_id,
            },
        )
        await complete_task(session, task_id, outcome=outcome, note=None, completed_by="nurse")
    return task_id


async def voice_call(
    sessions: async_sessionmaker[AsyncSession],
    patient_id: str,
    name: str,
    status: str,
    answered_by: str | None,
) -> str:
    """An automated call of a `call` step, recorded as the send activity does and settled as Twilio's
    final status callback settles it."""
    async with sessions.begin() as session:
        message = await record_intent(
            session,
            {
                "id": f"msg-{name}",
                "idempotency_key": f"tcm-call-{name}",
                "patient_id": patient_id,
                "channel": "voice",
                "status": "sent",
            },
        )
        await record_call(session, message, RenderedCall(script=CallScript(say="Hello")))
        placed = await load_call(session, message.id, lock=True)
        assert placed is not None
        await settle_call(session, placed, outcome_of(status, answered_by))
    return message.id


async def episode_of(sessions: async_sessionmaker[AsyncSession], encounter_id: str) -> TcmEpisode | None:
    async with sessions() as session:
        return await session.scalar(select(TcmEpisode).where(TcmEpisode.encounter_id == encounter_id))


async def test_a_discharge_opens_an_episode_and_its_progress_follows_tasks_replies_and_visits(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    discharged = NOW - timedelta(hours=1)
    await store(
        sessions,
        patient("ann"),
        stay("ann", "ann-stay", discharged - timedelta(days=14), discharged, **EMERGENT),  # LACE 7 + 3 = 10
        patient("dan"),
        stay("dan", "dan-stay", NOW - timedelta(days=2, hours=3), NOW - timedelta(hours=3)),
        patient("old"),
        stay("old", "old-stay", NOW - timedelta(days=45), NOW - timedelta(days=40)),
    )
    ann = await episode_of(sessions, "ann-stay")
    assert ann is not None
    assert (ann.complexity, ann.complexity_source, ann.risk_band) == ("high", "risk", "high")
    assert ann.contact_due_at == contact_due(discharged, ann.timezone, [])
    assert ann.visit_due_at == visit_due(discharged, ann.timezone, "high")
    assert await episode_of(sessions, "old-stay") is None  # long past: no episode

    # Two documented unsuccessful calls meet the contact requirement before anyone answers.
    await call(sessions, "ann", "1", "no_answer")
    await call(sessions, "ann", "2", "left_message")
    body = (await api.get(f"/v1/tcm/episodes/{ann.id}")).json()
    assert [a["outcome"] for a in body["attempts"]] == ["no_answer", "left_message"]
    assert (body["contact_met"], body["contact_met_by"], body["contacted_at"]) == (True, "attempts", None)

    # The patient's reply is the first interactive contact; a fulfilled appointment is the visit.
    async with sessions.begin() as session:
        await record_inbound(
            session,
            provider="twilio",
            provider_message_id="SM-ann",
            channel="sms",
            from_address="+15555550100",
            patient_id="ann",
            body="feeling ok",
            keyword=None,
        )
    await store(
        sessions,
        {
            "resourceType": "Appointment",
            "id": "ann-visit",
            "status": "fulfilled",
            "start": iso(NOW - timedelta(minutes=30)),
            "participant": [{"actor": {"reference": "Patient/ann"}, "status": "accepted"}],
        },
    )
    body = (await api.get(f"/v1/tcm/episodes/{ann.id}")).json()
    assert body["contact_met_by"] == "interactive"
    assert body["attempts"][-1]["kind"] == "reply"
    assert body["attempts"][-1]["interactive"] is True
    assert body["visit"]["source"] == "Appointment/ann-visit"
    assert (body["visit_within_days"], body["billing_candidate"], body["status"]) == (7, "99496", "open")

    # The worklist: Dan (not yet contacted) first, Ann (contacted) after.
    listed = (await api.get("/v1/tcm/episodes", params={"status": "open"})).json()["items"]
    assert [item["patient_id"] for item in listed] == ["dan", "ann"]
    assert listed[0]["risk_band"] == "low"
    assert listed[0]["attempts"] == []
    assert listed[0]["seconds_to_contact_due"] > 0

    # A new stay within 30 days is a readmission: the episode leaves the worklist.
    await store(sessions, stay("dan", "dan-again", NOW - timedelta(minutes=10), None))
    dan = await episode_of(sessions, "dan-stay")
    assert dan is not None
    body = (await api.get(f"/v1/tcm/episodes/{dan.id}")).json()
    assert (body["status"], body["readmission"]["source"]) == ("readmitted", "Encounter/dan-again")
    listed = (await api.get("/v1/tcm/episodes")).json()["items"]
    assert [item["patient_id"] for item in listed] == ["ann"]

    # Staff set Dan's complexity: the visit deadline follows, and scoring again does not undo it.
    changed = await api.patch(f"/v1/tcm/episodes/{dan.id}", json={"complexity": "high"})
    assert changed.status_code == 200
    assert (changed.json()["complexity"], changed.json()["complexity_source"]) == ("high", "staff")
    await store(
        sessions,
        {
            **stay("dan", "dan-stay", NOW - timedelta(days=2, hours=3), NOW - timedelta(hours=3)),
            "language": "en",
        },
    )
    again = await episode_of(sessions, "dan-stay")
    assert again is not None
    assert (again.complexity, again.visit_due_at) == (
        "high",
        visit_due(again.discharged_at, again.timezone, "high"),
    )

    # The report of today's discharges.
    today = NOW.date()
    window = {"from": (today - timedelta(days=1)).isoformat(), "to": today.isoformat()}
    report = (await api.get("/v1/tcm/report", params=window)).json()
    total = report["total"]
    assert (
        total["discharges"],
        total["contacted_within_2_business_days"],
        total["readmissions_30_days"],
    ) == (2, 1, 1)
    assert (total["candidates_99496"], total["readmission_rate"]) == (1, 0.5)
    assert 0 < total["readmission_ci_low"] < 0.5 < total["readmission_ci_high"] < 1
    assert sorted((row["band"], row["tcm"], row["tcm_episodes"]) for row in report["groups"]) == [
        ("high", "contacted", 1),
        ("low", "not_contacted", 1),
    ]
    exported = await api.get("/v1/tcm/report", params={**window, "format": "csv"})
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert rows[-1]["discharges"] == "2"
    assert rows[-1]["band"] == ""


async def test_voice_calls_are_contact_attempts_answered_ones_the_interactive_contact(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A `call` step's calls count like call tasks: unanswered and voicemail are documented unsuccessful
    attempts (two meet the requirement), an answered call is the interactive contact; a failed call is
    no attempt."""
    discharged = NOW - timedelta(hours=2)
    await store(sessions, patient("vic"), stay("vic", "vic-stay", discharged - timedelta(days=3), discharged))
    vic = await episode_of(sessions, "vic-stay")
    assert vic is not None

    await voice_call(sessions, "vic", "failed", "failed", None)
    await voice_call(sessions, "vic", "unanswered", "no-answer", None)
    body = (await api.get(f"/v1/tcm/episodes/{vic.id}")).json()
    assert [(a["kind"], a["outcome"], a["interactive"]) for a in body["attempts"]] == [
        ("call", "no_answer", False)
    ]
    assert body["contact_met"] is False

    voicemail = await voice_call(sessions, "vic", "voicemail", "completed", "machine_end_beep")
    body = (await api.get(f"/v1/tcm/episodes/{vic.id}")).json()
    assert [a["outcome"] for a in body["attempts"]] == ["no_answer", "machine"]
    assert body["attempts"][-1]["source"] == f"VoiceCall/{voicemail}"
    assert (body["contact_met"], body["contact_met_by"], body["contacted_at"]) == (True, "attempts", None)

    answered = await voice_call(sessions, "vic", "answered", "completed", "human")
    body = (await api.get(f"/v1/tcm/episodes/{vic.id}")).json()
    assert body["contact_met_by"] == "interactive"
    assert body["attempts"][-1] == {**body["attempts"][-1], "outcome": "answered", "interactive": True}
    assert body["attempts"][-1]["source"] == f"VoiceCall/{answered}"
    assert body["contacted_at"] == body["attempts"][-1]["at"]


async def test_the_report_answers_for_a_period_before_tcm_began_from_the_encounters(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Half a year ago no discharge had a TCM episode (they are opened for the last 30 days only): the
    report still counts the period's discharges and their 30-day readmissions from the encounters."""
    base = NOW - timedelta(days=190)
    day = timedelta(days=1)
    await store(
        sessions,
        patient("pat"),
        stay("pat", "pat-1", base - 3 * day, base),
        stay("pat", "pat-2", base + 10 * day, base + 12 * day),  # readmitted on day 10: both in the period
        patient("bob"),
        stay("bob", "bob-1", base - 2 * day + timedelta(hours=1), base + day),
        stay("bob", "bob-2", base + 32 * day, base + 33 * day),  # day 31 after discharge: not a readmission
        patient("cy"),
        stay("cy", "cy-1", base - day, base + 2 * day),
        {
            **stay("cy", "cy-ed", base + 5 * day, base + 5 * day + timedelta(hours=4)),
            "class": {"code": "EMER"},
        },
        {**stay("cy", "cy-void", base + 6 * day, base + 8 * day), "status": "cancelled"},
        patient("dee"),
        stay("dee", "dee-before", base - 30 * day, base - 20 * day),  # discharged before the period
        stay("dee", "dee-ongoing", base - 5 * day, None),  # not discharged
    )
    assert await episode_of(sessions, "pat-1") is None
    window = {"from": (base - day).date().isoformat(), "to": (base + 15 * day).date().isoformat()}
    report = (await api.get("/v1/tcm/report", params=window)).json()
    total = report["total"]
    assert (total["discharges"], total["readmissions_30_days"], total["readmission_rate"]) == (4, 1, 0.25)
    assert (total["tcm_episodes"], total["contacted_within_2_business_days"], total["candidates_99495"]) == (
        0,
        0,
        0,
    )
    assert [(row["band"], row["tcm"], row["discharges"]) for row in report["groups"]] == [("low", None, 4)]
    # dee's first stay, 20 days before the period, counts in its own, readmitted by the ongoing stay.
    earlier = {"from": (base - 21 * day).date().isoformat(), "to": (base - 19 * day).date().isoformat()}
    total = (await api.get("/v1/tcm/report", params=earlier)).json()["total"]
    assert (total["discharges"], total["readmissions_30_days"]) == (1, 1)


async def test_an_episode_follows_the_calendar_of_the_patient_s_facility(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Scoring reads the facility of a patient placed in one: its zone and holidays set the deadline."""
    discharged = NOW - timedelta(hours=1)
    zone = "Pacific/Auckland"
    closed = [discharged.astimezone(ZoneInfo(zone)).date() + timedelta(days=n) for n in range(1, 4)]
    async with sessions.begin() as session:
        session.add(
            Facility(key="akl", name="Auckland", timezone=zone, holidays=[d.isoformat() for d in closed])
        )
        await session.flush()
        session.add(PatientFacility(patient_id="kiri", facility="akl", source="managing_organization"))
    await store(
        sessions, patient("kiri"), stay("kiri", "kiri-stay", discharged - timedelta(days=2), discharged)
    )
    episode = await episode_of(sessions, "kiri-stay")
    assert episode is not None
    assert (episode.facility, episode.timezone) == ("akl", zone)
    assert episode.contact_due_at == contact_due(discharged, zone, closed)
    assert episode.contact_due_at != contact_due(discharged, zone, [])  # the holidays moved it


async def test_unknown_episodes_and_backwards_periods_are_refused(api: httpx.AsyncClient) -> None:
    assert (await api.get("/v1/tcm/episodes/tcm-nothing")).status_code == 404
    assert (await api.patch("/v1/tcm/episodes/tcm-nothing", json={"complexity": "high"})).status_code == 404
    assert (await api.patch("/v1/tcm/episodes/x", json={"complexity": "urgent"})).status_code == 422
    backwards = {"from": date(2025, 5, 2).isoformat(), "to": date(2025, 5, 1).isoformat()}
    assert (await api.get("/v1/tcm/report", params=backwards)).status_code == 422
    assert (await api.get("/v1/tcm/episodes", params={"status": "closed"})).status_code == 422
