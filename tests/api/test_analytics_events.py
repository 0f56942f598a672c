"""Event attendance through the analytics API: registrations, a cancelled seat offered to the waitlist,
check-in and the close that marks the rest no-show, counted per session with the no-show rate."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.api.test_events import patients, published, register


async def test_attendance_per_session_counts_every_registration_by_its_fate(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await patients(sessions, "ana", "ben", "cy", "dee", "eve")
    await published(api, capacity=3)
    ana = (await register(api, "ana")).json()["registration_id"]
    await register(api, "ben")  # registered, never comes: a no-show
    cy = (await register(api, "cy")).json()["registration_id"]
    await register(api, "dee")  # waitlisted
    await register(api, "eve", "evening")
    await api.post(f"/v1/events/diabetes-class/registrations/{cy}/cancel")  # dee is offered the seat
    await api.post(f"/v1/events/diabetes-class/registrations/{ana}/check-in")
    assert (await api.post("/v1/events/diabetes-class/sessions/morning/close")).status_code == 200

    answer = await api.get("/v1/analytics/events", params={"event_key": "diabetes-class"})
    csv = await api.get("/v1/analytics/events", params={"format": "csv"})

    rows = {row["session_id"]: row for row in answer.json()["rows"]}
    morning = rows["morning"]
    assert {name: morning[name] for name in ("registered", "waitlisted", "cancelled", "attended")} == {
        "registered": 0,
        "waitlisted": 0,
        "cancelled": 1,
        "attended": 1,
    }
    # Closing marks ben and dee (offered, never accepted) no-show: 2 of the 3 whose attendance is known.
    assert (morning["no_show"], morning["offers"], morning["no_show_rate"]) == (2, 1, 2 / 3)
    assert (rows["evening"]["registered"], rows["evening"]["no_show_rate"]) == (1, None)
    assert csv.text.splitlines()[1] == "diabetes-class,evening,<11,0,0,0,0,0,0,"
