"""Analytics over a known history: journeys with a branch, a timeout, an exit and one still waiting run
on a time-skipping server; replies and STOP come in through Twilio's inbound webhook, delivery reports
through Twilio's status and SendGrid's event webhooks. Every number the analytics API answers is the
one the history implies, and the rollups equal their recomputation from the raw facts."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from aftercare.analytics.fold import fold
from aftercare.analytics.rebuild import compare, rebuild
from aftercare.analytics.window import bucket_of
from aftercare.settings import Settings
from aftercare.store.messages import record_intent
from models.temporal import EnrollmentTrigger, PatientEvent
from tests.api.webhooks.test_sendgrid import PUBLIC_KEY, signed
from tests.api.webhooks.twilio_signing import AUTH_TOKEN, PUBLIC_BASE_URL, post_signed
from tests.conftest import AUTH_HEADERS, serve
from tests.helpers import load_synthea_patient, publish, with_twilio
from tests.workflows.fixtures import JourneyHarness, reach_step, started_time_skipping_env
from workflows.enrollment import EnrollmentWorkflow

pytestmark = pytest.mark.usefixtures("empty_database")

ABDUL_PHONE = "+15559784581"
EMAIL = "abdul.koepp@example.org"
FOLLOW_UP = {
    "key": "analytics-follow-up",
    "version": 1,
    "name": "Follow-up call",
    "exit": [{"event": "appointment.booked", "outcome": "goal_reached"}],
    "steps": [
        {"id": "notify", "send": {"channel": "sms", "body": "Hi {{ patient.given }}, reply YES for a call."}},
        {"id": "await-reply", "wait_for": {"event": "sms.reply", "timeout": "P2D", "on_timeout": "escalate"}},
        {
            "id": "route",
            "branch": [
                {"when": "%event.data.body.upper() = 'YES'", "goto": "thanks"},
                {"otherwise": "escalate"},
            ],
        },
        {"id": "escalate", "send": {"channel": "sms", "body": "We will call you."}, "goto": "done"},
        {"id": "thanks", "send": {"channel": "sms", "body": "Thanks!"}},
        {"id": "done", "end": {"outcome": "booked"}},
    ],
}
NUDGE = {
    "key": "analytics-nudge",
    "version": 1,
    "name": "Nudge",
    "steps": [{"id": "nudge", "send": {"channel": "sms", "body": "A reminder from your care team."}}],
}


@pytest.fixture
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A server of the test's own: its journeys wait with time skipping unlocked, and one is left
    waiting."""
    async with started_time_skipping_env() as env:
        yield env


@pytest.fixture
def api_settings(settings: Settings, task_queue: str) -> Settings:
    return with_twilio(settings, task_queue, None, AUTH_TOKEN, public_base_url=PUBLIC_BASE_URL).model_copy(
        update={
            "sendgrid_api_key": SecretStr("SG.key"),
            "sendgrid_from_email": "care@hospital.example",
            "sendgrid_webhook_public_key": PUBLIC_KEY,
        }
    )


@pytest.fixture
async def api(
    api_settings: Settings, time_skipping_env: WorkflowEnvironment
) -> AsyncIterator[httpx.AsyncClient]:
    """The API on the time-skipping server (webhooks deliver replies to the journeys running there)."""
    from api.app import create_app

    async with serve(create_app(api_settings, temporal=time_skipping_env.client), AUTH_HEADERS) as client:
        yield client


async def text_in(api: httpx.AsyncClient, body: str) -> None:
    """Abdul texts us, through Twilio's inbound webhook."""
    params = {
        "MessageSid": "SM" + uuid.uuid4().hex,
        "AccountSid": "AC" + "0" * 32,
        "From": ABDUL_PHONE,
        "To": "+15005550006",
        "Body": body,
    }
    assert (await post_signed(api, "/webhooks/twilio/inbound", params)).status_code == 200


