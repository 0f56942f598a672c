"""Event management through the API: events and sessions, registrations, the waitlist, check-in and
invites (contract §6, events)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from icalendar import Calendar
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aftercare.store.consents import record_consent
from models.event_tables import Event, EventSession
from models.tables import Patient, SendDecision

SOON = datetime.now(UTC).replace(microsecond=0) + timedelta(days=10)


def an_event(key: str = "diabetes-class", capacity: int = 2, **extra: Any) -> dict[str, Any]:
    return {
        "key": key,
        "title": "Living well with diabetes",
        "timezone": "America/New_York",
        "venue": {"name": "Main hospital", "address": "1 Health Way", "accessibility": "step-free"},
        "sessions": [
            {
                "id": "morning",
                "start": SOON.isoformat(),
                "end": (SOON + timedelta(hours=2)).isoformat(),
                "capacity": capacity,
                "room": "B12",
            },
            {
                "id": "evening",
                "start": (SOON + timedelta(hours=8)).isoformat(),
                "end": (SOON + timedelta(hours=10)).isoformat(),
                "capacity": capacity,
                "room": "B12",
            },
        ],
        **extra,
    }


async def patients(sessions: async_sessionmaker[AsyncSession], *ids: str) -> None:
    async with sessions.begin() as session:
        session.add_all(Patient(id=patient_id, version_id="1", given=patient_id) for patient_id in ids)


async def published(api: httpx.AsyncClient, **extra: Any) -> dict[str, Any]:
    created = await api.post("/v1/events", json=an_event(**extra))
    assert created.status_code == 201, created.text
    answer = await api.post(f"/v1/events/{created.json()['key']}/publish")
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


async def register(api: httpx.AsyncClient, patient: str, session_id: str = "morning") -> httpx.Response:
    return await api.post(
        "/v1/events/diabetes-class/registrations", json={"patient_id": patient, "session_id": session_id}
    )


async def anas_invite(api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]) -> str:
    """The published class with Ana registered: the URL of her invite."""
    await patients(sessions, "ana")
    await published(api)
    ana = (await register(api, "ana")).json()["registration_id"]
    return f"/v1/events/diabetes-class/registrations/{ana}/invite.ics"


async def test_an_event_is_created_published_and_shows_each_sessions_seats(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await patients(sessions, "ana", "ben", "cy")
    event = await published(api)
    outcomes = [(await register(api, patient)).json()["status"] for patient in ("ana", "ben", "cy")]
    shown = (await api.get("/v1/events/diabetes-class")).json()

    assert event["status"] == "published"
    assert outcomes == ["registered", "registered", "waitlisted"]
    morning = next(s for s in shown["sessions"] if s["id"] == "morning")
    assert (morning["registered"], morning["waitlisted"], morning["capacity"]) == (2, 1, 2)
    assert [s["registered"] for s in shown["sessions"] if s["id"] == "evening"] == [0]


async def test_the_same_patient_and_session_twice_is_a_conflict(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await patients(sessions, "ana")
    await published(api)
    first = await register(api, "ana")
    again = await register(api, "ana")
    other_session = await register(api, "ana", "evening")

    assert first.status_code == 201
    assert set(first.json()) == {"registration_id", "status"}
    assert again.status_code == 409
    assert other_session.status_code == 201


async def test_a_cancelled_seat_is_offered_to_the_next_on_the_waitlist_who_can_accept_it(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await patients(sessions, "ana", "ben", "cy", "dee")
    await published(api)
    ana = (await register(api, "ana")).json()["registration_id"]
    await register(api, "ben")
    cy = (await register(api, "cy")).json()["registration_id"]
    dee = (await register(api, "dee")).json()["registration_id"]

    cancelled = await api.post(f"/v1/events/diabetes-class/registrations/{ana}/cancel")
    cy_now = (await api.get(f"/v1/events/diabetes-class/registrations/{cy}")).json()
    accepted = await api.post(f"/v1/events/diabetes-class/registrations/{cy}/accept")
    dee_now = (await api.get(f"/v1/events/diabetes-class/registrations/{dee}")).json()
    morning = (await api.get("/v1/events/diabetes-class")).json()["sessions"][0]

    assert cancelled.json()["status"] == "cancelled"
    assert cy_now["status"] == "offered"
    assert cy_now["offer_expires_at"] is not None
    assert accepted.json()["status"] == "registered"
    assert dee_now["status"] == "waitlisted"
    assert (morning["registered"], morning["waitlisted"]) == (2, 1)


async def test_check_in_by_list_or_by_qr_code_and_closing_marks_the_rest_no_show(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await patients(sessions, "ana", "ben")
    await published(api)
    ana = (await register(api, "ana")).json()["registration_id"]
    ben = (await register(api, "ben")).json()["registration_id"]
    code = (await api.get(f"/v1/events/diabetes-class/registrations/{ben}")).json()["check_in_code"]

    by_list = await api.post(f"/v1/events/diabetes-class/registrations/{ana}/check-in")
    altered = code[:-1] + ("1" if code.endswith("0") else "0")
    forged = await api.post("/v1/events/diabetes-class/check-in", json={"code": altered})
    qr = await api.get(f"/v1/events/diabetes-class/registrations/{ben}/qr.png")
    closed = await api.post("/v1/events/diabetes-class/sessions/morning/close")
    by_code_after = await api.post("/v1/events/diabetes-class/check-in", json={"code": code})

    assert by_list.json()["status"] == "attended"
    assert forged.status_code == 422
    assert qr.headers["content-type"] == "image/png"
    assert qr.content.startswith(b"\x89PNG")
    assert closed.json() == {"session_id": "morning", "attended": 1, "no_show": [ben]}
    # a late arrival's scan still counts them as attended
    assert by_code_after.json()["status"] == "attended"
    # the event is completed once its last session is closed
    assert (await api.get("/v1/events/diabetes-class")).json()["status"] == "published"
    await api.post("/v1/events/diabetes-class/sessions/evening/close")
    assert (await api.get("/v1/events/diabetes-class")).json()["status"] == "completed"


async def test_the_invite_is_an_rfc_5545_request_with_a_stable_uid_and_a_cancel_after_cancelling(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    url = await anas_invite(api, sessions)

    request = await api.get(url)
    await api.post("/v1/events/diabetes-class/cancel")
    cancel = await api.get(url)

    assert request.headers["content-type"].startswith("text/calendar")
    first, second = Calendar.from_ical(request.content), Calendar.from_ical(cancel.content)
    assert (first["method"], second["method"]) == ("REQUEST", "CANCEL")
    event_one, event_two = first.walk("VEVENT")[0], second.walk("VEVENT")[0]
    assert str(event_one["uid"]) == str(event_two["uid"])
    assert int(event_two["sequence"]) > int(event_one["sequence"])
    assert [tz["tzid"] for tz in first.walk("VTIMEZONE")] == ["America/New_York"]
    assert event_one.decoded("dtstart") == SOON
    assert (await api.get(url.removesuffix("/invite.ics"))).json()["status"] == "cancelled"


async def test_bad_events_are_refused_at_the_field_and_nothing_is_written(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    past = an_event()
    past["sessions"][1]["start"] = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    past["sessions"][1]["end"] = datetime.now(UTC).isoformat()
    overlapping = an_event()
    overlapping["sessions"][1]["start"] = (SOON + timedelta(hours=1)).isoformat()
    ends_first = an_event()
    ends_first["sessions"][0]["end"] = (SOON - timedelta(hours=1)).isoformat()

    answers = {
        "past": await api.post("/v1/events", json=past),
        "overlap": await api.post("/v1/events", json=overlapping),
        "segment": await api.post("/v1/events", json=an_event(eligibility="no-such-segment")),
        "zone": await api.post("/v1/events", json={**an_event(), "timezone": "Mars/Olympus"}),
        # Too long for a file name: `zoneinfo` raises OSError, once a 500.
        "zone-too-long": await api.post("/v1/events", json={**an_event(), "timezone": "Europe/" + "x" * 300}),
        "order": await api.post("/v1/events", json=ends_first),
        "capacity": await api.post("/v1/events", json=an_event(capacity=0)),
    }

    assert {name: answer.status_code for name, answer in answers.items()} == dict.fromkeys(answers, 422)
    assert answers["past"].json()["detail"][0]["loc"] == ["body", "sessions", 1, "start"]
    assert answers["overlap"].json()["detail"][0]["loc"] == ["body", "sessions", 1, "room"]
    assert answers["segment"].json()["detail"][0]["loc"] == ["body", "eligibility"]
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Event)) == 0
        assert await session.scalar(select(func.count()).select_from(EventSession)) == 0


async def test_registrations_need_a_published_event_a_known_patient_and_a_known_session(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await patients(sessions, "ana")
    await api.post("/v1/events", json=an_event())
    draft = await register(api, "ana")
    await api.post("/v1/events/diabetes-class/publish")

    assert draft.status_code == 409
    assert (await register(api, "nobody")).status_code == 404
    assert (await register(api, "ana", "midnight")).status_code == 404
    assert (await api.post("/v1/events", json=an_event())).status_code == 409
    assert (await api.get("/v1/events/nothing")).status_code == 404


async def test_moving_a_session_bumps_the_invite_and_more_seats_go_to_the_waitlist(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await patients(sessions, "ana", "ben", "cy")
    await published(api)
    ana = (await register(api, "ana")).json()["registration_id"]
    await register(api, "ben")
    cy = (await register(api, "cy")).json()["registration_id"]
    url = f"/v1/events/diabetes-class/registrations/{ana}/invite.ics"
    before = Calendar.from_ical((await api.get(url)).content).walk("VEVENT")[0]
    later = SOON + timedelta(days=1)

    too_small = await api.patch("/v1/events/diabetes-class/sessions/morning", json={"capacity": 1})
    clash = await api.patch(
        "/v1/events/diabetes-class/sessions/morning",
        json={
            "start": (SOON + timedelta(hours=7)).isoformat(),
            "end": (SOON + timedelta(hours=9)).isoformat(),
        },
    )
    moved = await api.patch(
        "/v1/events/diabetes-class/sessions/morning",
        json={"start": later.isoformat(), "end": (later + timedelta(hours=2)).isoformat(), "capacity": 3},
    )
    after = Calendar.from_ical((await api.get(url)).content).walk("VEVENT")[0]

    assert too_small.status_code == 422
    assert too_small.json()["detail"][0]["loc"] == ["body", "capacity"]
    assert clash.status_code == 422
    assert clash.json()["detail"][0]["loc"] == ["body", "room"]
    assert moved.status_code == 200
    assert str(after["uid"]) == str(before["uid"])
    assert int(after["sequence"]) == int(before["sequence"]) + 1
    assert after.decoded("dtstart") == later
    assert (await api.get(f"/v1/events/diabetes-class/registrations/{cy}")).json()["status"] == "offered"


async def test_a_new_title_or_venue_updates_the_invite_and_tells_the_registered_but_keeps_the_time(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    url = await anas_invite(api, sessions)
    before = Calendar.from_ical((await api.get(url)).content).walk("VEVENT")[0]

    described = await api.patch("/v1/events/diabetes-class", json={"description": "Bring your meter"})
    renamed = await api.patch(
        "/v1/events/diabetes-class",
        json={"title": "Diabetes: living well", "venue": {"name": "North clinic", "address": "2 Elm St"}},
    )
    after = Calendar.from_ical((await api.get(url)).content).walk("VEVENT")[0]
    untitled = await api.patch("/v1/events/diabetes-class", json={"title": None})
    unknown = await api.patch("/v1/events/nothing", json={"title": "x"})

    assert described.status_code == 200
    assert described.json()["sequence"] == int(before["sequence"])  # a description is not news
    assert renamed.status_code == 200
    assert (renamed.json()["title"], renamed.json()["venue"]["name"]) == (
        "Diabetes: living well",
        "North clinic",
    )
    assert str(after["summary"]) == "Diabetes: living well"
    assert "North clinic" in str(after["location"])
    assert int(after["sequence"]) == int(before["sequence"]) + 1
    assert after.decoded("dtstart") == before.decoded("dtstart")
    assert untitled.status_code == 422
    assert unknown.status_code == 404


async def test_a_cancelled_event_cannot_be_changed(api: httpx.AsyncClient) -> None:
    await published(api)
    assert (await api.post("/v1/events/diabetes-class/cancel")).status_code == 200

    refused = await api.patch("/v1/events/diabetes-class", json={"title": "Again"})

    assert refused.status_code == 409
    assert "cancelled" in refused.text


async def test_a_patient_without_consent_for_the_channel_is_registered_but_not_messaged_and_the_log_says_so(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await patients(sessions, "ana", "ben")
    async with sessions.begin() as session:
        await record_consent(
            session, ["ben"], "email", "revoked", "front-desk", purpose="appointment_reminders"
        )
    await published(api)

    ana = await register(api, "ana")
    ben = await register(api, "ben")
    by_sms = await api.post(
        "/v1/events/diabetes-class/registrations",
        json={"patient_id": "ben", "session_id": "evening", "channel": "sms"},
    )

    assert (ana.status_code, ana.json()["status"]) == (201, "registered")
    assert (ben.status_code, ben.json()["status"]) == (201, "registered")  # registered all the same
    assert by_sms.status_code == 201  # consent was withdrawn for email only: no entry for this one
    async with sessions() as session:
        [decision] = list(await session.scalars(select(SendDecision)))
    assert (decision.patient_id, decision.decision, decision.rule, decision.channel) == (
        "ben",
        "suppressed",
        "consent",
        "email",
    )
    assert decision.idempotency_key == f"event:{ben.json()['registration_id']}:consent"
    assert decision.reason == (
        "registered for diabetes-class (registered) but not messaged: the patient withdrew consent for "
        "appointment_reminders by email (front-desk)"
    )