async def run_journeys(journeys: JourneyHarness, api: httpx.AsyncClient) -> str:
    """Five enrollments in the follow-up journey, one after the other; returns the patient id."""
    patient = await load_synthea_patient(journeys.sessions)
    follow_up = await publish(journeys.sessions, FOLLOW_UP)
    nudge = await publish(journeys.sessions, NUDGE)

    async def enroll() -> Any:
        outcome = await journeys.starter.enroll(follow_up, patient["id"], EnrollmentTrigger(kind="manual"))
        assert outcome.enrollment_id is not None
        handle = journeys.env.client.get_workflow_handle_for(
            EnrollmentWorkflow.run, f"enrollment-{outcome.enrollment_id}"
        )
        await reach_step(handle, "await-reply")
        return handle

    async with journeys.make_worker():
        await text_in_then_finish(journeys, api, await enroll(), "yes")  # route → thanks
        await journeys.finish(await enroll())  # no reply: timeout → escalate
        await text_in_then_finish(journeys, api, await enroll(), "later")  # route otherwise → escalate
        booked = await enroll()  # leaves by the exit rule while waiting for a reply
        await booked.signal(
            EnrollmentWorkflow.deliver_event,
            PatientEvent(id="booked-1", type="appointment.booked", data={}, occurred_at=datetime.now(UTC)),
        )
        await journeys.finish(booked)
        await text_in(api, "STOP")
        await journeys.run_to_end(nudge, patient["id"], EnrollmentTrigger(kind="manual"))  # blocked
        await text_in(api, "START")
        await enroll()  # still waiting for a reply (no time skips after this)
    return str(patient["id"])


async def text_in_then_finish(
    journeys: JourneyHarness, api: httpx.AsyncClient, handle: Any, body: str
) -> None:
    await text_in(api, body)
    await journeys.finish(handle)


async def delivery_reports(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], patient: str
) -> None:
    """Four texts and two emails of a reminder campaign, and what their providers reported."""
    async with sessions.begin() as session:
        for number in range(1, 5):
            await record_intent(
                session,
                {
                    "id": f"sms-{number}",
                    "idempotency_key": f"run-spring/sms/{number}",
                    "patient_id": patient,
                    "campaign_run_id": "run-spring",
                    "template_key": "reminder",
                    "channel": "sms",
                    "to": ABDUL_PHONE,
                    "body": "Reminder",
                    "status": "queued",
                    "provider": "twilio",
                    "provider_message_id": f"SM{number:032d}",
                },
                sent_now=True,
            )
        for number in range(1, 3):
            await record_intent(
                session,
                {
                    "id": f"email-{number}",
                    "idempotency_key": f"run-spring/email/{number}",
                    "patient_id": patient,
                    "campaign_run_id": "run-spring",
                    "template_key": "reminder-email",
                    "channel": "email",
                    "to": EMAIL,
                    "subject": "Reminder",
                    "body": "Reminder",
                    "status": "queued",
                    "provider": "sendgrid",
                    "provider_message_id": f"sg{number}",
                },
                sent_now=True,
            )
    callbacks = [
        ("sms-1", "sent", None),
        ("sms-1", "delivered", None),
        ("sms-2", "undelivered", "30003"),
        ("sms-3", "sent", None),
        ("sms-4", "delivered", None),
        ("sms-4", "delivered", None),  # a repeat counts once
    ]
    for message_id, reported, error in callbacks:
        number = int(message_id.removeprefix("sms-"))
        params = {"MessageSid": f"SM{number:032d}", "MessageStatus": reported}
        if error:
            params["ErrorCode"] = error
        response = await post_signed(api, f"/webhooks/twilio/status?message_id={message_id}", params)
        assert response.status_code == 204

    def event(kind: str, event_id: str, message_id: str, **fields: Any) -> dict[str, Any]:
        return {
            "email": EMAIL,
            "timestamp": int(time.time()),
            "event": kind,
            "sg_event_id": event_id,
            "sg_message_id": f"{message_id.replace('email-', 'sg')}.filter0001",
            "aftercare_message_id": message_id,
            **fields,
        }

    batch = [
        event("delivered", "ev1", "email-1"),
        event("open", "ev2", "email-1"),
        event("open", "ev3", "email-1"),
        event("click", "ev4", "email-1", url="https://hospital.example/book"),
        event("bounce", "ev5", "email-2", type="bounce", reason="550 no such user"),
    ]
    payload = __import__("json").dumps(batch)
    response = await api.post("/webhooks/sendgrid/events", content=payload, headers=signed(payload))
    assert response.json()["applied"] == 5


@pytest.fixture
async def history(
    journeys: JourneyHarness, api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> str:
    patient = await run_journeys(journeys, api)
    await delivery_reports(api, sessions, patient)
    return patient


def funnel_step(funnel: dict[str, Any], step_id: str) -> dict[str, Any]:
    return next(step for step in funnel["steps"] if step["id"] == step_id)


async def expected_percentiles(engine: AsyncEngine, step: str | None) -> tuple[int, int]:
    """Nearest-rank median and p90 of the bucketed times from enrollment to `step` (None: to the end
    with outcome `booked`), from the raw facts."""
    query = (
        "SELECT extract(epoch FROM s.at - e.started_at) FROM enrollment_steps s "
        "JOIN enrollments e ON e.id = s.enrollment_id WHERE s.step = :step"
        if step is not None
        else "SELECT extract(epoch FROM e.ended_at - e.started_at) FROM enrollments e WHERE e.outcome = 'booked'"
    )
    async with engine.connect() as connection:
        elapsed = sorted(
            bucket_of(float(value)) for value in await connection.scalars(text(query), {"step": step})
        )
    return elapsed[math.ceil(0.5 * len(elapsed)) - 1], elapsed[math.ceil(0.9 * len(elapsed)) - 1]


async def test_the_funnel_counts_every_enrollment_at_every_step(
    api: httpx.AsyncClient, engine: AsyncEngine, history: str
) -> None:
    funnel = (await api.get("/v1/analytics/journeys/analytics-follow-up/funnel")).json()

    assert funnel["journey_key"] == "analytics-follow-up"
    assert funnel["entered"] == 5
    assert [step["id"] for step in funnel["steps"]] == [
        "notify",
        "await-reply",
        "route",
        "escalate",
        "thanks",
        "done",
    ]
    assert {
        key: funnel_step(funnel, "notify")[key] for key in ("entered", "passed", "waiting", "exited")
    } == {
        "entered": 5,
        "passed": 5,
        "waiting": 0,
        "exited": 1,
    }
    assert funnel_step(funnel, "notify")["exited_by_status"] == {"exited": 1}
    assert funnel_step(funnel, "notify")["results"] == {"sent": 5}
    reply = funnel_step(funnel, "await-reply")
    assert (reply["entered"], reply["passed"], reply["waiting"], reply["timed_out"]) == (4, 3, 1, 1)
    assert reply["results"] == {"event": 2, "timeout": 1}
    # The test server's clock runs ahead of the database's by the days it skipped: the expected
    # percentiles come from the recorded moments, bucketed and ranked here.
    assert (reply["median_seconds"], reply["p90_seconds"]) == await expected_percentiles(
        engine, "await-reply"
    )
    route = funnel_step(funnel, "route")
    assert (route["passed"], route["branches"]) == (2, {"condition 1 held": 1, "otherwise": 1})
    assert route["results"] == {"matched": 1, "no match": 1}
    assert funnel_step(funnel, "escalate")["passed"] == 2
    assert funnel_step(funnel, "thanks")["passed"] == 1
    assert funnel_step(funnel, "done")["results"] == {"ended": 3}
    assert funnel["outcomes"] == {"booked": 3, "goal_reached": 1}
    booked = next(row for row in funnel["outcome_details"] if row["outcome"] == "booked")
    assert booked["statuses"] == {"completed": 3}
    assert (booked["median_seconds"], booked["p90_seconds"]) == await expected_percentiles(engine, None)


async def test_the_funnel_of_one_version_and_of_an_empty_window(api: httpx.AsyncClient, history: str) -> None:
    path = "/v1/analytics/journeys/analytics-follow-up/funnel"
    other_version = (await api.get(path, params={"version": 2})).json()
    long_ago = (
        await api.get(path, params={"from": "2020-01-01T00:00:00Z", "to": "2020-02-01T00:00:00Z"})
    ).json()
    upside_down = await api.get(path, params={"from": "2020-02-01T00:00:00Z", "to": "2020-01-01T00:00:00Z"})

    assert (other_version["entered"], other_version["outcomes"]) == (0, {})
    assert (long_ago["entered"], long_ago["outcomes"]) == (0, {})
    # Only who waits now is outside any window.
    assert [(step["id"], step["waiting"], step["passed"]) for step in long_ago["steps"]] == [
        ("await-reply", 1, 0)
    ]
    assert upside_down.status_code == 400


def row_of(body: dict[str, Any], key: str | None) -> dict[str, Any]:
    return next(row for row in body["rows"] if row["key"] == key)


COUNTED = (
    "messages",
    "sent",
    "delivered",
    "failed",
    "bounced",
    "opened",
    "clicked",
    "blocked",
    "replied",
    "opted_out",
)


def counts(row: dict[str, Any]) -> tuple[int, ...]:
    return tuple(row[name] for name in COUNTED)


async def test_delivery_and_engagement_per_channel_journey_template_and_campaign(
    api: httpx.AsyncClient, history: str
) -> None:
    async def grouped(group_by: str) -> dict[str, Any]:
        response = await api.get("/v1/analytics/messages", params={"group_by": group_by})
        assert response.status_code == 200
        body: dict[str, Any] = response.json()
        return body

    by_channel, by_journey = await grouped("channel"), await grouped("journey")
    by_template, by_campaign = await grouped("template"), await grouped("campaign")

    # Texts: 8 of the follow-up journey (5 + 2 + 1, by the outbox), 1 blocked nudge, 4 reminders.
    # "yes" answered the first notice, "later" the 4 texts sent since (the first already had its
    # reply); STOP came within 7 days of the 7 texts sent before it (the replies of the campaigns'
    # results, the same attribution).
    sms = row_of(by_channel, "sms")
    assert counts(sms) == (13, 12, 2, 1, 0, 0, 0, 1, 5, 7)
    assert sms["blocked_by"] == {"reachability": 1}
    assert sms["rates"]["delivered_of_sent"] == pytest.approx(2 / 12)
    email = row_of(by_channel, "email")
    assert counts(email) == (2, 2, 1, 1, 1, 1, 1, 0, 0, 0)
    assert email["rates"]["opened_of_delivered"] == 1.0
    assert email["rates"]["bounced_of_sent"] == 0.5

    assert counts(row_of(by_journey, "analytics-follow-up")) == (8, 8, 0, 0, 0, 0, 0, 0, 5, 7)
    assert counts(row_of(by_journey, "analytics-nudge")) == (1, 0, 0, 0, 0, 0, 0, 1, 0, 0)
    assert row_of(by_journey, "analytics-nudge")["blocked_by"] == {"reachability": 1}
    assert counts(row_of(by_journey, None)) == (6, 6, 3, 2, 1, 1, 1, 0, 0, 0)

    assert counts(row_of(by_template, "reminder")) == (4, 4, 2, 1, 0, 0, 0, 0, 0, 0)
    assert counts(row_of(by_template, "reminder-email")) == (2, 2, 1, 1, 1, 1, 1, 0, 0, 0)
    assert counts(row_of(by_campaign, "run-spring")) == (6, 6, 3, 2, 1, 1, 1, 0, 0, 0)
    assert counts(row_of(by_campaign, None)) == (9, 8, 0, 0, 0, 0, 0, 1, 5, 7)


async def test_the_kept_rollups_equal_their_recomputation_and_a_rebuild_mends_a_drift(
    engine: AsyncEngine, history: str
) -> None:
    assert await compare(engine) == []
    assert await fold(engine) > 0  # the deltas move into the rollups, and change no number
    assert await compare(engine) == []
    async with engine.connect() as connection:
        pending = await connection.scalar(text("SELECT count(*) FROM analytics_messages_delta"))
    assert pending == 0

    async with engine.begin() as connection:
        await connection.execute(text("UPDATE analytics_messages SET sent = sent + 5 WHERE channel = 'sms'"))
    drifted = await compare(engine)
    await rebuild(engine)

    assert [difference.table for difference in drifted] == ["analytics_messages"]
    assert await compare(engine) == []


async def test_a_later_window_sees_none_of_these_messages(api: httpx.AsyncClient, history: str) -> None:
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    response = await api.get("/v1/analytics/messages", params={"group_by": "channel", "from": later})

    assert response.json()["rows"] == []


async def test_daily_and_hourly_series_in_the_viewer_s_zone_add_up_to_the_totals(
    api: httpx.AsyncClient, history: str
) -> None:
    daily = (
        await api.get("/v1/analytics/messages/series", params={"interval": "day", "tz": "America/New_York"})
    ).json()
    hourly = (await api.get("/v1/analytics/messages/series", params={"interval": "hour", "tz": "UTC"})).json()
    journey = (
        await api.get(
            "/v1/analytics/journeys/analytics-follow-up/series",
            params={"interval": "day", "tz": "Europe/Paris"},
        )
    ).json()
    unknown_zone = await api.get("/v1/analytics/messages/series", params={"tz": "Mars/Olympus"})

    assert sum(point["counts"]["messages"] for point in daily["points"]) == 15
    assert sum(point["counts"]["sent"] for point in hourly["points"]) == 14
    starts = [datetime.fromisoformat(point["start"]) for point in daily["points"]]
    # New York's days start at its midnight, five hours behind UTC in December.
    assert {(start.hour, start.minute, start.utcoffset()) for start in starts} == {
        (0, 0, timedelta(hours=-5))
    }
    assert all(datetime.fromisoformat(point["start"]).minute == 0 for point in hourly["points"])
    totals = {
        name: sum(point["counts"][name] for point in journey["points"])
        for name in ("entered", "completed", "exited")
    }
    assert totals == {"entered": 5, "completed": 3, "exited": 1}
    assert unknown_zone.status_code == 400


async def test_csv_exports_carry_the_page_s_numbers_with_small_cells_hidden(
    api: httpx.AsyncClient, history: str
) -> None:
    hidden = await api.get("/v1/analytics/messages", params={"group_by": "channel", "format": "csv"})
    exact = await api.get(
        "/v1/analytics/messages", params={"group_by": "channel", "format": "csv", "small_cells": "show"}
    )
    funnel = await api.get("/v1/analytics/journeys/analytics-follow-up/funnel", params={"format": "csv"})

    assert hidden.headers["content-type"].startswith("text/csv")
    lines = hidden.text.splitlines()
    assert lines[0].startswith("channel,messages,sent,delivered,failed,bounced,opened,clicked,blocked,")
    # sms: 13 recorded, 12 sent; 2 delivered, 1 failed and 1 blocked are under 11, and so are their rates
    assert lines[1].startswith("sms,13,12,<11,<11,0,0,0,<11,<11,<11,,")
    assert lines[2].startswith("email,<11,<11,<11,<11,<11,<11,<11,0,0,0,,")
    assert exact.text.splitlines()[1].startswith("sms,13,12,2,1,0,0,0,1,5,7,")
    assert (
        funnel.text.splitlines()[0]
        == "step,entered,passed,waiting,timed_out,exited,median_seconds,p90_seconds"
    )
    assert funnel.text.splitlines()[1].startswith("notify,<11,<11,0,0,<11,")
